"""Reading numbers the chat's edges get from outside (form fields, query strings, socket
frames): one rule for every edge."""

# Ids and sequence numbers are stored as 64-bit integers at most: a longer number is no id of
# ours, and the database driver would refuse it (an error instead of "not found").
_LARGEST = 2**63 - 1


def parse_int(value: object, default: int | None = None) -> int | None:
    """``value`` as an integer ("42", 42), else ``default``: for None, text that is not a
    whole number ("4.2", "x", a float, True), and numbers beyond 64 bits."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return number if -_LARGEST - 1 <= number <= _LARGEST else default
