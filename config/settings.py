"""One settings module, driven by the environment.

With nothing set the platform runs embedded: SQLite under ``var/``, Celery over kombu's
filesystem transport under ``var/broker/`` (a real broker protocol that needs no server), media
under ``var/media/``. Production sets ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (or
``CELERY_BROKER_URL``), ``SECRET_KEY``, ``ALLOWED_HOSTS`` and ``DEBUG=0``.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from csp.constants import NONCE
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_rates, env_str, env_url
from config.observability import sentry_init

django_stubs_ext.monkeypatch()  # lets admin.ModelAdmin[Model] etc. be subscripted at run time

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ARENA_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
_INSECURE_DEV_KEY = "insecure-dev-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _INSECURE_DEV_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "axes",
    "ninja",  # serves the Swagger UI from its own static files (otherwise it loads them from a CDN)
    "arena",
    "workers",
    "frontend",
]

MIDDLEWARE = [
    # First: every log line of the request carries its id, and the latency covers the rest.
    "config.observability.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, with a fixed and stricter policy for JSON answers.
    "frontend.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session and CSRF: control characters and non-JSON API bodies stop here.
    "frontend.middleware.RequestHygieneMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "frontend.middleware.MessageMiddleware",  # Django's, on pages only
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "arena.middleware.VoterMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Listed first so that frontend/templates/admin/ can extend the admin's own templates.
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ]
        },
    }
]

# --- database ---------------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'arena.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the Celery worker write to the same file: WAL lets readers proceed
    # during a write, IMMEDIATE transactions take the write lock up front (no upgrade deadlocks),
    # and the timeout waits for the lock instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so that a worker subprocess in the integration tests sees the test DB.
    # ARENA_TEST_DB lets two test runs on one checkout use separate files.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("ARENA_TEST_DB", str(VAR_DIR / "test-arena.sqlite3"))
    }
else:
    # Django turns psycopg's prepared statements off unless asked (for poolers). A statement
    # the battle and vote paths (arena.hotpath) have run 5 times on a connection is prepared:
    # PostgreSQL then neither parses nor plans it again, which was about a third of its CPU per
    # vote. The ORM's client-side binding cursors never prepare, whatever this says.
    prepare = True
    if env_bool("DB_TRANSACTION_POOLER", False):
        # Behind PgBouncer in transaction mode a session does not outlive a transaction: no
        # server-side cursors (QuerySet.iterator), and prepared statements only where the
        # pooler tracks them (PgBouncer 1.21+ with max_prepared_statements > 0).
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        prepare = env_bool("DB_POOLER_PREPARED_STATEMENTS", False)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5 if prepare else None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache ------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    env_url("REDIS_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))
    CACHES = {"default": {"BACKEND": "config.cache.PooledRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL",
    REDIS_URL or "filesystem://",
    schemes=("filesystem", "redis", "rediss", "amqp", "pyamqp", "memory"),
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's own filesystem transport can hand a consumer a half-written message (workers.broker).
    CELERY_BROKER_TRANSPORT = "workers.broker:Transport"
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
        # The filesystem transport polls its folder; kombu's 1 s default adds ~1 s to every job.
        "polling_interval": 0.05,
    }
else:
    if CELERY_BROKER_URL.startswith("redis://"):
        # kombu's own Redis transport makes a worker exit when Redis restarts (workers.redis_broker).
        # Not for rediss://: kombu turns TLS on by the transport's name, which this would change.
        CELERY_BROKER_TRANSPORT = "workers.redis_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        # Sending a task from a web request must fail fast when the broker is down (kombu's
        # default retries for about 6 s against a stopped Redis): one quick retry, then the
        # caller's fallback (beat catches up). Workers reconnect under their own retry policy.
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }
CELERY_TASK_IGNORE_RESULT = True  # state lives on the rows the tasks update (Asset.status)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "light"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ROUTES = {
    "workers.top_up_cache": {"queue": "light"},
    "workers.reap_stale_generations": {"queue": "light"},
    "workers.rebuild_arena_leaderboards": {"queue": "light"},
    "workers.rebuild_leaderboards": {"queue": "light"},
    "workers.scan_fraud": {"queue": "light"},
    # The aggregator has a queue of its own, so a long fraud scan never delays counting votes.
    "workers.drain_tallies": {"queue": "tallies"},
    "workers.drain_all_tallies": {"queue": "tallies"},
}
# How often the periodic fraud scan runs (seconds); each scan judges only the voters of new votes.
FRAUD_SCAN_INTERVAL_S = env_int("FRAUD_SCAN_INTERVAL_S", 300, minimum=10)
# Earned trust: the weight (in %) of a vote from an identity that has voted in one sitting;
# it grows to 100% with 10 votes spread over 2 days (ranking.fraud.trust). 100 turns it off.
FRAUD_TRUST_FLOOR_PCT = env_int("FRAUD_TRUST_FLOOR_PCT", 10, minimum=5, maximum=100)
CELERY_BEAT_SCHEDULE = {
    "scan-fraud": {"task": "workers.scan_fraud", "schedule": float(FRAUD_SCAN_INTERVAL_S)},
    "top-up-asset-cache": {"task": "workers.top_up_cache", "schedule": 60.0},
    "reap-stale-generations": {"task": "workers.reap_stale_generations", "schedule": 30.0},
    "rebuild-leaderboards": {"task": "workers.rebuild_leaderboards", "schedule": 300.0},
    # The safety net of the aggregator: votes whose drain request was lost (broker or cache down).
    "drain-tallies": {"task": "workers.drain_all_tallies", "schedule": 5.0},
    # The operators' overview (/admin/) reads hourly rollups of votes and battles.
    "rollup-activity": {"task": "workers.rollup_activity", "schedule": 60.0},
}
# The domain (arena) sends generation jobs through this one function (asset_id, queue, backend),
# named here so that arena never imports workers.
GENERATION_JOB_SENDER = "workers.tasks.generate_asset_enqueue"
# "Check now" in the admin sends a model's backend check to a worker of its queue through this
# function (model_id, queue): the web host checks a config's shape only, the worker the rest.
BACKEND_CHECK_SENDER = "workers.tasks.backend_check_enqueue"
# Readers never fit a leaderboard: one that finds it stale asks for a rebuild through this
# function (arena_id), at most once per arena per LEADERBOARD_REBUILD_DEBOUNCE_S.
LEADERBOARD_REBUILD_SENDER = "workers.tasks.leaderboard_rebuild_enqueue"
LEADERBOARD_REBUILD_DEBOUNCE_S = env_int("LEADERBOARD_REBUILD_DEBOUNCE_S", 10, minimum=0)
# Votes are counted off the request: a vote's commit asks the aggregator to drain its arena's
# pending votes through this function (arena_id), at most once per arena per
# TALLY_DRAIN_DEBOUNCE_S; the drain runs when that window closes and takes every vote of it, so
# a vote is counted within the window plus the light queue's latency plus one drain. With
# TALLY_DRAIN_ON_COMMIT False it asks inside the vote's transaction (the tests, whose
# transactions never commit, drain that way).
# Each web process keeps an arena's row and its pool of ready outputs this long (ms) before reading
# them again (arena.localcache): the battle path then reads neither per request.
ARENA_LOCAL_CACHE_S = env_int("ARENA_LOCAL_CACHE_MS", 2000, minimum=0) / 1000
TALLY_DRAIN_SENDER = "workers.tasks.tallies_drain_enqueue"
TALLY_DRAIN_DEBOUNCE_S = env_int("TALLY_DRAIN_DEBOUNCE_S", 1, minimum=0)
TALLY_DRAIN_ON_COMMIT = True
# A drain leaves votes younger than this (ms) for the next one: on PostgreSQL a vote's id is
# handed out before it commits, and one applied before an older vote commits costs a full
# ratings replay. A vote transaction that outlasts this still comes out right, by that replay.
TALLY_SETTLE_S = env_int("TALLY_SETTLE_MS", 500, minimum=0) / 1000
# First retry delay of a transient generation error (doubles each retry, jittered).
GENERATION_RETRY_BACKOFF_S = env_int("GENERATION_RETRY_BACKOFF_S", 10, minimum=1)
# A running job beats this often; one silent for GENERATION_STALE_AFTER_S lost its worker (the
# reaper, every 30 s, sends it again): about 2 minutes from a killed worker to a resent job.
# A Celery worker lowers its CPU priority by this much (nice) when it starts: on a host that
# also serves web requests, the aggregator, rebuilds and generation yield the CPU to voters
# (their work waits milliseconds, a voter's request would wait as long). 0 leaves it as is.
WORKER_NICE = env_int("WORKER_NICE", 10, minimum=0, maximum=19)
GENERATION_HEARTBEAT_S = env_int("GENERATION_HEARTBEAT_S", 20, minimum=1)
GENERATION_STALE_AFTER_S = env_int("GENERATION_STALE_AFTER_S", 90, minimum=10)
if GENERATION_STALE_AFTER_S < 3 * GENERATION_HEARTBEAT_S:
    raise ImproperlyConfigured(
        "GENERATION_STALE_AFTER_S must be at least 3 x GENERATION_HEARTBEAT_S, so that one "
        "late beat does not take a live job away from its worker"
    )
# A voter's own-prompt battle waits on its jobs: one still unclaimed after this is sent again.
GENERATION_LIVE_RESEND_S = env_int("GENERATION_LIVE_RESEND_S", 120, minimum=10)
# A pending job sent longer ago than this was lost in transit and is sent again by the top-up.
GENERATION_RESEND_AFTER_S = env_int("GENERATION_RESEND_AFTER_S", 1800, minimum=60)

# --- auth, i18n, static, media ----------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",  # argon2-cffi is a dependency
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",  # reads (and upgrades) older hashes
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login before the password check
    "django.contrib.auth.backends.ModelBackend",
]
# Brute-force protection (django-axes) on /accounts/login/ and /admin/login/: after
# AXES_FAILURE_LIMIT failed logins for one username from one address, that pair is locked out
# for AXES_COOLOFF_MINUTES (an attacker cannot lock a username out for everyone). Attempts and
# lockouts are listed in the admin ("Axes"); `manage.py axes_reset` lifts them.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "arena.middleware.client_ip"  # honours ARENA_TRUST_X_FORWARDED_FOR
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_VERBOSE = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# The pages are in English only; with nothing translated, i18n would only cost lookups.
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)  # off when a front proxy serves MEDIA_ROOT itself
# Behind nginx: media requests still reach Django, which answers with an X-Accel-Redirect to this
# internal location (it must end with "/"); nginx sends the file. Empty: Django sends it.
MEDIA_ACCEL_REDIRECT = env_str("MEDIA_ACCEL_REDIRECT", "")
if MEDIA_ACCEL_REDIRECT and not (
    MEDIA_ACCEL_REDIRECT.startswith("/") and MEDIA_ACCEL_REDIRECT.endswith("/")
):
    raise ImproperlyConfigured(
        f"MEDIA_ACCEL_REDIRECT must be a path that starts and ends with '/', got "
        f"{MEDIA_ACCEL_REDIRECT!r}"
    )

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind TLS (README, "Deploying behind TLS"): redirect plain HTTP and send HSTS. The probes stay
# on plain HTTP inside the network. With a TLS-terminating proxy in front, SECURE_PROXY_SSL_HEADER
# trusts its X-Forwarded-Proto (set it only when that proxy always sets the header).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp) on every response: scripts only from this origin, plus the
# one inline import map, which carries the request's nonce. The splat viewer compiles WebAssembly
# and runs its sorter in a blob: worker; model-viewer and it read textures from blob:/data: URLs.
# Styles allow inline attributes (htmx and the viewers set them). CSP_REPORT_URI adds reporting.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF, NONCE, "'wasm-unsafe-eval'"],
        "worker-src": [CSP_SELF, "blob:"],
        "style-src": [CSP_SELF, "'unsafe-inline'"],
        "img-src": [CSP_SELF, "data:", "blob:"],
        "media-src": [CSP_SELF, "blob:"],
        "connect-src": [CSP_SELF, "blob:", "data:"],
        "font-src": [CSP_SELF, "data:"],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_SELF],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
        **(
            {"report-uri": [env_str("CSP_REPORT_URI", "")]} if env_str("CSP_REPORT_URI", "") else {}
        ),
    }
}

# --- arena ------------------------------------------------------------------------------------
# Client addresses and user agents are stored only as keyed HMACs (never raw) so that fraud
# detection can group votes by origin without keeping personal data.
VOTER_HASH_KEY = env_str(
    "VOTER_HASH_KEY", hashlib.sha256(f"voter-hash:{SECRET_KEY}".encode()).hexdigest()
)
ARENA_TRUST_X_FORWARDED_FOR = env_bool("ARENA_TRUST_X_FORWARDED_FOR", False)
# Words and phrases refused in voters' own prompts (comma-separated; whole words, any case).
PROMPT_BLOCKLIST = env_list(
    "PROMPT_BLOCKLIST",
    ["nude", "naked", "nsfw", "porn", "gore", "beheading", "swastika", "child abuse"],
)
# A battle token older than this cannot be voted with (seconds).
BATTLE_TOKEN_MAX_AGE_S = env_int("BATTLE_TOKEN_MAX_AGE_S", 6 * 3600, minimum=10)
# The least time a careful look at one battle takes, per media type (milliseconds). A vote cast
# sooner is recorded but marked ``too_fast``; fraud detection's speed test reads the marks.
# Videos must be watched and 3D assets turned, so they get longer than images.
MIN_VIEW_MS = {
    "image": env_int("MIN_VIEW_MS_IMAGE", 1500, minimum=0),
    "video": env_int("MIN_VIEW_MS_VIDEO", 4000, minimum=0),
    "mesh": env_int("MIN_VIEW_MS_3D", 4000, minimum=0),
    "splat": env_int("MIN_VIEW_MS_3D", 4000, minimum=0),
}
# Single-key voting shortcuts (A, B, T, X, 1-4, N, P). WCAG 2.1.4 asks that they can be turned
# off: this turns them off for the whole site; voters can also turn them off for themselves on
# the voting page (a checkbox, remembered by their browser).
VOTE_SHORTCUTS = env_bool("VOTE_SHORTCUTS", True)
VOTER_COOKIE_NAME = "arena_voter"
VOTER_COOKIE_MAX_AGE_S = 365 * 24 * 3600

# --- rate limits ------------------------------------------------------------------------------
# Counted in the cache (Redis when REDIS_URL is set), per voter cookie, per hashed network prefix
# and globally; see config.env.rate_limits_parse for the format ("<scope>=<limit>/<window>", comma-separated).
# The defaults sit far above a careful human (one vote takes seconds of looking) and well below a
# script: 60 battles and 30 votes a minute per browser, ten browsers' worth per network.
RATE_LIMITS_ENABLED = env_bool("RATE_LIMITS_ENABLED", True)
RATE_LIMIT_BATTLES = env_rates("RATE_LIMIT_BATTLES", "voter=60/m,prefix=600/m,global=6000/m")
RATE_LIMIT_VOTES = env_rates("RATE_LIMIT_VOTES", "voter=30/m,prefix=300/m,global=3000/m")
RATE_LIMIT_DOWNLOADS = env_rates("RATE_LIMIT_DOWNLOADS", "prefix=10/h,global=120/h")

# --- observability ----------------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request_id, and in a
# Celery worker task_id/task_name). Every record carries the request id (X-Request-ID).
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
            "stream": sys.stderr,
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every URL at INFO, pre-signed query strings of remote generators included.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}
# Celery workers log through the configuration above instead of replacing the root logger.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# /metrics (Prometheus). METRICS_TOKEN, when set, is required as "Authorization: Bearer <token>".
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Sentry (pip install '.[ops]'): errors of the web and the workers, with no personal data.
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    sentry_init(
        SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=env_int("SENTRY_TRACES_SAMPLE_PCT", 0, minimum=0, maximum=100) / 100,
    )
