"""Settings from the environment, then instance/config.py; only safe defaults live here."""
from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

# Environment variables read at start-up, with what they mean (README lists them too).
ENV_SETTINGS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "STRIPE_JS_URL",
    "REDIS_URL",
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "MAIL_USE_TLS",
    "MAIL_DEFAULT_SENDER",
    "PORTAL_ENV",
    "PORTAL_BASE_URL",
    "MAIL_DELIVERY",
    "WEBHOOK_PROCESSING",
    "PDF_PAGE_SIZE",
    "PDF_CACHE_DIR",
    "CATALOG_CACHE_S",
    "SELLER_LEGAL_NAME",
    "SELLER_ADDRESS",
    "SELLER_TAX_ID",
    "SELLER_LOGO",
    "SELLER_CONTACT",
    "SIGNIN_ACCOUNT_LIMIT",
    "PROXY_FIX_X_FOR",
    "SANDBOX_IN_PRODUCTION",
    "REFUND_APPROVAL_THRESHOLD",
    "USAGE_API_RATE_LIMIT",
    "USAGE_REPORT_INTERVAL",
    "STRIPE_CONNECT_TIMEOUT",
    "STRIPE_READ_TIMEOUT",
    "STRIPE_MAX_RETRIES",
    "STRIPE_REQUEST_DEADLINE",
    "STRIPE_HEALTH_INTERVAL",
    "METRICS_TOKEN",
    "METRICS_ALLOWED_IPS",
    "LOG_FORMAT",
    "SANDBOX_FAULT_INJECTION",
)
# Seconds, read as numbers.
NUMBER_SETTINGS = ("STRIPE_CONNECT_TIMEOUT", "STRIPE_READ_TIMEOUT", "STRIPE_REQUEST_DEADLINE",
                   "STRIPE_HEALTH_INTERVAL")
# Where a development or test portal says it lives when PORTAL_BASE_URL is not set.
LOCAL_BASE_URL = "http://localhost:5000"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def write_private_once(path: Path, content: str) -> str:
    """Create `path` with owner-only access holding `content`, unless it exists; return its text.

    O_EXCL so two workers starting together cannot write different values.
    """
    if path.exists():
        return path.read_text().strip()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return content


def load_secret_key(instance_path: str) -> str:
    """Return the instance's generated secret key, creating it once with owner-only access."""
    return write_private_once(Path(instance_path) / "secret_key", secrets.token_hex(32))


def sandbox_key_pair(instance_path: str) -> dict[str, str]:
    """Return the API key pair of this portal's embedded sandbox, generated once (mode 0600)."""
    token = secrets.token_hex(16)
    text = write_private_once(Path(instance_path) / "sandbox-keys.json", json.dumps(
        {"secret": f"sk_test_{token}", "publishable": f"pk_test_{token}"}))
    return json.loads(text)


