"""Settings from the environment, then instance/config.py; only safe defaults live here."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

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
    "PDF_PAGE_SIZE",
    "PDF_CACHE_DIR",
    "SELLER_LEGAL_NAME",
    "SELLER_ADDRESS",
    "SELLER_TAX_ID",
    "SELLER_LOGO",
    "SELLER_CONTACT",
)


def load_secret_key(instance_path: str) -> str:
    """Return the instance's generated secret key, creating it once with owner-only access."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    # O_EXCL so two workers starting together cannot write different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


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
        # None: 'rq' with REDIS_URL, else 'thread' (see services/mail.py).
        "MAIL_DELIVERY": None,
        "PDF_PAGE_SIZE": "A4",
        "PDF_CACHE_DIR": str(Path(instance_path) / "pdf-cache"),
        "SELLER_LEGAL_NAME": "Billing Portal Ltd",
        "SELLER_ADDRESS": "1 Example Street\nLondon EC1A 1AA\nUnited Kingdom",
        "SELLER_TAX_ID": None,
        "SELLER_LOGO": "img/logo.png",
        "SELLER_CONTACT": None,
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
        elif name == "MAIL_PORT":
            found[name] = int(value)
        elif name == "SELLER_ADDRESS":
            # One line per address line; "\n" written literally in an env file counts too.
            found[name] = value.replace("\\n", "\n")
        elif name == "MAIL_USE_TLS":
            found[name] = value.lower() in {"1", "true", "yes", "on"}
        else:
            found[name] = value
    return found


def normalise_database_url(url: str) -> str:
    """Return a SQLAlchemy URL, choosing the psycopg 3 driver for plain postgres URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def finish_settings(config: dict, explicit: set[str]) -> None:
    """Derive the settings that depend on others unless they were set explicitly."""
    # Secure cookies break plain-http local development, and only there may they be off.
    development = config.get("PORTAL_ENV") in {"development", "testing"}
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if name not in explicit:
            config[name] = not development
    if "RATELIMIT_STORAGE_URI" not in explicit:
        config["RATELIMIT_STORAGE_URI"] = config.get("REDIS_URL") or "memory://"
