import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A business rule said no. ``code`` is stable snake_case for API clients and tests."""

    def __init__(self, *, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code


def refusal_words(
    texts: Mapping[str, object], error: DomainError, *, fallback: str, **params: str
) -> str:
    """The words ``texts`` has for ``error``'s code (a %-format string, lazy or not), filled
    with ``params``; ``fallback`` when it has none or a parameter is missing (logged: a
    refusal a customer may see deserves its own words)."""
    text = texts.get(error.code)
    if text is None:
        logger.warning("No words for refusal %s", error.code)
        return fallback
    try:
        return str(text) % params
    except (KeyError, TypeError, ValueError):
        logger.warning("Missing parameters for refusal %s", error.code)
        return fallback
