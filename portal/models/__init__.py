"""Database models, one module per aggregate."""
from portal.models.account import Account, Role, User
from portal.models.audit import AuditEntry
from portal.models.catalog import Price, Product
from portal.models.credits import CreditBalance, CreditLedgerEntry
from portal.models.events import WebhookEvent
from portal.models.invoice import Charge, Invoice, InvoicePayment, Refund, TaxId
from portal.models.mail import QueuedMail
from portal.models.mirror import MirrorFetch, MirrorTombstone
from portal.models.refund_request import RefundRequest
from portal.models.revenue import MrrChange, SubscriptionMrr
from portal.models.session import RememberToken
from portal.models.subscription import PaymentMethod, Subscription
from portal.models.usage import ApiKey, UsageEvent, UsageHourly
from portal.models.usage_billing import SubscriptionItem, UsageReport
from portal.models.usage_notice import UsageNotice

__all__ = [
    "Account",
    "ApiKey",
    "AuditEntry",
    "Charge",
    "CreditBalance",
    "CreditLedgerEntry",
    "Invoice",
    "InvoicePayment",
    "MirrorFetch",
    "MirrorTombstone",
    "MrrChange",
    "PaymentMethod",
    "Price",
    "Product",
    "QueuedMail",
    "Refund",
    "RefundRequest",
    "RememberToken",
    "Role",
    "Subscription",
    "SubscriptionItem",
    "SubscriptionMrr",
    "TaxId",
    "UsageEvent",
    "UsageHourly",
    "UsageNotice",
    "UsageReport",
    "User",
    "WebhookEvent",
]
