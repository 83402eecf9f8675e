"""Forms for subscribing, changing plan, cancelling and card actions (all CSRF-protected)."""
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from portal.forms import PortalForm
from portal.services.subscriptions import CANCELLATION_FEEDBACK

LOOKUP_KEY = Regexp(r"^[a-z0-9_]{1,200}$", message="Unknown plan.")


class PlanForm(PortalForm):
    """Choose a plan price (subscribe, or preview a change to it)."""

    lookup_key = HiddenField(validators=[DataRequired(), LOOKUP_KEY])


class ConfirmChangeForm(PortalForm):
    """Confirm a previewed plan change at the preview's proration time."""

    lookup_key = HiddenField(validators=[DataRequired(), LOOKUP_KEY])
    proration_date = IntegerField(validators=[DataRequired()])


class AbandonChangeForm(PortalForm):
    """Give up a plan change whose payment the bank did not confirm."""

    invoice_id = HiddenField(validators=[DataRequired(), Regexp(r"^in_[A-Za-z0-9_]{1,200}$")])


class CancelForm(PortalForm):
    """Cancel at the end of the period, with an optional reason."""

    feedback = SelectField(
        "Why are you leaving? (optional)",
        choices=[SelectChoice("", "Choose a reason")]
        + [SelectChoice(value, label) for value, label in CANCELLATION_FEEDBACK],
        validators=[Optional()],
    )
    comment = TextAreaField("Anything else we should know? (optional)",
                            validators=[Optional(), Length(max=500)])


class ActionForm(PortalForm):
    """A button that changes something (resume, pay now, make default, remove)."""


class InvoiceFilterForm(PortalForm):
    """Filter the invoice list by status and year (GET, so no CSRF)."""

    status = SelectField(choices=[SelectChoice(value, label) for value, label in (
        ("", "Any status"), ("open", "Open"), ("paid", "Paid"), ("void", "Void"),
        ("uncollectible", "Uncollectible"))], validators=[Optional()])
    year = SelectField(validators=[Optional()], validate_choice=True)


class ApiKeyForm(PortalForm):
    """Name a new API key for the usage API."""

    name = StringField("Key name", validators=[DataRequired(message="Give the key a name."),
                                               Length(max=100)])
