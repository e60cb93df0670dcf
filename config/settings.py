"""Touchpoint settings: every value comes from the environment, with a safe embedded default.

Embedded default (no variables set): SQLite file, in-memory channel layer, local-memory
cache, Celery tasks run eagerly in-process, e-mail and SMS to the console and the outbox.
Production: DATABASE_URL (PostgreSQL), REDIS_URL (cache + channel layer), CELERY_BROKER_URL.
"""

import os
from decimal import Decimal
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("TOUCHPOINT_ENV") == "production":
        raise RuntimeError("SECRET_KEY must be set in production")
    SECRET_KEY = "touchpoint-embedded-default-not-for-production"  # noqa: S105

ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "billing",
    "invoices",
    "dunning",
    "offers",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
VAR_DIR = Path(os.environ.get("TOUCHPOINT_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database and stored PDFs live here
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'touchpoint.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the page read while a bill run writes; a busy timeout instead of "locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif int(os.environ.get("DB_POOL_MAX_SIZE", "0")) > 0:
    # For ASGI processes that serve HTTP too: there each request runs in a thread of its own,
    # so a connection kept per thread (CONN_MAX_AGE) is never reused, and is left open until
    # the garbage collector finds it; a pool lends them instead (Django wants CONN_MAX_AGE 0).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ["DB_POOL_MAX_SIZE"]),
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache and channel layer ---------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "tp"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub: a group_send is one PUBLISH, and each process hears it once and
            # hands it to its own sockets. Nothing is kept for a socket that is not listening,
            # which the chat does not need: its layer is only a doorbell (every message is in
            # the database first, and a socket reads what it missed from there).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = env_bool(
    "CELERY_TASK_ALWAYS_EAGER", not os.environ.get("CELERY_BROKER_URL")
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# A task whose worker vanished (kill -9, a lost machine) is given to another worker after this
# long (Redis broker). Longer than any task runs: a bill run's chunk takes seconds, a PDF batch
# a minute. Shorter in tests that kill workers.
_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT,
    # each worker looks for such tasks every few seconds (one small Redis query), not kombu's
    # default of every 100 s, so a task comes back soon after its timeout
    "unacked_restore_interval": max(1, min(10, _VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
}
# Run by exactly one `celery beat`; every task is idempotent.
CELERY_BEAT_SCHEDULE = {
    "plan-changes-apply-due": {
        "task": "billing.tasks.plan_changes_apply_due_task",
        "schedule": 60 * 60,  # hourly: a change due today is applied within the hour
    },
    "offers-expire": {"task": "offers.tasks.offers_expire_task", "schedule": 24 * 60 * 60},
    "chat-retention": {
        "task": "chat.tasks.conversations_delete_expired_task",
        "schedule": 24 * 60 * 60,
    },
    # Stripe events whose webhook never reached us (our outage, a lost answer): fetched and
    # applied once a day; what was applied already is known by its event id.
    "stripe-events-catch-up": {
        "task": "invoices.tasks.stripe_events_catch_up_task",
        "schedule": 24 * 60 * 60,
    },
    "bill-runs-watch": {"task": "invoices.tasks.bill_runs_watch_task", "schedule": 5 * 60},
    "bill-run-monthly": {
        "task": "invoices.tasks.bill_run_monthly_task",
        "schedule": 60 * 60,  # acts from BILL_RUN_DAY; a run that exists is left alone
    },
    "webhooks-send-due": {
        "task": "core.tasks.webhook_deliveries_send_task",
        "schedule": 60,  # retries that fell due; fresh events are sent right after commit
    },
    "api-idempotency-keys-expire": {
        "task": "core.tasks.idempotent_requests_delete_expired_task",
        "schedule": 60 * 60,
    },
    # Reminders go out in daytime (a customer is not texted at night); the second run takes
    # what the first could not (a worker down, an invoice locked by a payment).
    "dunning-run": {
        "task": "dunning.tasks.dunning_run_task",
        "schedule": crontab(minute=0, hour="9,14"),
    },
    # Half an hour before each dunning run: a plan broken today lets the run take the invoice
    # up again the same day; a paid one ends.
    "instalment-plans-check": {
        "task": "dunning.tasks.instalment_plans_check_task",
        "schedule": crontab(minute=30, hour="8,13"),
    },
}
CELERY_TIMEZONE = "Europe/Stockholm"  # crontab hours are Swedish time

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "sv"
LANGUAGES = [("sv", "Svenska"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Stockholm"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media-not-public/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Security headers -----------------------------------------------------------------
# "strict-origin": a request from our pages carries at most our origin, never a path, so the
# token of a customer's link never leaves in a Referer header (not even to our own access
# logs). Not "no-referrer": with it, browsers send "Origin: null" with every form POST and
# Django's CSRF check refuses them all (the invoice page's forms, the admin's login).
SECURE_REFERRER_POLICY = "strict-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
CSRF_FAILURE_VIEW = "core.csrf.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- E-mail ---------------------------------------------------------------------------
_SMTP_OPTIONS = {
    "host": os.environ.get("EMAIL_HOST", "localhost"),
    "port": int(os.environ.get("EMAIL_PORT", "25")),
    "username": os.environ.get("EMAIL_HOST_USER", ""),
    "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
    "use_tls": env_bool("EMAIL_USE_TLS", False),
}
_EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
MAILERS = {
    "default": {
        "BACKEND": _EMAIL_BACKEND,
        "OPTIONS": _SMTP_OPTIONS if _EMAIL_BACKEND.endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Touchpoint <faktura@example.se>")

# --- DRF ------------------------------------------------------------------------------
# Source systems call the API with their key (``Authorization: Bearer tp_…``, made in the
# admin, scoped, throttled per key); staff from a logged-in admin session, by the model
# permission each endpoint names (core/api_auth.py).
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "core.schema.TouchpointAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api_auth.ScopeOrStaffPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api_auth.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "core.api_auth.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Touchpoint API",
    "VERSION": "1.0.0",
    # Swagger UI and Redoc served from our own static files (drf-spectacular-sidecar), no CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging: invoice-link tokens never reach a log line ------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_tokens": {"()": "core.logging.MaskInvoiceTokensFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_tokens"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's own default handlers (its unfiltered console, AdminEmailHandler) are replaced:
    # every logger that can print a request path writes through the masking handler.
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # the SDK's line per request; its warnings and errors still come through
        "stripe": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}

# --- Touchpoint: the product's own settings -------------------------------------------
# The base of every link sent to a customer; links are never built from the Host header.
TOUCHPOINT_BASE_URL = os.environ.get("TOUCHPOINT_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# How long an invoice link works after it is issued, in days.
INVOICE_LINK_TTL_DAYS = int(os.environ.get("INVOICE_LINK_TTL_DAYS", "180"))
# Failed token look-ups allowed per client address and window before answering 429.
INVOICE_LINK_GUESS_LIMIT = int(os.environ.get("INVOICE_LINK_GUESS_LIMIT", "20"))
INVOICE_LINK_GUESS_WINDOW_SECONDS = int(os.environ.get("INVOICE_LINK_GUESS_WINDOW_SECONDS", "600"))
# How many reverse proxies in front of the app append to X-Forwarded-For (0: none, use the
# socket's address). Rate limits key on the client address this yields.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
# Days from invoice date to due date.
PAYMENT_TERMS_DAYS = int(os.environ.get("PAYMENT_TERMS_DAYS", "30"))
# Customers per bill-run transaction: numbers for a chunk are allocated under one row lock.
BILL_RUN_CHUNK_SIZE = int(os.environ.get("BILL_RUN_CHUNK_SIZE", "500"))
# Customers per worker task of a bill run (invoices/services/bill_run_workers.py);
# each task issues them in transactions of BILL_RUN_CHUNK_SIZE.
BILL_RUN_TASK_CUSTOMERS = int(os.environ.get("BILL_RUN_TASK_CUSTOMERS", "2000"))
# The Celery queue of those tasks: the default queue, or one of their own (workers started
# with `-Q` naming it) so a month's run and the day's deliveries do not wait for each other.
BILL_RUN_QUEUE = os.environ.get("BILL_RUN_QUEUE", "celery")
# From this day of a month, last month's bill runs start by themselves (0: only when started
# by staff or the API). Run exactly one `celery beat`.
BILL_RUN_DAY = int(os.environ.get("BILL_RUN_DAY", "0"))
# Pre-render PDFs after issue for customers who get PDF or paper invoices (else on first need).
INVOICE_PDF_PRERENDER = env_bool("INVOICE_PDF_PRERENDER", True)
# Once a bill run is complete, the workers render every other invoice's PDF in the background
# at most this many a second (one chain of batches per run, so the rate holds whatever the
# number of workers); one opened first is rendered then. 0: only on demand (the embedded
# default, where tasks run in the request).
INVOICE_PDF_RENDER_PER_SECOND = float(
    os.environ.get("INVOICE_PDF_RENDER_PER_SECOND", "0" if CELERY_TASK_ALWAYS_EAGER else "10")
)
INVOICE_PDF_RENDER_BATCH = 20
# Delivery of invoice links: SMS through a pluggable backend (e-mail uses EMAIL_BACKEND).
SMS_BACKEND = os.environ.get("SMS_BACKEND", "core.sms.ConsoleSmsBackend")
# The seller, printed on every invoice (mervärdesskattelagen ch. 17 § 24).
SELLER = {
    "name": os.environ.get("SELLER_NAME", "Nordtele AB"),
    "address": os.environ.get("SELLER_ADDRESS", "Sveavägen 44"),
    "postal_code": os.environ.get("SELLER_POSTAL_CODE", "111 34"),
    "city": os.environ.get("SELLER_CITY", "Stockholm"),
    "org_number": os.environ.get("SELLER_ORG_NUMBER", "556677-8899"),
    "vat_number": os.environ.get("SELLER_VAT_NUMBER", "SE556677889901"),
    "bankgiro": os.environ.get("SELLER_BANKGIRO", "5050-1055"),
    "swish": os.environ.get("SELLER_SWISH", "123 118 11 89"),  # "" for no Swish
    "email": os.environ.get("SELLER_EMAIL", "kundservice@nordtele.example"),
    "phone": os.environ.get("SELLER_PHONE", "0771-10 10 10"),
    "f_tax": env_bool("SELLER_F_TAX", True),
}

# --- Dunning: the legal figures, each in one place with its source -------------------------
# Swedish law as of late 2026; an operator updates a figure here (or in the environment) when
# the law changes. The reference rate itself is a table in the admin (dunning.ReferenceRate).
# Påminnelseavgift: at most this per claim, once, and only where it was agreed before the debt
# arose (lag (1981:739) om ersättning för inkassokostnader m.m. § 2, förordning (1981:1057)).
DUNNING_REMINDER_FEE_CAP = Decimal(os.environ.get("DUNNING_REMINDER_FEE_CAP", "60.00"))
# Avbetalningsplan: a fee of at most this, agreed in writing (förordning (1981:1057)).
DUNNING_INSTALMENT_FEE_CAP = Decimal(os.environ.get("DUNNING_INSTALMENT_FEE_CAP", "170.00"))
# Inkassokrav: the collection agency's fee is at most this (förordning (1981:1057)).
DUNNING_COLLECTION_FEE_CAP = Decimal(os.environ.get("DUNNING_COLLECTION_FEE_CAP", "180.00"))
# Dröjsmålsränta: the reference rate plus this many percentage points, from the due date
# (räntelagen (1975:635) § 6 with § 9).
DUNNING_INTEREST_MARGIN = Decimal(os.environ.get("DUNNING_INTEREST_MARGIN", "8.00"))
# Days a reminder gives before the next step, the policy's default: Norway's inkassoloven § 9
# requires 14 (a Swedish claim needs a reasonable time; the same 14 days serve both).
DUNNING_DUE_DATE_SHIFT_DAYS = int(os.environ.get("DUNNING_DUE_DATE_SHIFT_DAYS", "14"))
# Interest below this many kronor is not charged with a step: it keeps running and comes
# with a later one (a product choice, not a legal figure).
DUNNING_INTEREST_MINIMUM = Decimal(os.environ.get("DUNNING_INTEREST_MINIMUM", "1.00"))
# Ids read per query by the dunning task (memory stays bounded); each invoice is then acted
# on in a transaction of its own.
DUNNING_CHUNK_SIZE = int(os.environ.get("DUNNING_CHUNK_SIZE", "200"))

# --- Support chat -------------------------------------------------------------------------
# Staff in this group (and superusers) answer chats at /support/.
CHAT_SUPPORT_GROUP = os.environ.get("CHAT_SUPPORT_GROUP", "Support")
CHAT_MESSAGE_MAX_CHARS = int(os.environ.get("CHAT_MESSAGE_MAX_CHARS", "2000"))
CHAT_CUSTOMER_MESSAGES_PER_MINUTE = int(os.environ.get("CHAT_CUSTOMER_MESSAGES_PER_MINUTE", "20"))
# An answer written while the customer's page is closed also goes by e-mail/SMS, at most
# once per conversation in this many minutes.
CHAT_NOTIFY_EVERY_MINUTES = int(os.environ.get("CHAT_NOTIFY_EVERY_MINUTES", "15"))
# Conversations closed (or silent) longer than this are deleted with their messages.
CHAT_RETENTION_DAYS = int(os.environ.get("CHAT_RETENTION_DAYS", "365"))
# When support answers (Europe/Stockholm): weekday numbers (Monday = 0) and hours, shown when
# no agent is online, e.g. "0-4 08:00-17:00".
CHAT_SUPPORT_HOURS = os.environ.get("CHAT_SUPPORT_HOURS", "0-4 08:00-17:00")
# Origins a websocket may come from, besides the hosts in ALLOWED_HOSTS.
CHAT_ALLOWED_ORIGINS = [
    o.strip() for o in os.environ.get("CHAT_ALLOWED_ORIGINS", "").split(",") if o.strip()
]
# Frames one chat socket may send: a burst of CHAT_SOCKET_FRAMES, refilled at that many per
# CHAT_SOCKET_FRAMES_SECONDS; more closes the socket (4408). A page sends a ping every 30 s,
# a typing frame every few seconds while someone types and a read receipt per message.
CHAT_SOCKET_FRAMES = int(os.environ.get("CHAT_SOCKET_FRAMES", "20"))
CHAT_SOCKET_FRAMES_SECONDS = int(os.environ.get("CHAT_SOCKET_FRAMES_SECONDS", "10"))
# Sign-in attempts (POSTs) to the support console per client address and window, then 429.
SUPPORT_LOGIN_ATTEMPTS = int(os.environ.get("SUPPORT_LOGIN_ATTEMPTS", "10"))
SUPPORT_LOGIN_WINDOW_SECONDS = int(os.environ.get("SUPPORT_LOGIN_WINDOW_SECONDS", "600"))

# --- Card payments (Stripe) -----------------------------------------------------------------
# Card payment is offered on the invoice page only when all three keys are set. STRIPE_API_BASE
# points the SDK at another Stripe-compatible server (localstripe in tests and demos);
# STRIPE_JS_URL is where the page loads Stripe.js from when the customer chooses to pay by card
# (Stripe requires its own copy; localstripe serves a stand-in under /js.stripe.com/v3/).
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
# The Stripe API version our requests are written for (set the webhook endpoint's version to
# the same in Stripe's dashboard, so events carry objects of that shape).
STRIPE_API_VERSION = os.environ.get("STRIPE_API_VERSION", "2024-06-20")
# Seconds a call to Stripe may take before the customer is asked to try again (the attempt
# keeps its idempotency key, so the retry cannot charge twice).
STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "15"))
# How far back the daily task reads Stripe's events (Stripe retries a webhook for three days
# and keeps events for thirty).
STRIPE_EVENTS_CATCH_UP_DAYS = int(os.environ.get("STRIPE_EVENTS_CATCH_UP_DAYS", "4"))
