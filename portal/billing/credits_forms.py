"""Forms of the credits page: buy a pack, choose the hard limit (both CSRF-protected)."""
from wtforms import BooleanField, HiddenField
from wtforms.validators import DataRequired, Regexp

from portal.forms import PortalForm


class BuyPackForm(PortalForm):
    """Buy one credit pack from the catalog through Checkout."""

    pack = HiddenField(validators=[DataRequired(), Regexp(r"^[a-z0-9_]{1,64}$",
                                                          message="Unknown credit pack.")])


class HardLimitForm(PortalForm):
    """Turn the usage API's hard limit on or off."""

    enabled = BooleanField("Refuse usage once included usage and credits are used up")
