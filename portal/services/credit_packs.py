"""Credit packs: prepaid billing credits from the catalog, bought once through Checkout.

A pack is a one-time Stripe price (lookup_key ``credit_pack_<key>``) on a product of its own.
Paying for it in a Checkout Session (mode payment) ends in ``checkout.session.completed``;
the handler then creates the Stripe credit grant (applicable to metered prices) with an
idempotency key derived from the session, and adds it to the ledger keyed by the session, so
duplicate or concurrent deliveries grant once.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from portal.extensions import db
from portal.models import Account, CreditLedgerEntry, User
from portal.services import credits, sync
from portal.services.audit import record_audit
from portal.services.catalog import load_catalog
from portal.services.checkout import CheckoutRefused
from portal.services.customers import ensure_stripe_customer
from portal.services.stripe_client import as_dict, request_id, stripe_client

DAY = 86_400


@dataclass(frozen=True)
class CreditPack:
    """A pack as the catalog sells it: price and credits in minor units of one currency."""

    key: str
    name: str
    amount: int
    credits: int
    currency: str
    expires_in_days: int | None = None

    @property
    def lookup_key(self) -> str:
        """Return the Stripe lookup_key of the pack's price."""
        return f"credit_pack_{self.key}"


def credit_packs(catalog: dict | None = None) -> list[CreditPack]:
    """Return the catalog's credit packs; raise ValueError naming the first bad one."""
    catalog = catalog or load_catalog()
    packs = []
    for entry in catalog.get("credit_packs", []):
        key = entry.get("key", "")
        for name in ("amount", "credits"):
            value = entry.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"credit pack {key!r}: {name} must be a whole amount > 0")
        currency = entry.get("currency", catalog["currency"])
        if currency != catalog["currency"]:
            raise ValueError(f"credit pack {key!r}: currency must be the catalog's "
                             f"{catalog['currency']}")
        expires = entry.get("expires_in_days")
        if expires is not None and (not isinstance(expires, int) or expires <= 0):
            raise ValueError(f"credit pack {key!r}: expires_in_days must be a whole number > 0")
        packs.append(CreditPack(key, entry["name"], entry["amount"], entry["credits"], currency,
                                expires))
    if len({pack.key for pack in packs}) != len(packs):
        raise ValueError("credit pack keys must be unique")
    return packs


def find_pack(key: str) -> CreditPack:
    """Return the pack with this key, or refuse."""
    for pack in credit_packs():
        if pack.key == key:
            return pack
    raise CheckoutRefused("That credit pack is not for sale.")


def ensure_credit_packs(client, catalog: dict, report) -> None:
    """Create each pack's product and one-time price at Stripe when missing or changed.

    `report` is the catalog sync's report (created, replaced and unchanged lists).
    """
    for pack in credit_packs(catalog):
        found = client.v1.prices.list(
            params={"lookup_keys": [pack.lookup_key], "active": True, "limit": 1}).data
        if found and found[0].unit_amount == pack.amount and found[0].currency == pack.currency:
            report.unchanged.append(f"credit pack {pack.key}")
            continue
        product = client.v1.products.create(
            params={"name": pack.name, "metadata": {"credit_pack_key": pack.key}},
            options={"idempotency_key": f"catalog-credit-pack-product-{pack.key}-{pack.amount}"})
        client.v1.prices.create(
            params={"product": product.id, "currency": pack.currency,
                    "unit_amount": pack.amount, "lookup_key": pack.lookup_key,
                    "transfer_lookup_key": True,
                    "metadata": {"credit_pack_key": pack.key, "credits": str(pack.credits)}},
            options={"idempotency_key": f"catalog-credit-pack-price-{pack.key}-{pack.amount}"})
        if found:
            client.v1.prices.update(found[0].id, params={"active": False})
            report.replaced.append(f"credit pack {pack.key}")
        else:
            report.created.append(f"credit pack {pack.key}")


def start_pack_checkout(account: Account, pack_key: str, success_url: str, cancel_url: str,
                        *, actor: User | None = None, ip: str | None = None) -> str:
    """Create a payment-mode Checkout Session for a pack; return the page to send the buyer to."""
    pack = find_pack(pack_key)
    client = stripe_client()
    prices = client.v1.prices.list(
        params={"lookup_keys": [pack.lookup_key], "active": True, "limit": 1}).data
    if not prices or prices[0].unit_amount != pack.amount or prices[0].currency != pack.currency:
        raise CheckoutRefused("That credit pack is not on sale yet; please try again later.")
    customer_id = ensure_stripe_customer(account)
    # What the buyer pays for travels with the session, so a later catalog edit cannot change it.
    metadata = {"account_id": str(account.id), "credit_pack": pack.key,
                "credits": str(pack.credits), "currency": pack.currency}
    if pack.expires_in_days:
        metadata["expires_in_days"] = str(pack.expires_in_days)
    minute = int(time.time() // 60)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": str(account.id),
            "line_items": [{"price": prices[0].id, "quantity": 1}],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        # One session per account, pack and minute: a double click reuses the first session.
        options={"idempotency_key": f"credit-pack-checkout-{account.id}-{pack.key}-{minute}"},
    )
    record_audit(actor, "credits.checkout_started", "checkout_session", session.id,
                 amount=pack.amount, currency=pack.currency,
                 stripe_request_id=request_id(session), ip=ip,
                 details={"account_id": account.id, "credit_pack": pack.key,
                          "credits": pack.credits})
    db.session.commit()
    return session.url


def grant_for_checkout(session: dict) -> CreditLedgerEntry | None:
    """Grant the credits a paid pack session bought, once; no commit (the webhook commits)."""
    metadata = session.get("metadata") or {}
    if session.get("mode") != "payment" or "credit_pack" not in metadata:
        return None
    if session.get("payment_status") != "paid":
        return None
    account = sync.checkout_session(session)
    if account is None or str(account.id) != metadata.get("account_id"):
        raise ValueError(f"checkout session {session['id']} names no matching account")
    done = db.session.scalar(db.select(CreditLedgerEntry).where(
        CreditLedgerEntry.stripe_checkout_session_id == session["id"]))
    if done is not None:
        return None
    params = {
        "customer": account.stripe_customer_id,
        "name": f"Credit pack {metadata['credit_pack']}",
        "category": "paid",
        "amount": {"type": "monetary", "monetary": {"currency": metadata["currency"],
                                                    "value": int(metadata["credits"])}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        "metadata": {"account_id": str(account.id), "checkout_session": session["id"],
                     "credit_pack": metadata["credit_pack"]},
    }
    if metadata.get("expires_in_days"):
        params["expires_at"] = int(session.get("created") or time.time()) + \
            int(metadata["expires_in_days"]) * DAY
    grant = stripe_client().v1.billing.credit_grants.create(
        params=params, options={"idempotency_key": f"credit-grant-{session['id']}"})
    entry = credits.record_grant(account, as_dict(grant), checkout_session_id=session["id"])
    record_audit(None, "credits.granted", "credit_grant", grant.id,
                 amount=int(metadata["credits"]), currency=metadata["currency"],
                 stripe_request_id=request_id(grant),
                 details={"account_id": account.id, "checkout_session": session["id"]})
    return entry
