"""Sign-up, sign-in, sign-out and password-reset pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal.auth import bp
from portal.auth.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    LogoutForm,
    RegisterForm,
    ResetPasswordForm,
)
from portal.auth.sessions import sign_in, sign_out
from portal.extensions import db, limiter
from portal.services.account_mail import queue_reset_mail, request_registration
from portal.services.accounts import (
    SignInDisabled,
    authenticate,
    change_password,
    reset_password,
    user_for_reset_token,
)
from portal.services.audit import audit_failed_sign_in, audit_staff_sign_in
from portal.services.sessions import end_all_sessions
from portal.services.signin_guard import record_failed_signin, signin_allowed

# The same answer for a new and a taken email: which addresses have accounts stays private.
REGISTERED = ("Thank you. We sent a message to that address: if the account is new you can "
              "sign in now with the password you chose.")

DISABLED_MESSAGE = ("Your sign-in has been disabled. Ask the portal's administrators "
                    "to enable it again.")


def safe_next_path(target: str | None) -> str | None:
    """Return `target` only if it is a path on this site (no scheme, host or '//')."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


def home_for_current_user() -> str:
    """Return where a signed-in user lands: staff on the admin area, customers on billing."""
    if current_user.is_staff:
        return url_for("admin.accounts")
    return url_for("billing.dashboard")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def register():
    """Create an account, answering exactly as for an email that already has one."""
    if current_user.is_authenticated:
        return redirect(home_for_current_user())
    form = RegisterForm()
    if form.validate_on_submit():
        request_registration(form.email.data, form.password.data, form.account_name.data)
        flash(REGISTERED, "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form=form), 400 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def login():
    """Sign in with email and password, then go to a same-site `next` or home."""
    if current_user.is_authenticated:
        return redirect(home_for_current_user())
    form = LoginForm()
    if form.validate_on_submit():
        if not signin_allowed(form.email.data):
            # Checked before the password, so guesses from many addresses learn nothing.
            audit_failed_sign_in(form.email.data, "locked", request.remote_addr)
            return render_template("auth/login.html", form=form, locked=True), 429
        try:
            user = authenticate(form.email.data, form.password.data)
        except SignInDisabled:
            audit_failed_sign_in(form.email.data, "disabled", request.remote_addr)
            form.password.errors.append(DISABLED_MESSAGE)
        else:
            if user is None:
                record_failed_signin(form.email.data)
                audit_failed_sign_in(form.email.data, "wrong_password", request.remote_addr)
                form.password.errors.append("Email or password is not right.")
            else:
                sign_in(user, remember=form.remember.data)
                audit_staff_sign_in(user, request.remote_addr)
                flash("Signed in.", "success")
                next_path = safe_next_path(request.args.get("next"))
                return redirect(next_path or home_for_current_user())
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out everywhere: every session and remember-me cookie of this user ends."""
    form = LogoutForm()
    if not form.validate_on_submit():
        flash("Your session expired; please try again.", "error")
        return redirect(home_for_current_user())
    end_all_sessions(current_user)
    db.session.commit()
    sign_out()
    flash("Signed out.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per hour", methods=["POST"])
def change_password_page():
    """Change the password; every other session and remember-me cookie ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if change_password(user, form.current.data, form.password.data):
            sign_in(user)  # this browser carries on under the new session version
            flash("Your password is changed. Every other sign-in has been ended.", "success")
            return redirect(home_for_current_user())
        form.current.errors.append("That is not your current password.")
    return render_template("auth/change_password.html", form=form), 400 if form.errors else 200


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit("5 per hour", methods=["POST"])
def forgot_password():
    """Queue a single-use reset link; answer the same whether or not the email exists."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        queue_reset_mail(form.email.data)
        flash("If that email has an account, a reset link is on its way.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form), 400 if form.errors else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def reset_password_page(token: str):
    """Set a new password from an emailed link that is valid, unexpired and unused."""
    user = user_for_reset_token(token)
    if user is None:
        flash("This reset link is invalid, expired or already used. Ask for a new one.", "error")
        return redirect(url_for("auth.forgot_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        reset_password(user, form.password.data)
        sign_out()
        flash("Your password is changed. Sign in with the new one.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form), 400 if form.errors else 200
