"""Django settings. What differs between machines comes from the environment (SPEC §7)."""

from __future__ import annotations

import logging
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_optional, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "dev-only-secret-key-not-for-production")
if not DEBUG and SECRET_KEY.startswith("dev-only"):
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# HTTPS (`manage.py check --deploy` is clean with DEBUG=false and these defaults). Each may be
# set in the environment; the defaults follow DEBUG: off in development, on in production.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Prometheus scrapes /metrics inside the network, over plain http.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Behind a proxy that terminates TLS: trust its X-Forwarded-Proto (only if it always sets it).
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "sis_sync",
    "staging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the admin read while a sync writes; the timeout waits out short write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# Where upload providers keep their last bundle (SPEC §5: a manual sync re-reads it).
SIS_SYNC_DATA_DIR = Path(env_str("SIS_SYNC_DATA_DIR", str(BASE_DIR / "var" / "data")))

# Secrets at rest (SPEC §2). The first key encrypts, every key decrypts.
SIS_SYNC_DEV_ENCRYPTION_KEY = "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZC0="
SIS_SYNC_ENCRYPTION_KEYS = env_list("SIS_SYNC_ENCRYPTION_KEYS", [])
if not SIS_SYNC_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("SIS_SYNC_ENCRYPTION_KEYS must be set when DEBUG is false")
    logging.getLogger("sis_sync").warning(
        "SIS_SYNC_ENCRYPTION_KEYS is not set: provider secrets are encrypted with a public "
        "development key. Set it before storing real credentials."
    )
    SIS_SYNC_ENCRYPTION_KEYS = [SIS_SYNC_DEV_ENCRYPTION_KEY]

MAX_CONCURRENT_SYNCS = env_int("MAX_CONCURRENT_SYNCS", 2, minimum=1)
SYNC_LOCK_TIMEOUT = env_int("SYNC_LOCK_TIMEOUT", 1800, minimum=10)
SIS_SYNC_ALLOW_PRIVATE_HOSTS = env_bool("SIS_SYNC_ALLOW_PRIVATE_HOSTS", False)
# A sync stage (extract, load) is stopped softly, then killed, after these many seconds.
SYNC_TASK_TIME_LIMIT = env_int("SYNC_TASK_TIME_LIMIT", 3 * 3600, minimum=60)
SYNC_TASK_SOFT_TIME_LIMIT = SYNC_TASK_TIME_LIMIT - 60
# On workers, extract the entity types of a connector that reads them separately (the OneRoster
# REST connectors) as parallel tasks, joined before the load.
SYNC_EXTRACT_SPLIT = env_bool("SYNC_EXTRACT_SPLIT", True)
# Seconds before an extraction that hit a transient source error (timeout, 5xx) runs again.
SYNC_RETRY_DELAY = env_int("SYNC_RETRY_DELAY", 60, minimum=0)

# Redis: broker, locks and the semaphore. Unset = embedded mode: tasks run in-process.
REDIS_URL = env_optional("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "sync"
CELERY_TASK_ROUTES = {"sis_sync.*": {"queue": "sync"}}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long tasks: a worker takes one at a time
CELERY_TASK_ACKS_LATE = True
# Redis redelivers an unacknowledged task after the visibility timeout: keep it above the
# hard time limit, or a long sync would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": SYNC_TASK_TIME_LIMIT + 600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The HTTP API (SPEC §5). Views answer errors as {"error": {"code", "message", "details"}}.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["sis_sync.api.access.HasAdminRole"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["sis_sync.api.access.ApiUserThrottle"],
    "DEFAULT_PAGINATION_CLASS": "sis_sync.api.pagination.LimitOffset",
    "EXCEPTION_HANDLER": "sis_sync.api.errors.exception_handler",
    "NON_FIELD_ERRORS_KEY": "nonFieldErrors",
}
# Requests per authenticated user; over it the API answers 429 with Retry-After.
SIS_SYNC_API_THROTTLE_RATE = env_rate("SIS_SYNC_API_THROTTLE_RATE", "1200/minute")
SPECTACULAR_SETTINGS = {
    "TITLE": "SIS Sync API",
    "DESCRIPTION": (
        "Providers, syncs, runs, the synced roster and the audit trail of SIS Sync. "
        "Authenticate with `Authorization: Token <key>` (`manage.py create_api_user`) or a "
        'Django admin session. Errors are `{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page's scripts are served by this app (no CDN): it works on closed networks.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "sis_sync.models.runs.RunStatus",
        "RoleEnum": "sis_sync.models.roster.Role",
        "ProviderTypeEnum": "sis_sync.models.providers.ProviderType",
    },
}
# Throttle counters: shared by every web process through Redis when there is one.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "sis-sync",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "text").lower()  # text | json
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "sis_sync.logs.ContextFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s "
            "[run=%(run_id)s provider=%(provider_id)s] %(message)s"
        },
        "json": {"()": "sis_sync.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("sis_sync", "connectors", "loader", "staging")
    },
}
