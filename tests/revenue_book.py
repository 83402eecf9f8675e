"""A hand-made book of business built through the sandbox with test clocks.

Every step happens at a fixed moment of a customer's own test clock
(docs.stripe.com/billing/testing/test-clocks), and every change reaches the portal as
Stripe's signed webhooks do, so the MRR changes are written by the sync path alone.
"""
from __future__ import annotations

from datetime import datetime

from portal.extensions import db
from portal.services import sync
from portal.services.catalog_sync import sync_catalog
from tests.factories import make_user
from tests.helpers import price_id
from tests.invoice_support import deliver_all


def moment(text: str) -> int:
    """Return the unix time of an ISO date (UTC noon, so no month edge is near)."""
    return int(datetime.fromisoformat(f"{text}T12:00:00+00:00").timestamp())


class BookCustomer:
    """One portal account whose Stripe customer lives on its own test clock."""

    def __init__(self, stripe_api, deliver_webhooks, start: str, name: str) -> None:
        self.stripe_api, self.deliver = stripe_api, deliver_webhooks
        self.clock = stripe_api.v1.test_helpers.test_clocks.create(
            params={"frozen_time": moment(start)})
        self.account = make_user(account_name=name).account
        customer = stripe_api.v1.customers.create(params={
            "test_clock": self.clock.id, "email": f"{name.lower()}@example.com",
            "metadata": {"account_id": str(self.account.id)}})
        sync.customer(customer)
        db.session.commit()
        method = stripe_api.v1.payment_methods.attach(
            "pm_card_visa", params={"customer": customer.id})
        stripe_api.v1.customers.update(customer.id, params={
            "invoice_settings": {"default_payment_method": method.id}})
        self.customer_id = customer.id
        self.flush()

    def flush(self) -> None:
        """Deliver every due webhook to the portal (signed, as Stripe posts them)."""
        deliver_all(self.deliver)
        db.session.expire_all()

    def advance(self, day: str) -> None:
        """Move this customer's clock to `day`, letting renewals and payments happen."""
        self.stripe_api.v1.test_helpers.test_clocks.advance(
            self.clock.id, params={"frozen_time": moment(day)})
        self.flush()

    def subscribe(self, price: str, **extra) -> str:
        """Start a subscription to `price` (paid at once with the default card)."""
        subscription = self.stripe_api.v1.subscriptions.create(params={
            "customer": self.customer_id, "items": [{"price": price}], **extra})
        self.flush()
        return subscription.id

    def change_plan(self, subscription_id: str, price: str) -> None:
        """Move a subscription's plan item to another price, prorated."""
        subscription = self.stripe_api.v1.subscriptions.retrieve(subscription_id)
        item = subscription["items"].data[0].id
        self.stripe_api.v1.subscriptions.update(subscription_id, params={
            "items": [{"id": item, "price": price}]})
        self.flush()

    def refund_first_payment(self, amount: int) -> None:
        """Refund part of the customer's first charge (docs.stripe.com/api/refunds/create)."""
        charge = self.stripe_api.v1.charges.list(params={"customer": self.customer_id}).data[-1]
        self.stripe_api.v1.refunds.create(
            params={"charge": charge.id, "amount": amount},
            options={"idempotency_key": f"book-refund-{charge.id}"})
        self.flush()

    def cancel(self, subscription_id: str) -> None:
        """End a subscription now."""
        self.stripe_api.v1.subscriptions.cancel(subscription_id)
        self.flush()


def euro_prices(stripe_api) -> tuple[str, str]:
    """Create a euro monthly (30.00) and yearly (300.00) price on the Pro product."""
    product = stripe_api.v1.prices.list(params={"lookup_keys": ["pro_month"]}).data[0].product
    monthly = stripe_api.v1.prices.create(params={
        "product": product, "currency": "eur", "unit_amount": 3000,
        "recurring": {"interval": "month"}})
    yearly = stripe_api.v1.prices.create(params={
        "product": product, "currency": "eur", "unit_amount": 30000,
        "recurring": {"interval": "year"}})
    return monthly.id, yearly.id


def build_book(stripe_api, deliver_webhooks) -> dict[str, BookCustomer]:
    """Build the book the revenue tests assert on; returns its customers by name.

    A (usd) 2026-01-05 Starter monthly 19.00, of which 5.00 is refunded the same day;
            2026-02-10 upgrade to Pro monthly 49.00.
    B (usd) 2026-01-12 Pro yearly 490.00; 2026-03-03 downgrade to Starter yearly 190.00.
    C (usd) 2026-01-20 Pro monthly with a 20% coupon (forever); 2026-02-15 cancels;
            2026-04-06 comes back on Starter monthly.
    D (eur) 2026-01-08 euro monthly 30.00; 2026-03-05 adds euro yearly 300.00;
            2026-04-20 cancels the monthly one.
    """
    sync_catalog()
    db.session.commit()
    starter_month, pro_month = price_id(stripe_api, "starter_month"), price_id(
        stripe_api, "pro_month")
    starter_year, pro_year = price_id(stripe_api, "starter_year"), price_id(
        stripe_api, "pro_year")
    eur_month, eur_year = euro_prices(stripe_api)
    coupon = stripe_api.v1.coupons.create(params={"percent_off": 20, "duration": "forever"})

    a = BookCustomer(stripe_api, deliver_webhooks, "2026-01-05", "Alder")
    a_sub = a.subscribe(starter_month)
    a.refund_first_payment(500)
    b = BookCustomer(stripe_api, deliver_webhooks, "2026-01-12", "Birch")
    b_sub = b.subscribe(pro_year)
    c = BookCustomer(stripe_api, deliver_webhooks, "2026-01-20", "Cedar")
    c_sub = c.subscribe(pro_month, discounts=[{"coupon": coupon.id}])
    d = BookCustomer(stripe_api, deliver_webhooks, "2026-01-08", "Dogwood")
    d_monthly = d.subscribe(eur_month)

    a.advance("2026-02-10")
    a.change_plan(a_sub, pro_month)
    c.advance("2026-02-15")
    c.cancel(c_sub)
    b.advance("2026-03-03")
    b.change_plan(b_sub, starter_year)
    d.advance("2026-03-05")
    d.subscribe(eur_year)
    c.advance("2026-04-06")
    c.subscribe(starter_month)
    d.advance("2026-04-20")
    d.cancel(d_monthly)
    return {"A": a, "B": b, "C": c, "D": d}
