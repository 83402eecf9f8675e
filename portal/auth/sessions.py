"""Signing in and out in the browser: session stamps, staff timeouts, remember-me cookies."""
from __future__ import annotations

import time
from datetime import datetime

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.extensions import login_manager
from portal.models import User
from portal.services.sessions import (
    issue_remember_token,
    redeem_remember_token,
    user_for_session,
)

REMEMBER_COOKIE = "portal_remember"
SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"


@login_manager.user_loader
def load_user(identity: str) -> User | None:
    """Load the signed-in user for Flask-Login, only while the session's version is current."""
    return user_for_session(identity)


def _fresh_session() -> None:
    """Empty the session; the CSRF token cached for it goes too, so a new one is made."""
    session.clear()
    g.pop("csrf_token", None)


def sign_in(user: User, remember: bool = False) -> None:
    """Start a session for the user (and a remember-me token when asked)."""
    _fresh_session()  # nothing from before sign-in carries over
    login_user(user)
    now = int(time.time())
    session[SIGNED_IN_AT] = session[SEEN_AT] = now
    if remember:
        g.remember_cookie = (issue_remember_token(user), None)


def sign_out() -> None:
    """End this browser's session and forget its remember-me cookie."""
    logout_user()
    _fresh_session()
    g.remember_cookie = ("", None)


def _staff_session_expired() -> bool:
    """Return True when a staff session has been idle or open for too long."""
    now = int(time.time())
    config = current_app.config
    signed_in = session.get(SIGNED_IN_AT, 0)
    seen = session.get(SEEN_AT, 0)
    return (now - seen > config["STAFF_IDLE_TIMEOUT_S"]
            or now - signed_in > config["STAFF_ABSOLUTE_TIMEOUT_S"])


def check_session():
    """Before every request: resume from remember-me, or end a staff session that timed out."""
    # Each request decides afresh who is signed in (g outlives a request when an app context
    # is kept open around several, as in tests and scripts).
    g.pop("_login_user", None)
    g.pop("csrf_token", None)
    if request.endpoint == "static" or request.path.startswith("/_stripe"):
        return None
    if not current_user.is_authenticated:
        cookie = request.cookies.get(REMEMBER_COOKIE)
        if cookie:
            redeemed = redeem_remember_token(cookie)
            if redeemed is None:
                g.remember_cookie = ("", None)
                return None
            user, replacement, expires_at = redeemed
            if user.is_staff:
                # Staff sessions have an absolute limit; remember-me would step round it.
                g.remember_cookie = ("", None)
                return None
            sign_in(user)
            g.remember_cookie = (replacement, expires_at)
        return None
    if current_user.is_staff:
        if _staff_session_expired():
            sign_out()
            flash("You were signed out after a period of inactivity. Please sign in again.",
                  "info")
            return redirect(url_for("auth.login", next=request.full_path
                                    if request.method == "GET" else None))
        session[SEEN_AT] = int(time.time())
    return None


def set_remember_cookie(response):
    """After every request: write or delete the remember-me cookie the request decided on."""
    decided = g.pop("remember_cookie", None)
    if decided is None:
        return response
    value, expires_at = decided
    config = current_app.config
    if not value:
        response.delete_cookie(REMEMBER_COOKIE, path="/")
        return response
    if expires_at is None:
        max_age = config["REMEMBER_DAYS"] * 86400
    else:
        max_age = max(0, int((expires_at - datetime.now(expires_at.tzinfo)).total_seconds()))
    response.set_cookie(REMEMBER_COOKIE, value, max_age=max_age, path="/",
                        secure=config["REMEMBER_COOKIE_SECURE"], httponly=True,
                        samesite="Lax")
    return response


def register_session_hooks(app) -> None:
    """Run the session checks around every request of the portal."""
    app.before_request(check_session)
    app.after_request(set_remember_cookie)