def create_private_file(path: str | Path) -> None:
    """Create an empty file readable by its owner only, so a database made there is private."""
    path = Path(path)
    if not path.parent.is_dir():
        return  # a missing folder is the database's own error to report
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def default_settings(instance_path: str) -> dict:
    """Return the defaults: SQLite under instance/, the sandbox, mail to instance/outbox."""
    return {
        "PORTAL_ENV": "production",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(instance_path) / 'portal.db'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "STRIPE_SECRET_KEY": None,
        "STRIPE_PUBLISHABLE_KEY": None,
        "STRIPE_WEBHOOK_SECRET": None,
        "STRIPE_API_BASE": None,
        "STRIPE_JS_URL": None,
        "REDIS_URL": None,
        "MAIL_SERVER": None,
        "MAIL_PORT": 25,
        "MAIL_USERNAME": None,
        "MAIL_PASSWORD": None,
        "MAIL_USE_TLS": False,
        "MAIL_DEFAULT_SENDER": "billing@localhost",
        "MAIL_OUTBOX_DIR": str(Path(instance_path) / "outbox"),
        "PORTAL_BASE_URL": None,
        "TRUSTED_HOSTS": None,
        # Forwarded-For hops to trust (0: never believe X-Forwarded-For; set behind a proxy).
        "PROXY_FIX_X_FOR": 0,
        # Failed sign-ins one account may take from all addresses together.
        "SIGNIN_ACCOUNT_LIMIT": "10 per hour",
        # Requests one API key may make to the usage API (each may carry 1,000 events).
        "USAGE_API_RATE_LIMIT": "600 per minute",
        # Thread mode (WEBHOOK_PROCESSING): how often an idle processor looks for events left
        # pending (by a process that died before processing them), and how old they must be.
        "WEBHOOK_SWEEP_INTERVAL_S": 30,
        # Thread mode: threads per process applying events (one waiting on Stripe holds up
        # only itself).
        "WEBHOOK_THREADS": 2,
        "WEBHOOK_SWEEP_AFTER_S": 60,
        # Seconds between scheduled usage reports to Stripe meters (RQ, with REDIS_URL).
        "USAGE_REPORT_INTERVAL": 300,
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "REMEMBER_DAYS": 30,
        "STAFF_IDLE_TIMEOUT_S": 30 * 60,
        "STAFF_ABSOLUTE_TIMEOUT_S": 12 * 3600,
        "HSTS_MAX_AGE_S": 365 * 24 * 3600,
        "SANDBOX_IN_PRODUCTION": False,
        "PDF_PAGE_SIZE": "A4",
        "PDF_CACHE_DIR": str(Path(instance_path) / "pdf-cache"),
        # How long a process keeps its copy of the plan catalog for pages (0: read every time).
        "CATALOG_CACHE_S": 30,
        "SELLER_LEGAL_NAME": "Billing Portal Ltd",
        "SELLER_ADDRESS": "1 Example Street\nLondon EC1A 1AA\nUnited Kingdom",
        "SELLER_TAX_ID": None,
        "SELLER_LOGO": "img/logo.png",
        "SELLER_CONTACT": None,
        # Refunds above this many minor units need a second admin (an int, or per currency).
        "REFUND_APPROVAL_THRESHOLD": 50000,
        # How long a re-typed password allows money movement (refunds) without asking again.
        "STEP_UP_WINDOW_S": 5 * 60,
        "PASSWORD_RESET_MAX_AGE_S": 3600,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_HEADERS_ENABLED": True,
        "BABEL_DEFAULT_LOCALE": "en_US",
        "SEED_DEMO_DATA": True,
        # With no Stripe keys, the offline sandbox answers in Stripe's place.
        "SANDBOX_ENABLED": True,
        "SANDBOX_DELIVERY": "thread",
        # Stripe calls: seconds to connect, to wait for an answer, retries (each with the same
        # idempotency key), and all of a web request's Stripe calls together, which must end
        # before the server's worker timeout (gunicorn.conf.py: 30 s).
        "STRIPE_CONNECT_TIMEOUT": 3.0,
        "STRIPE_READ_TIMEOUT": 10.0,
        "STRIPE_MAX_RETRIES": 2,
        "STRIPE_REQUEST_DEADLINE": 20.0,
        # How old /health's cached Stripe reachability may get before it is checked again.
        "STRIPE_HEALTH_INTERVAL": 30.0,
        # /metrics: a bearer token, and/or addresses allowed without one (comma separated).
        "METRICS_TOKEN": None,
        "METRICS_ALLOWED_IPS": "",
        # "json": one JSON object per log line; "text": plain lines.
        "LOG_FORMAT": "json",
        # Sandbox fault injection (development and tests only; refused otherwise).
        "SANDBOX_FAULT_INJECTION": False,
    }


