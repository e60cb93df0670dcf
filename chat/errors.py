"""The customer's words for each refusal of the chat, by the DomainError's stable code."""

import logging

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import DomainError

logger = logging.getLogger(__name__)

ERROR_TEXTS: dict[str, Promise] = {
    "message_empty": gettext_lazy("Write a message first."),
    "message_too_long": gettext_lazy("The message is too long. Split it into shorter ones."),
    "message_invalid": gettext_lazy("The message has characters we cannot take. Try again."),
    "chat_rate_limited": gettext_lazy(
        "You have sent many messages just now. Wait a minute and try again."
    ),
    "line_not_found": gettext_lazy("That line is not on this invoice."),
    "conversation_not_found": gettext_lazy("We could not find that conversation."),
    "conversation_open": gettext_lazy("You can rate the conversation once it is closed."),
    "rating_invalid": gettext_lazy("Choose from 1 to 5."),
    "chat_not_here": gettext_lazy("Ask about the invoice this credit note belongs to."),
    "client_id_invalid": gettext_lazy("The page could not send that. Reload it and try again."),
}


def error_text(error: DomainError) -> str:
    text = ERROR_TEXTS.get(error.code)
    if text is None:
        logger.warning("No customer text for chat refusal %s", error.code)
        return _("Something went wrong. Try again, or call customer support.")
    return str(text)
