"""Sign-up, sign-in, sign-out and password-reset pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from portal.auth import bp
from portal.auth.forms import (
    ForgotPasswordForm,
    LoginForm,
    LogoutForm,
    RegisterForm,
    ResetPasswordForm,
)
from portal.extensions import limiter
from portal.models.account import find_user_by_email
from portal.services.accounts import (
    EmailTaken,
    SignInDisabled,
    authenticate,
    password_reset_token,
    record_sign_in,
    register_customer,
    reset_password,
    user_for_reset_token,
)
from portal.services.mail import send_mail

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
    """Create an account and sign its owner in."""
    if current_user.is_authenticated:
        return redirect(home_for_current_user())
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = register_customer(form.email.data, form.password.data, form.account_name.data)
        except EmailTaken:
            form.email.errors.append("An account with this email already exists. Sign in instead.")
        else:
            login_user(user)
            record_sign_in(user)
            flash("Welcome! Your account is ready.", "success")
            return redirect(url_for("billing.dashboard"))
    return render_template("auth/register.html", form=form), 400 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def login():
    """Sign in with email and password, then go to a same-site `next` or home."""
    if current_user.is_authenticated:
        return redirect(home_for_current_user())
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = authenticate(form.email.data, form.password.data)
        except SignInDisabled:
            form.password.errors.append(DISABLED_MESSAGE)
        else:
            if user is None:
                form.password.errors.append("Email or password is not right.")
            else:
                login_user(user, remember=form.remember.data)
                flash("Signed in.", "success")
                next_path = safe_next_path(request.args.get("next"))
                return redirect(next_path or home_for_current_user())
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out."""
    form = LogoutForm()
    if not form.validate_on_submit():
        flash("Your session expired; please try again.", "error")
        return redirect(home_for_current_user())
    logout_user()
    flash("Signed out.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit("5 per hour", methods=["POST"])
def forgot_password():
    """Email a single-use reset link; answer the same whether or not the email exists."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = find_user_by_email(form.email.data)
        if user is not None and user.active:
            token = password_reset_token(user)
            link = url_for("auth.reset_password_page", token=token, _external=True)
            minutes = current_app.config["PASSWORD_RESET_MAX_AGE_S"] // 60
            send_mail(
                user.email,
                "Reset your billing portal password",
                "Someone asked to reset the password for this email address.\n\n"
                f"Choose a new password here (valid for {minutes} minutes, once):\n{link}\n\n"
                "If it was not you, ignore this message: your password stays as it is.\n",
            )
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
        logout_user()
        flash("Your password is changed. Sign in with the new one.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form), 400 if form.errors else 200
