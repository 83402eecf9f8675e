"""Forms for sign-up, sign-in and password resets (CSRF through Flask-WTF)."""
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from portal.forms import PortalForm

PASSWORD_RULES = [
    DataRequired(),
    Length(min=10, max=128, message="Use between 10 and 128 characters."),
]


class RegisterForm(PortalForm):
    """Create an account and its first user."""

    account_name = StringField(
        "Company or account name", validators=[DataRequired(), Length(max=200)]
    )
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField("Password", validators=PASSWORD_RULES)
    confirm = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="Passwords do not match.")],
    )


class LoginForm(PortalForm):
    """Sign in with email and password."""

    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])
    remember = BooleanField("Keep me signed in")


class ForgotPasswordForm(PortalForm):
    """Ask for a password-reset link."""

    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=320)])


class ResetPasswordForm(PortalForm):
    """Choose a new password from a reset link."""

    password = PasswordField("New password", validators=PASSWORD_RULES)
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("password", message="Passwords do not match.")],
    )


class LogoutForm(PortalForm):
    """Sign out (a POST, so another site cannot sign a user out)."""
