class DomainError(Exception):
    """A business rule said no. ``code`` is stable snake_case for API clients and tests."""

    def __init__(self, *, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
