"""Forms of the account settings page (all CSRF-protected)."""
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from portal.forms import PortalForm
from portal.services.billing_details import country_choices
from portal.services.tax_ids import TAX_ID_TYPES


class BillingDetailsForm(PortalForm):
    """The account name and the billing details printed on invoices."""

    name = StringField("Account name", validators=[DataRequired(), Length(max=200)])
    legal_name = StringField("Legal name (on invoices)", validators=[Optional(), Length(max=200)])
    billing_email = EmailField("Billing email", validators=[Optional(), Email(), Length(max=320)])
    line1 = StringField("Address", validators=[Optional(), Length(max=200)])
    line2 = StringField("Address (line 2)", validators=[Optional(), Length(max=200)])
    postal_code = StringField("Postal code", validators=[Optional(), Length(max=20)])
    city = StringField("City", validators=[Optional(), Length(max=100)])
    state = StringField("State or region", validators=[Optional(), Length(max=100)])
    country = SelectField("Country", validators=[Optional()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = [SelectChoice("", "Choose a country")] + [
            SelectChoice(code, name) for code, name in country_choices()]


class TaxIdForm(PortalForm):
    """Add a tax id (EU VAT, GB VAT, US EIN, ...)."""

    type = SelectField("Type", choices=[SelectChoice(key, label) for key, (label, _c, _p)
                                        in TAX_ID_TYPES.items()],
                       validators=[DataRequired()])
    value = StringField("Number", validators=[DataRequired(), Length(max=64)])


class RemoveTaxIdForm(PortalForm):
    """Remove one tax id."""

    tax_id = HiddenField(validators=[DataRequired(), Length(max=255)])


class PreferencesForm(PortalForm):
    """Which optional billing emails the billing email receives."""

    reminder_emails = BooleanField("Send trial and renewal reminders")


class EmailChangeForm(PortalForm):
    """Change the signed-in member's own email, confirmed by a link sent to the new one."""

    new_email = EmailField("New email", validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField("Current password", validators=[DataRequired()])
