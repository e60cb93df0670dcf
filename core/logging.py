import logging
import re

# /i/<token>/ — the capability in an invoice link must not be written to any log.
_TOKEN_IN_PATH = re.compile(r"(/i/)[A-Za-z0-9_\-]{16,}")


def mask_invoice_tokens(text: str) -> str:
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
