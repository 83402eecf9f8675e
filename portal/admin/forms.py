"""Forms for staff actions (each one a POST with CSRF)."""
from wtforms import HiddenField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired

from portal.forms import PortalForm


class UserActiveForm(PortalForm):
    """Enable or disable a user's sign-in."""

    active = HiddenField(validators=[DataRequired(), AnyOf(["0", "1"])])


class StaffRoleForm(PortalForm):
    """Switch a staff user between admin and auditor."""

    role = SelectField(
        "Role",
        choices=[SelectChoice("admin", "Admin"), SelectChoice("auditor", "Auditor")],
        validators=[DataRequired()],
    )


class RetryEventsForm(PortalForm):
    """Replay the webhook events whose processing failed."""
