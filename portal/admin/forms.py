"""Forms for staff actions (each one a POST with CSRF)."""
from wtforms import (
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange

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


REASON_CHOICES = [
    SelectChoice("requested_by_customer", "Requested by customer"),
    SelectChoice("duplicate", "Duplicate"),
    SelectChoice("fraudulent", "Fraudulent"),
]


class RefundForm(PortalForm):
    """Ask for a refund of (part of) a payment: amount, Stripe's reason and a note."""

    amount = StringField("Amount", validators=[DataRequired(message="Enter an amount.")])
    reason = SelectField("Reason", choices=REASON_CHOICES, validators=[DataRequired()])
    note = TextAreaField("Note", validators=[DataRequired(message="Say why, for the record."),
                                             Length(max=2000)])


class RefundConfirmForm(PortalForm):
    """Confirm a refund (amounts in minor units), re-typing the password when it is due."""

    amount = IntegerField(validators=[DataRequired(), NumberRange(min=1)])
    reason = SelectField(choices=REASON_CHOICES, validators=[DataRequired()])
    note = HiddenField(validators=[DataRequired(), Length(max=2000)])
    form_token = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    password = PasswordField("Your password")


class RefundStepForm(PortalForm):
    """Approve or retry a refund, re-typing the password when it is due."""

    form_token = HiddenField(validators=[Length(max=64)])
    password = PasswordField("Your password")
