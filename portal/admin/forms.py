"""Forms for staff actions (each one a POST with CSRF)."""
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired


class UserActiveForm(FlaskForm):
    """Enable or disable a user's sign-in."""

    active = HiddenField(validators=[DataRequired(), AnyOf(["0", "1"])])


class StaffRoleForm(FlaskForm):
    """Switch a staff user between admin and auditor."""

    role = SelectField(
        "Role",
        choices=[SelectChoice("admin", "Admin"), SelectChoice("auditor", "Auditor")],
        validators=[DataRequired()],
    )


class RetryEventsForm(FlaskForm):
    """Replay the webhook events whose processing failed."""
