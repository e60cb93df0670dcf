"""Where usage abroad is priced as at home: the EU/EEA (Regulation (EU) 2022/612)."""

EU_EEA_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    ]
)


def is_roam_like_at_home(country: str) -> bool:
    """Empty country means the home network."""
    return not country or country.upper() in EU_EEA_COUNTRIES
