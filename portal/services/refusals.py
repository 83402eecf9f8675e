"""The one kind of error billing services raise for requests they will not carry out."""


class BillingRefused(ValueError):
    """A customer's billing request that cannot be done; the message is written for them."""
