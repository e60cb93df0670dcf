"""Settings for bench/invoice_page.py only: the product's settings plus one bare route."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
