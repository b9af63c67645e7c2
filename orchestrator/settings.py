"""Loopgate settings, read from the environment (twelve-factor).

Defaults run the embedded mode out of the box: a SQLite file, Celery's in-memory
transport with a worker thread inside the server, and Channels' in-memory layer.
Set ``DATABASE_URL`` and ``REDIS_URL`` for production. With ``DEBUG`` off, a
missing ``SECRET_KEY`` or ``ALLOWED_HOSTS`` fails loudly instead of falling back.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_graph_map(name: str) -> dict[str, int]:
    """``finops=30,*=90``: a whole number per graph name, ``*`` for every other graph."""
    result: dict[str, int] = {}
    for item in (os.environ.get(name) or "").split(","):
        if not item.strip():
            continue
        graph, _, number = item.partition("=")
        if not graph.strip() or not number.strip().isdigit() or int(number) <= 0:
            raise ImproperlyConfigured(f"{name} entries are graph=number (a whole number above 0), got {item!r}")
        result[graph.strip()] = int(number)
    return result


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-dev-only-key-set-SECRET_KEY-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "channels",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "template_partials",
    "orchestrator",
    "approvals",
    "traces",
    "ops",
    "agent_api",
    "slack_approvals",
    "advisor",
]

MIDDLEWARE = [
    # First: probes and the metrics scrape reach a pod by its IP, which ALLOWED_HOSTS does not name.
    "ops.middleware.OpsEndpointsMiddleware",
    "ops.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body (CSRF reads POST): too big a body is refused unread.
    "orchestrator.middleware.RequestSizeLimitMiddleware",
    "orchestrator.middleware.NulRefusalMiddleware",
    # Before anything that answers on its own: a preflight to /langgraph/ gets its CORS answer.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Pages that answer htmx with a fragment say Vary: HX-Request (Back never shows a bare fragment).
    "orchestrator.htmx.VaryOnHtmxMiddleware",
    # Last: turns a login refused for a lockout into orchestrator.throttling's 429.
    "axes.middleware.AxesMiddleware",
]

# Login throttling (django-axes; orchestrator/throttling.py): per account and per address.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOOPGATE_LOGIN_FAILURE_LIMIT = env_int("LOOPGATE_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOOPGATE_LOGIN_LOCKOUT_SECONDS = env_int("LOOPGATE_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
AXES_FAILURE_LIMIT = LOOPGATE_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = datetime.timedelta(seconds=LOOPGATE_LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = "orchestrator.throttling.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "orchestrator.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "orchestrator.throttling.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = False  # else one account of the attacker's own resets its address's count
AXES_VERBOSE = False
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login: only failures are kept, and they expire

ROOT_URLCONF = "orchestrator.urls"
ASGI_APPLICATION = "orchestrator.asgi.application"
WSGI_APPLICATION = "orchestrator.wsgi.application"

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
                "orchestrator.context_processors.loopgate",
                "approvals.context_processors.nav",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
SQLITE_PATH = BASE_DIR / "var" / "loopgate.sqlite3"
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded worker writes from its own threads while the web serves:
    # WAL lets readers go on, IMMEDIATE transactions queue writers instead of
    # failing with "database is locked" on a lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_POOL", True):
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DB_POOL and DB_CONN_MAX_AGE exclude each other: set DB_POOL=0 to keep connections.")
    # Django's connection pool (psycopg_pool): LangGraph's sync loop writes from
    # threads it starts for each run, and each would otherwise open (~6 ms) and
    # close a connection of its own (docs/PERFORMANCE.md). max_size bounds the
    # connections of one process; idle ones above min_size close after max_idle.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DB_POOL_MIN_SIZE", 1),
        "max_size": env_int("DB_POOL_MAX_SIZE", 40),
        "max_idle": env_int("DB_POOL_MAX_IDLE_SECONDS", 60),
        "timeout": env_int("DB_POOL_TIMEOUT_SECONDS", 30),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker and channel layer, or the embedded in-process defaults ------
REDIS_URL = env_str("REDIS_URL") or None
EMBEDDED = REDIS_URL is None
if EMBEDDED and not DEBUG and not env_bool("LOOPGATE_EMBEDDED", False):
    # Separate `celery worker` processes never see an in-memory broker: say so
    # instead of silently running nothing.
    raise ImproperlyConfigured(
        "REDIS_URL must be set when DEBUG is off (workers and beat reach the web through Redis). "
        "To run everything in one process on purpose, set LOOPGATE_EMBEDDED=1."
    )

if EMBEDDED:
    CELERY_BROKER_URL = "memory://localhost/"
    # The default polling interval of one second would make every task wait.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.05}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CELERY_BROKER_URL = REDIS_URL
    # A task taken by a worker that died (SIGKILL, a lost machine) is handed to another worker
    # this long after it was taken. Webhook and email retries wait in a worker for their
    # countdown (up to ten minutes): the timeout must be longer, or they would run twice.
    # Every worker sweeps for such tasks every 10 s (kombu's default sweeps every 100 s).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("LOOPGATE_BROKER_VISIBILITY_SECONDS", 3600, minimum=1),
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 times idle sockets out after 5 s, which would drop
                # every idle WebSocket: disable the socket timeout.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": env_str("LOOPGATE_CHANNEL_PREFIX", "loopgate") or "loopgate",
            },
        }
    }

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env_str("LOOPGATE_QUEUE", "loopgate") or "loopgate"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Loopgate ------------------------------------------------------------------
LOOPGATE_GRAPHS = env_str("LOOPGATE_GRAPHS", "") or ""
# The built-in example graphs: on in the embedded default (DEBUG on), off in
# production unless asked for. A LOOPGATE_GRAPHS graph of the same name wins.
LOOPGATE_EXAMPLES = env_bool("LOOPGATE_EXAMPLES", DEBUG)
LOOPGATE_DEFAULT_RECURSION_LIMIT = env_int("LOOPGATE_DEFAULT_RECURSION_LIMIT", 50, minimum=1)
# How long runs.wait and runs.join of the LangGraph-compatible API (/langgraph/) hold a request open.
LOOPGATE_LANGGRAPH_WAIT_SECONDS = env_int("LOOPGATE_LANGGRAPH_WAIT_SECONDS", 600, minimum=1)
# Browser apps served from other origins (agent-chat-ui, Agent Inbox) that may call /langgraph/
# with an API token (django-cors-headers answers their preflights). Never with cookies: a page of
# another origin gets no use of a Loopgate session. Empty: none.
CORS_ALLOWED_ORIGINS = env_list("LOOPGATE_LANGGRAPH_CORS_ORIGINS", [])
CORS_URLS_REGEX = r"^/langgraph/"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-api-key", "last-event-id")
# The SDKs read the run's id from Content-Location (runs.stream, runs.wait).
CORS_EXPOSE_HEADERS = ["content-location", "location"]
# Each execution's event log (orchestrator/streams.py: a Redis stream, or memory when embedded):
# at most this many events a run, kept this long while it runs and this long after it stops.
LOOPGATE_STREAM_MAX_EVENTS = env_int("LOOPGATE_STREAM_MAX_EVENTS", 10_000, minimum=100)
LOOPGATE_STREAM_LIVE_SECONDS = env_int("LOOPGATE_STREAM_LIVE_SECONDS", 86_400, minimum=60)
LOOPGATE_STREAM_KEEP_SECONDS = env_int("LOOPGATE_STREAM_KEEP_SECONDS", 3_600, minimum=10)
LOOPGATE_STREAM_MAX_RUNS = env_int("LOOPGATE_STREAM_MAX_RUNS", 200, minimum=1)  # embedded: runs kept in memory
LOOPGATE_STREAM_PREFIX = env_str("LOOPGATE_STREAM_PREFIX", "loopgate") or "loopgate"
LOOPGATE_DEFAULT_TOKEN_BUDGET = env_int("LOOPGATE_DEFAULT_TOKEN_BUDGET", 50_000, minimum=0)
# The most output tokens one LLM call may reserve (and, for models built by orchestrator.llm, spend):
# a budgeted call reserves its prompt's estimate plus this, or what is left, before it is made.
LOOPGATE_OUTPUT_TOKEN_CAP = env_int("LOOPGATE_OUTPUT_TOKEN_CAP", 4_096, minimum=1)
# A dead worker's execution is taken over within a lease and a reconciler tick (~10 s): the
# heartbeat renews the lease every quarter of it, so a live worker keeps it through slow steps.
LOOPGATE_LEASE_SECONDS = env_int("LOOPGATE_LEASE_SECONDS", 8, minimum=4)
LOOPGATE_RECONCILE_SECONDS = env_int("LOOPGATE_RECONCILE_SECONDS", 2, minimum=1)
# A queued execution no worker took for this long is sent again (its broker message may be lost).
LOOPGATE_QUEUED_GRACE_SECONDS = env_int("LOOPGATE_QUEUED_GRACE_SECONDS", 30, minimum=1)
LOOPGATE_EMBEDDED_WORKER_THREADS = env_int("LOOPGATE_EMBEDDED_WORKER_THREADS", 4, minimum=1)
# --- Operations: probes, metrics, retention (ops/) -----------------------------------------
# /metrics answers only with "Authorization: Bearer <this>" when set.
LOOPGATE_METRICS_TOKEN = env_str("LOOPGATE_METRICS_TOKEN", "") or ""
# A worker serves its event metrics on this port (0: not at all).
LOOPGATE_WORKER_METRICS_PORT = env_int("LOOPGATE_WORKER_METRICS_PORT", 0, minimum=0)
# A worker touches this file while its database answers; `python -m ops.probe` reads its age. Empty: off.
LOOPGATE_WORKER_HEARTBEAT_FILE = env_str("LOOPGATE_WORKER_HEARTBEAT_FILE", "/tmp/loopgate-worker-heartbeat") or ""
LOOPGATE_WORKER_HEARTBEAT_SECONDS = env_int("LOOPGATE_WORKER_HEARTBEAT_SECONDS", 10, minimum=1)
# Retention per graph ("*" for the others): delete finished executions after N days, and keep only
# the last K checkpoints of finished ones (plus every checkpoint an approval, a fork or an audit line
# points at). Unset: keep everything. Applied every LOOPGATE_RETENTION_SECONDS by Celery beat.
LOOPGATE_RETENTION_DAYS = env_graph_map("LOOPGATE_RETENTION_DAYS")
LOOPGATE_RETENTION_KEEP_CHECKPOINTS = env_graph_map("LOOPGATE_RETENTION_KEEP_CHECKPOINTS")
LOOPGATE_RETENTION_SECONDS = env_int("LOOPGATE_RETENTION_SECONDS", 3600, minimum=60)
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "") or ""  # set: spans also go to this OTLP/HTTP collector

# --- Approvals: notifications, escalation, deadlines, four eyes ------------------------
# Email goes through Django's backend: the console by default; set EMAIL_BACKEND
# to django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST etc. for real mail.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "loopgate@localhost") or "loopgate@localhost"
# The address links in emails and webhooks start with (no trailing slash).
LOOPGATE_SITE_URL = (env_str("LOOPGATE_SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")
# Outgoing webhook for new and escalated approvals: JSON, signed the Standard Webhooks way
# (approvals/notifications.py); retried with backoff.
LOOPGATE_WEBHOOK_URL = env_str("LOOPGATE_WEBHOOK_URL", "") or ""
LOOPGATE_WEBHOOK_SECRET = env_str("LOOPGATE_WEBHOOK_SECRET", "") or ""
if LOOPGATE_WEBHOOK_URL and not LOOPGATE_WEBHOOK_SECRET and not DEBUG:
    raise ImproperlyConfigured("LOOPGATE_WEBHOOK_SECRET must be set when LOOPGATE_WEBHOOK_URL is (DEBUG off).")
if LOOPGATE_WEBHOOK_SECRET.startswith("whsec_"):
    import base64
    import binascii

    try:
        base64.b64decode(LOOPGATE_WEBHOOK_SECRET.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ImproperlyConfigured("LOOPGATE_WEBHOOK_SECRET starts with whsec_ but the rest is not base64.") from None
# Who hears about approvals that expired unanswered: the members of this group.
LOOPGATE_ESCALATION_GROUP = env_str("LOOPGATE_ESCALATION_GROUP", "admins") or "admins"
# How often the periodic task expires overdue approvals.
LOOPGATE_APPROVAL_EXPIRY_SECONDS = env_int("LOOPGATE_APPROVAL_EXPIRY_SECONDS", 30, minimum=1)
# Per-graph deadline for approvals whose interrupt names none: "finops=7200,*=86400" ("*" for any graph).
LOOPGATE_APPROVAL_TIMEOUTS: dict[str, int] = {}
for _item in env_list("LOOPGATE_APPROVAL_TIMEOUTS", []):
    _name, _, _seconds = _item.partition("=")
    if not _seconds.strip().isdigit() or int(_seconds) <= 0:
        raise ImproperlyConfigured(f"LOOPGATE_APPROVAL_TIMEOUTS entries are graph=seconds, got {_item!r}")
    LOOPGATE_APPROVAL_TIMEOUTS[_name.strip()] = int(_seconds)
# Graphs whose approvals the user who started the execution may not decide ("*" for all).
LOOPGATE_FOUR_EYES_GRAPHS = env_list("LOOPGATE_FOUR_EYES_GRAPHS", [])
# Graphs whose approvals are all high-stakes: one key does not decide them (approvals.js asks for a second).
LOOPGATE_HIGH_STAKES_GRAPHS = env_list("LOOPGATE_HIGH_STAKES_GRAPHS", [])
# Hosts a run of the LangGraph-compatible API may name as its `webhook` (the URL comes from the
# request, so only hosts an admin allowed are ever called); empty: run webhooks are refused.
LOOPGATE_RUN_WEBHOOK_HOSTS = env_list("LOOPGATE_RUN_WEBHOOK_HOSTS", [])

# --- Approvals in Slack (slack_approvals/; the README's "Approvals in Slack") -----------
# On when both the bot token and the signing secret are set; off (nothing posted, the
# interactivity endpoint answers 404) when neither is.
LOOPGATE_SLACK_BOT_TOKEN = env_str("LOOPGATE_SLACK_BOT_TOKEN", "") or ""
LOOPGATE_SLACK_SIGNING_SECRET = env_str("LOOPGATE_SLACK_SIGNING_SECRET", "") or ""
if bool(LOOPGATE_SLACK_BOT_TOKEN) != bool(LOOPGATE_SLACK_SIGNING_SECRET):
    raise ImproperlyConfigured("Set both LOOPGATE_SLACK_BOT_TOKEN and LOOPGATE_SLACK_SIGNING_SECRET, or neither.")
# Where new approvals are posted: the channel per graph ({"finops": "C0123ABCD"}), else the default one;
# an interrupt that names a user (slack_user, or reviewer/owner naming a linked Loopgate user) goes by DM.
LOOPGATE_SLACK_CHANNEL = env_str("LOOPGATE_SLACK_CHANNEL", "") or ""
LOOPGATE_SLACK_CHANNELS: dict[str, str] = {}
if _slack_channels := (env_str("LOOPGATE_SLACK_CHANNELS", "") or ""):
    import json as _json

    try:
        LOOPGATE_SLACK_CHANNELS = _json.loads(_slack_channels)
    except ValueError:
        LOOPGATE_SLACK_CHANNELS = None  # type: ignore[assignment]
    if not isinstance(LOOPGATE_SLACK_CHANNELS, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in LOOPGATE_SLACK_CHANNELS.items()):
        raise ImproperlyConfigured(
            f'LOOPGATE_SLACK_CHANNELS must be a JSON object of graph name to channel id, got {_slack_channels!r}')
# Where expired approvals are escalated (default: the default channel).
LOOPGATE_SLACK_ESCALATION_CHANNEL = env_str("LOOPGATE_SLACK_ESCALATION_CHANNEL", "") or LOOPGATE_SLACK_CHANNEL
# The Web API's address (the SDK's own when empty); tests point it at a stand-in on loopback.
LOOPGATE_SLACK_API_URL = env_str("LOOPGATE_SLACK_API_URL", "") or ""

# --- LLMs: any OpenAI-compatible endpoint; none set means the offline model ------
LOOPGATE_LLM_BASE_URL = env_str("LOOPGATE_LLM_BASE_URL", "") or ""
LOOPGATE_LLM_MODEL = env_str("LOOPGATE_LLM_MODEL", "gpt-4o-mini") or "gpt-4o-mini"
LOOPGATE_LLM_API_KEY = env_str("LOOPGATE_LLM_API_KEY", "") or ""
LOOPGATE_LLM_TIMEOUT_SECONDS = env_int("LOOPGATE_LLM_TIMEOUT_SECONDS", 120, minimum=1)
# Any other LangChain chat model: "package.module:factory", called with purpose=.
# The offline model streams its answers a word at a time; this pause between words makes it a slow
# model, to watch an answer grow on the execution page (demos, browser tests).
LOOPGATE_OFFLINE_TOKEN_DELAY_MS = env_int("LOOPGATE_OFFLINE_TOKEN_DELAY_MS", 0, minimum=0)
LOOPGATE_LLM_FACTORY = env_str("LOOPGATE_LLM_FACTORY", "") or ""
# Prices per million tokens, (input, output), in LOOPGATE_CURRENCY.
LOOPGATE_CURRENCY = env_str("LOOPGATE_CURRENCY", "USD") or "USD"
LOOPGATE_PRICES: dict[str, tuple[str, str]] = {
    "loopgate-offline": ("0.15", "0.60"),
    "gpt-4o-mini": ("0.15", "0.60"),
    "gpt-4o": ("2.50", "10.00"),
}

# --- Budgets, accounting and semantic routing -------------------------------------
# Prices to add or correct, as JSON merged over the table above:
# {"my-model": [input per million tokens, output per million tokens]}.
_prices_json = env_str("LOOPGATE_PRICES", "") or ""
if _prices_json:
    import json as _json

    try:
        _prices = _json.loads(_prices_json)
        if not isinstance(_prices, dict):
            raise ValueError("not an object")
        for _model, _pair in _prices.items():
            if not (isinstance(_pair, list) and len(_pair) == 2 and all(
                    isinstance(p, (int, float, str)) and not isinstance(p, bool) and float(p) >= 0 for p in _pair)):
                raise ValueError(f"{_model!r} needs [input, output], two prices of 0 or more")
            LOOPGATE_PRICES[str(_model)] = (str(_pair[0]), str(_pair[1]))
    except ValueError as _exc:  # JSONDecodeError is a ValueError
        raise ImproperlyConfigured(
            f'LOOPGATE_PRICES must be JSON like {{"model": [0.15, 0.60]}} (per million tokens): {_exc}'
        ) from None
# Embeddings for semantic routers (orchestrator/router.py): auto (the endpoint when
# LOOPGATE_LLM_BASE_URL is set, else a local sentence-transformers model already on
# disk, else lexical hashing), or force endpoint, local or hashing.
LOOPGATE_EMBEDDINGS = (env_str("LOOPGATE_EMBEDDINGS", "auto") or "auto").lower()
if LOOPGATE_EMBEDDINGS not in ("auto", "endpoint", "local", "hashing"):
    raise ImproperlyConfigured(
        f"LOOPGATE_EMBEDDINGS must be auto, endpoint, local or hashing, got {LOOPGATE_EMBEDDINGS!r}"
    )
LOOPGATE_EMBEDDINGS_MODEL = env_str("LOOPGATE_EMBEDDINGS_MODEL", "text-embedding-3-small") or "text-embedding-3-small"
LOOPGATE_EMBEDDINGS_LOCAL_MODEL = env_str("LOOPGATE_EMBEDDINGS_LOCAL_MODEL", "all-MiniLM-L6-v2") or "all-MiniLM-L6-v2"

# The Store (LangGraph's long-term memory, orchestrator/store): its embedding function for
# semantic search ("" none; "loopgate": the embeddings of LOOPGATE_EMBEDDINGS; or
# "package.module:attr", a LangChain Embeddings or a function of a list of texts), the
# fields it embeds, the default TTL of new items in minutes ("" none), whether reads refresh
# a TTL, and how often expired items are deleted.
LOOPGATE_STORE_EMBEDDINGS = env_str("LOOPGATE_STORE_EMBEDDINGS", "") or ""
if LOOPGATE_STORE_EMBEDDINGS not in ("", "loopgate") and not re.fullmatch(
        r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", LOOPGATE_STORE_EMBEDDINGS):
    raise ImproperlyConfigured(
        f"LOOPGATE_STORE_EMBEDDINGS is empty, loopgate or package.module:attr, got {LOOPGATE_STORE_EMBEDDINGS!r}")
LOOPGATE_STORE_INDEX_FIELDS = env_list("LOOPGATE_STORE_INDEX_FIELDS", ["$"]) or ["$"]
LOOPGATE_STORE_TTL_MINUTES: float | None = None
if _ttl := (env_str("LOOPGATE_STORE_TTL_MINUTES", "") or ""):
    try:
        LOOPGATE_STORE_TTL_MINUTES = float(_ttl)
    except ValueError:
        LOOPGATE_STORE_TTL_MINUTES = -1.0
    if not LOOPGATE_STORE_TTL_MINUTES > 0:
        raise ImproperlyConfigured(f"LOOPGATE_STORE_TTL_MINUTES must be a positive number of minutes, got {_ttl!r}")
LOOPGATE_STORE_TTL_REFRESH_ON_READ = env_bool("LOOPGATE_STORE_TTL_REFRESH_ON_READ", True)
LOOPGATE_STORE_SWEEP_SECONDS = env_int("LOOPGATE_STORE_SWEEP_SECONDS", 300, minimum=1)

# --- Auth ------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- REST API ---------------------------------------------------------------------
# Request bodies over this many bytes are refused with 413 before anything parses them.
LOOPGATE_MAX_REQUEST_BYTES = env_int("LOOPGATE_MAX_REQUEST_BYTES", 1024 * 1024, minimum=1024)
# A request's headers and body must all arrive within this long of its first line (orchestrator/server.py).
LOOPGATE_REQUEST_READ_SECONDS = env_int("LOOPGATE_REQUEST_READ_SECONDS", 30, minimum=1)
REST_FRAMEWORK = {
    # Token first: DRF answers an anonymous request with the first class's
    # WWW-Authenticate challenge, which makes it a 401 rather than a 403.
    # Session authentication (for the browser and the docs) enforces CSRF.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orchestrator.throttling.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["orchestrator.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Lists paginate with orchestrator.api.plumbing.ApiPagination, named in each list API (no
    # DEFAULT_PAGINATION_CLASS: DRF would import orchestrator.api.plumbing while it imports DRF).
    "EXCEPTION_HANDLER": "orchestrator.api.plumbing.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "orchestrator.api.plumbing.ApiAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loopgate API",
    "DESCRIPTION": "Start and follow executions of LangGraph graphs, read their traces, decide approvals and set "
    "token budgets. Authenticate with `Authorization: Token <key>` (admins create keys on the API tokens page, or "
    "`manage.py create_api_token USERNAME`), or with the browser session. Errors are `{message, code, extra}`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "orchestrator.models.execution.Execution.Status",
        "ApprovalStatusEnum": "approvals.models.Approval.Status",
        "DecisionTypeEnum": "approvals.payloads.ALL_DECISIONS",
    },
    # The interactive docs load Swagger UI from the sidecar package's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Internationalisation, static files --------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage" if not DEBUG else
                    "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security with DEBUG off --------------------------------------------------------
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    if env_bool("LOOPGATE_TLS_PROXY", False):
        # Only behind a proxy that terminates TLS and sets the header itself;
        # otherwise any client could claim https.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True

# plain (the default, and the embedded mode's) or json: one object per line with the request id,
# execution, graph and step of the work it concerns (ops/logs.py).
LOG_FORMAT = (env_str("LOG_FORMAT", "plain") or "plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                   "json": {"()": "ops.logs.JsonFormatter"}},
    "filters": {"forbidden_on_one_line": {"()": "orchestrator.logfilters.ForbiddenOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
    # "django": no handlers of its own (Django's defaults give it a console handler in DEBUG): its
    # records reach the root's handler once, so a refused request is one line, not two.
    "loggers": {"django": {"handlers": [], "propagate": True},
                "daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"},
                "django.request": {"filters": ["forbidden_on_one_line"]}},
}
