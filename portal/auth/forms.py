"""Forms for sign-up, sign-in and passwords (CSRF through Flask-WTF)."""
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from portal.forms import PortalForm
from portal.services.passwords import MAX_LENGTH, name_problem, password_problem


class StrongPassword:
    """Refuse short, common or guessable passwords (ASVS 2.1); words of `related` fields count."""

    def __init__(self, *related: str):
        self.related = related

    def __call__(self, form, field) -> None:
        words = tuple(str(form[name].data or "") for name in self.related if name in form)
        problem = password_problem(field.data or "", words)
        if problem:
            raise ValidationError(problem)


class PlainName:
    """Refuse names carrying control or text-direction characters."""

    def __call__(self, form, field) -> None:
        problem = name_problem(field.data or "")
        if problem:
            raise ValidationError(problem)


def confirm_field(label: str) -> PasswordField:
    """Return the "repeat password" field that must equal `password`."""
    return PasswordField(
        label, validators=[DataRequired(), EqualTo("password", message="Passwords do not match.")])


class RegisterForm(PortalForm):
    """Create an account and its first user."""

    account_name = StringField(
        "Company or account name", validators=[DataRequired(), Length(max=200), PlainName()]
    )
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField("Password",
                             validators=[DataRequired(), StrongPassword("email", "account_name")])
    confirm = confirm_field("Repeat password")


class LoginForm(PortalForm):
    """Sign in with email and password."""

    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    remember = BooleanField("Keep me signed in for 30 days")


class ForgotPasswordForm(PortalForm):
    """Ask for a password-reset link."""

    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=320)])


class ResetPasswordForm(PortalForm):
    """Choose a new password from a reset link."""

    password = PasswordField("New password", validators=[DataRequired(), StrongPassword()])
    confirm = confirm_field("Repeat new password")


class ChangePasswordForm(PortalForm):
    """Change the password while signed in (the current one proves it is the owner)."""

    current = PasswordField("Current password",
                            validators=[DataRequired(), Length(max=MAX_LENGTH)])
    password = PasswordField("New password", validators=[DataRequired(), StrongPassword()])
    confirm = confirm_field("Repeat new password")


class LogoutForm(PortalForm):
    """Sign out (a POST, so another site cannot sign a user out)."""