def read_environment() -> dict:
    """Return the settings present in the environment, typed where the type is not a string."""
    found: dict = {}
    for name in ENV_SETTINGS:
        value = os.environ.get(name)
        if value is None or value == "":
            continue
        if name == "DATABASE_URL":
            found["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(value)
        elif name in NUMBER_SETTINGS:
            found[name] = float(value)
        elif name in ("MAIL_PORT", "PROXY_FIX_X_FOR", "USAGE_REPORT_INTERVAL",
                      "STRIPE_MAX_RETRIES"):
            found[name] = int(value)
        elif name == "SELLER_ADDRESS":
            # One line per address line; "\n" written literally in an env file counts too.
            found[name] = value.replace("\\n", "\n")
        elif name == "REFUND_APPROVAL_THRESHOLD":
            found[name] = parse_refund_threshold(value)
        elif name in ("MAIL_USE_TLS", "SANDBOX_IN_PRODUCTION", "SANDBOX_FAULT_INJECTION"):
            found[name] = value.lower() in {"1", "true", "yes", "on"}
        else:
            found[name] = value
    return found


def parse_refund_threshold(value: str) -> int | dict[str, int]:
    """Read `50000` (minor units, any currency) or `usd:50000,eur:45000,jpy:70000`."""
    if ":" not in value:
        return int(value)
    pairs = (part.split(":", 1) for part in value.split(",") if part.strip())
    return {currency.strip().lower(): int(amount) for currency, amount in pairs}


def normalise_database_url(url: str) -> str:
    """Return a SQLAlchemy URL, choosing the psycopg 3 driver for plain postgres URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def running_command() -> tuple[str | None, dict]:
    """Return the flask command loading the app and its options, or (None, {}) when serving.

    `flask` loads the app while it looks up a command the app adds (such as `start`), before
    that command's options are parsed: then they are read from the command line.
    """
    import click

    context = click.get_current_context(silent=True)
    if context is None:
        return None, {}
    if not isinstance(context.command, click.Group):
        return context.info_name, dict(context.params)
    words = iter(sys.argv[1:])
    for word in words:
        if word == "--app":
            next(words, None)
        elif not word.startswith("-"):
            command, options = word, {}
            break
    else:
        return context.info_name, {}
    for word in words:
        name, _, value = word.partition("=")
        if name in ("--host", "--port"):
            options[name[2:]] = value or next(words, "")
    return command, options


def apply_command_defaults(config: dict, explicit: set[str]) -> None:
    """Let `flask start` serve local development, and other commands run without an address."""
    command, options = running_command()
    if command is None:
        return
    if command == "start":
        # The quickstart serves plain http on this machine: development, at its own address.
        if "PORTAL_ENV" not in explicit:
            config["PORTAL_ENV"] = "development"
        if "PORTAL_BASE_URL" not in explicit:
            host = options.get("host") or "127.0.0.1"
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            config["PORTAL_BASE_URL"] = f"http://{host}:{options.get('port') or 5000}"
    elif not config.get("PORTAL_BASE_URL"):
        # Commands (migrations, seeding, workers) send no browser anywhere.
        config["PORTAL_BASE_URL"] = LOCAL_BASE_URL


def finish_settings(config: dict, explicit: set[str]) -> None:
    """Derive the settings that depend on others unless they were set explicitly."""
    apply_command_defaults(config, explicit)
    # Secure cookies break plain-http local development, and only there may they be off.
    development = config.get("PORTAL_ENV") in {"development", "testing"}
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if name not in explicit:
            config[name] = not development
    if "RATELIMIT_STORAGE_URI" not in explicit:
        config["RATELIMIT_STORAGE_URI"] = config.get("REDIS_URL") or "memory://"
    if "MAIL_DELIVERY" not in explicit:
        config["MAIL_DELIVERY"] = "rq" if config.get("REDIS_URL") else "thread"
    if config["MAIL_DELIVERY"] not in ("rq", "thread", "inline", "manual"):
        raise RuntimeError("MAIL_DELIVERY must be 'rq', 'thread', 'inline' or 'manual'")
    if "WEBHOOK_PROCESSING" not in explicit:
        config["WEBHOOK_PROCESSING"] = "rq" if config.get("REDIS_URL") else "thread"
    if config["WEBHOOK_PROCESSING"] not in ("rq", "thread", "inline"):
        raise RuntimeError("WEBHOOK_PROCESSING must be 'rq', 'thread' or 'inline'")
    finish_base_url(config, explicit, development)
    check_rate_limit_storage(config, development)
    check_request_deadline(config)


def finish_base_url(config: dict, explicit: set[str], development: bool) -> None:
    """Fix the portal's public address and the Host values requests may carry.

    External links (reset mails, Stripe return URLs) are built from PORTAL_BASE_URL, never
    from a request's Host header, which an attacker chooses.
    """
    base = config.get("PORTAL_BASE_URL")
    if not base:
        if not development:
            raise RuntimeError(
                "PORTAL_BASE_URL is not set: in production external links (password resets, "
                "Stripe return URLs) need the portal's public address, e.g. https://billing.example")
        base = LOCAL_BASE_URL
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuntimeError(f"PORTAL_BASE_URL must be an http(s) address, not {base!r}")
    config["PORTAL_BASE_URL"] = base.rstrip("/")
    if "TRUSTED_HOSTS" not in explicit:
        hosts = [parts.hostname]
        if parts.hostname in LOOPBACK_HOSTS:
            # Loopback has several spellings; all of them are this same machine.
            hosts = list(LOOPBACK_HOSTS)
        config["TRUSTED_HOSTS"] = hosts


def serving_workers() -> int:
    """Return how many worker processes serve the app (gunicorn.conf.py records it)."""
    for name in ("PORTAL_WORKERS", "WEB_CONCURRENCY"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def check_rate_limit_storage(config: dict, development: bool) -> None:
    """Refuse to serve production from several workers that would each count limits alone."""
    if development or config.get("TESTING"):
        return
    workers = serving_workers()
    if workers > 1 and config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        raise RuntimeError(
            f"{workers} workers with in-memory rate limits would each let an attacker try "
            "again: set REDIS_URL (shared limits) or serve with one worker")


def check_request_deadline(config: dict) -> None:
    """Refuse a Stripe deadline the server would cut short: the customer would get a 500."""
    timeout = os.environ.get("PORTAL_WORKER_TIMEOUT", "")
    if timeout.isdigit() and int(timeout) and config["STRIPE_REQUEST_DEADLINE"] >= int(timeout):
        raise RuntimeError(
            f"STRIPE_REQUEST_DEADLINE ({config['STRIPE_REQUEST_DEADLINE']} s) must be below the "
            f"server's worker timeout ({timeout} s): lower it or raise gunicorn's --timeout")


def command_words() -> list[str]:
    """Return the words naming the flask command being run (`billing register-webhook`)."""
    words, skip = [], False
    for word in sys.argv[1:]:
        if skip:
            skip = False
        elif word in ("--app", "-A", "--env-file", "-e"):
            skip = True
        elif not word.startswith("-"):
            words.append(word)
    return words
