import logging
import re

# /i/<token>/ (an invoice link), /u/<token>/ (the undo link of a plan change) and
# /ws/chat/<token>/ (the chat socket of an invoice link): the capability in a customer's link
# must not be written to any log or stored message.
_TOKEN_IN_PATH = re.compile(r"(/[iu]/|/ws/chat/)[A-Za-z0-9_\-]{16,}")


def mask_invoice_tokens(text: str) -> str:
    """Replace the token of every invoice link, undo link and chat socket path in ``text``
    with ``[token]``."""
    return _TOKEN_IN_PATH.sub(r"\1[token]", text)


class MaskInvoiceTokensFilter(logging.Filter):
    """Rewrites invoice-link tokens in log records (access logs, errors) to ``[token]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_invoice_tokens(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
