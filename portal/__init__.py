"""The billing portal's application factory."""
from __future__ import annotations

import os
from pathlib import Path

from flask import (
    Flask,
    Response,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from werkzeug.exceptions import HTTPException, SecurityError

from portal import config as settings
from portal import embedded_sandbox
from portal.extensions import csrf, db, htmx, limiter, login_manager, migrate
from portal.services.stripe_client import (
    build_client,
    payments_configured,
    stripe_csp_sources,
    stripe_mode,
)
from portal.template_filters import register_template_filters

ROOT = Path(__file__).resolve().parent.parent
ERROR_CODES = (400, 403, 404, 405, 413, 429, 500)
# What people read instead of Werkzeug's stock descriptions ("The requested URL was not found
# on the server. If you entered the URL manually please check your spelling...").
PLAIN_ERRORS = {
    400: "We could not make sense of that request. Go back, check the form and send it again.",
    403: "Your sign-in does not open this page. If you need it, ask an administrator "
         "of your account.",
    404: "There is nothing at this address. The link may be mistyped, or the page has moved.",
    405: "This page cannot be used that way. Go back and use the page's own buttons and links.",
    413: "That is more than this portal accepts in one go. Send something smaller.",
}
CSP_BASE = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "frame-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
}


def content_security_policy(config) -> str:
    """Return the CSP header: 'self' plus exactly what the Stripe mode needs."""
    extra = stripe_csp_sources(config)
    return "; ".join(
        " ".join([directive, *sources, *extra.get(directive, [])])
        for directive, sources in CSP_BASE.items()
    )


def create_app(test_config: dict | None = None) -> Flask:
    """Build the portal: settings, extensions, blueprints, commands."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    configure(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_template_filters(app)
    register_template_helpers(app)
    register_commands(app)
    # Last: the embedded sandbox may post webhooks into the app as soon as it is mounted.
    register_stripe(app)
    return app


def configure(app: Flask, test_config: dict | None) -> None:
    """Load defaults, then the environment, then instance/config.py, then test overrides."""
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(settings.default_settings(app.instance_path))
    from_environment = settings.read_environment()
    app.config.update(from_environment)
    explicit = set(from_environment)
    instance_file = Path(app.instance_path) / "config.py"
    if instance_file.exists():
        before = dict(app.config)
        app.config.from_pyfile(str(instance_file))
        explicit |= {key for key in app.config if app.config[key] != before.get(key)}
    if test_config:
        app.config.update(test_config)
        explicit |= set(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.load_secret_key(app.instance_path)
    settings.finish_settings(app.config, explicit)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///:memory:"):
        # Password hashes live there: the file (and SQLite's -wal/-shm, which copy its mode)
        # is created readable by its owner only.
        settings.create_private_file(uri.removeprefix("sqlite:///").split("?")[0])
    if app.config["PROXY_FIX_X_FOR"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only behind a proxy the operator named is X-Forwarded-For believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"],
                                x_proto=app.config["PROXY_FIX_X_FOR"])


def register_stripe(app: Flask) -> None:
    """Build the StripeClient for the configured keys, or embed the sandbox when keys are unset."""
    if stripe_mode(app.config) != "sandbox":
        missing = [name for name in ("STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
                   if not app.config.get(name)]
        if missing:
            # Without the webhook secret, signatures could not be checked: refuse to run.
            raise RuntimeError(f"STRIPE_SECRET_KEY is set but {', '.join(missing)} is not")
        app.extensions["stripe_client"] = build_client(app.config)
        return
    if not app.config.get("SANDBOX_ENABLED"):
        return
    if app.config["PORTAL_ENV"] not in ("development", "testing"):
        if not app.config.get("SANDBOX_IN_PRODUCTION"):
            # A development tool: a production portal without Stripe keys takes no payments.
            app.config["SANDBOX_ENABLED"] = False
            return
        app.logger.warning(
            "!!! SANDBOX_IN_PRODUCTION is set: the offline Stripe sandbox serves payments in "
            "production. No real money moves; never use this for real customers. !!!")
    embedded_sandbox.embed(app)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Turn on WAL and foreign keys for every SQLite connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def register_extensions(app: Flask) -> None:
    """Bind the extensions to this app."""
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"

    from portal.auth.sessions import register_session_hooks

    register_session_hooks(app)
    csp = content_security_policy(app.config)
    hsts = None
    if app.config["PORTAL_ENV"] not in ("development", "testing"):
        hsts = f"max-age={app.config['HSTS_MAX_AGE_S']}; includeSubDomains"

    @app.after_request
    def security_headers(response):
        """Add the headers every response carries; signed-in pages are never stored."""
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        if current_user.is_authenticated and request.endpoint != "static":
            # Shared or back-button caches must not keep invoices and account details.
            response.headers["Cache-Control"] = "no-store"
        return response


def register_blueprints(app: Flask) -> None:
    """Mount the feature blueprints, the root redirect and the favicon."""
    from portal import admin, api, auth, billing, webhooks

    for module in (auth, billing, admin, api, webhooks):
        app.register_blueprint(module.bp)

    def index():
        """Send visitors to sign-in and signed-in users to their home page."""
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        if current_user.is_staff:
            return redirect(url_for("admin.accounts"))
        return redirect(url_for("billing.dashboard"))

    app.add_url_rule("/", endpoint="index", view_func=index)

    # Read once: browsers ask for it on every first visit, and no file handle stays open.
    icon = (Path(app.static_folder) / "favicon.ico").read_bytes()

    def favicon():
        """Serve the icon browsers ask for at /favicon.ico, even on pages that link none."""
        return Response(icon, mimetype="image/vnd.microsoft.icon",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.add_url_rule("/favicon.ico", endpoint="favicon", view_func=favicon)


def register_error_handlers(app: Flask) -> None:
    """Render every error as a calm page (JSON for JSON clients), never a stack trace."""

    def render_error(code: int, description: str):
        if request.accept_mimetypes.best == "application/json" or request.path == "/health":
            return jsonify(error={"status": code, "message": description}), code
        return render_template("errors/error.html", code=code, description=description), code

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(400, "The form expired or was sent from elsewhere. Please try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, SecurityError):
            # A Host outside TRUSTED_HOSTS: no page can be built for it, and none is owed.
            return Response("Unknown host.\n", status=400, mimetype="text/plain")
        code = error.code or 500
        description = error.description or ""
        if description == type(error).description:
            # Werkzeug's wording speaks of servers and URLs; a view's own message is kept.
            description = PLAIN_ERRORS.get(code, description)
        return render_error(code, description)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return render_error(500, "Something went wrong on our side. It has been logged.")


def register_template_helpers(app: Flask) -> None:
    """Expose the Stripe mode and the sign-out form to templates."""
    from portal.auth.forms import LogoutForm

    @app.context_processor
    def portal_context():
        return {
            "stripe_mode": stripe_mode(app.config),
            "payments_ready": payments_configured(app.config),
            # Built only for signed-in pages: the header's sign-out button needs its CSRF.
            # Mail rendered in an RQ worker has no request, hence no user at all.
            "logout_form": LogoutForm() if has_request_context()
            and current_user.is_authenticated else None,
            "sandbox_in_production": bool(app.config.get("SANDBOX_IN_PRODUCTION")
                                          and "stripe_sandbox" in app.extensions
                                          and app.config["PORTAL_ENV"] == "production"),
        }


def register_commands(app: Flask) -> None:
    """Add the portal's flask commands."""
    from portal.cli import commands

    for command in commands:
        app.cli.add_command(command)
