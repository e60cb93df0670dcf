from celery import shared_task


@shared_task(acks_late=True)
def chat_answer_notify_task(*, conversation_id: int) -> None:
    """Tell a customer whose page is closed that support has answered (a fresh link)."""
    from chat.services import chat_answer_notify

    chat_answer_notify(conversation_id=conversation_id)


@shared_task
def conversations_delete_expired_task() -> None:
    from chat.services import conversations_delete_expired

    conversations_delete_expired()
