from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        from django.core import checks

        from chat.checks import check_support_hours

        checks.register(check_support_hours)
