"""Prepaid credits: the account's append-only ledger, draw-downs against overage, hard limit.

Stripe holds the credit grants and applies them to the metered overage lines of invoices
when they are finalized. The portal's ledger records the same movements as they happen for
the customer: grants (bought packs or grants made at Stripe), draw-downs as overage accrues
in the period, expiries, voids and credits given back when an invoice is voided. Its balance
is therefore Stripe's credit balance less the overage of the period not invoiced yet, and at
an invoice's finalization the two meet.

Every entry locks the account's CreditBalance row first (SELECT ... FOR UPDATE), computes the
new balance under that lock, and writes entry and balance in the same transaction; the
database also refuses a negative balance (CHECK), so concurrent draw-downs cannot overdraw.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import Account, CreditBalance, CreditLedgerEntry
from portal.services.audit import record_audit
from portal.services.catalog import load_catalog
from portal.services.usage_summary import BillingPeriod, MeterUsage, period_usage

LEDGER_PAGE = 100


class UsageLimitReached(Exception):
    """The account's hard limit refuses more usage: included usage and credits are used up."""


@dataclass(frozen=True)
class CreditsView:
    """What the credits page shows: the balance, the hard-limit choice and the latest entries."""

    balance: int
    currency: str
    hard_limit: bool
    entries: list[CreditLedgerEntry]


def _insert_for_dialect():
    return postgresql.insert if db.session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert


def locked_balance(account_id: int, currency: str) -> CreditBalance:
    """Return the account's balance row, created if missing, locked until the commit."""
    table = CreditBalance.__table__
    db.session.execute(
        _insert_for_dialect()(table)
        .values(account_id=account_id, currency=currency, balance=0, hard_limit=False,
                updated_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=[table.c.account_id]))
    return db.session.scalars(
        db.select(CreditBalance).where(CreditBalance.account_id == account_id)
        .with_for_update().execution_options(populate_existing=True)).one()


def _existing(account_id: int, reference: str) -> CreditLedgerEntry | None:
    return db.session.scalar(db.select(CreditLedgerEntry).where(
        CreditLedgerEntry.account_id == account_id, CreditLedgerEntry.reference == reference))


def _append(row: CreditBalance, kind: str, amount: int, reference: str, description: str,
            **ids: str | None) -> CreditLedgerEntry | None:
    """Write one entry against a locked balance row; debits never take more than is left."""
    if amount < 0:
        amount = -min(-amount, row.balance)
    if amount == 0:
        return None
    row.balance += amount
    row.updated_at = datetime.now(UTC)
    entry = CreditLedgerEntry(account_id=row.account_id, kind=kind, amount=amount,
                              currency=row.currency, balance_after=row.balance,
                              reference=reference, description=description, **ids)
    db.session.add(entry)
    db.session.flush()
    return entry


def record_grant(account: Account, grant: dict, checkout_session_id: str | None = None
                 ) -> CreditLedgerEntry | None:
    """Add a Stripe credit grant to the ledger once (keyed by the grant id); no commit.

    The period's overage that found no credits before is drawn from the new grant at once,
    as Stripe will apply it to the whole overage line at the next invoice.
    """
    reference = f"grant:{grant['id']}"
    money = grant["amount"]["monetary"]
    row = locked_balance(account.id, money["currency"])
    if _existing(account.id, reference) is not None:
        return None
    name = grant.get("name") or "Credit grant"
    entry = _append(row, "grant", int(money["value"]), reference, name,
                    stripe_credit_grant_id=grant["id"],
                    stripe_checkout_session_id=checkout_session_id)
    _draw_overage(row)
    return entry


def draw_down(account: Account | int, amount: int, reference: str,
              description: str = "Usage paid with credits") -> CreditLedgerEntry | None:
    """Take up to `amount` minor units of credits for `reference`, once; commit.

    For metered reporting: draw what a reported window's overage costs, with a reference
    derived from the window. The automatic draw after ingestion counts these draws in the
    period they were made, so the same overage is never paid twice.
    Returns the entry (its amount may be smaller than asked when fewer credits are left),
    or None when the reference was drawn before or no credits are left.
    """
    if amount <= 0:
        raise ValueError("a draw-down takes a positive amount")
    account_id = account if isinstance(account, int) else account.id
    currency = load_catalog()["currency"]
    row = locked_balance(account_id, currency)
    entry = None if _existing(account_id, reference) is not None else \
        _append(row, "draw_down", -amount, reference, description)
    db.session.commit()
    return entry


def overage_rates(plan_key: str | None) -> dict[str, Decimal]:
    """Return the plan's overage price per unit (minor units, exact) by meter key."""
    plan = next((p for p in load_catalog()["plans"] if p["key"] == plan_key), None)
    return {key: Decimal(str(rate)) for key, rate in (plan or {}).get("overage", {}).items()}


def _meter_costs(period: BillingPeriod, meters: list[MeterUsage]) -> list[Decimal]:
    """Return each meter's overage cost so far, exact (rates may be fractions of a minor unit)."""
    rates = overage_rates(period.plan_key)
    return [usage.overage * rates.get(usage.meter, Decimal(0)) for usage in meters]


def overage_cost(period: BillingPeriod, meters: list[MeterUsage]) -> int:
    """Return what the period's overage costs so far, each meter rounded half up on its own."""
    return sum(int(cost.quantize(Decimal(1), rounding=ROUND_HALF_UP))
               for cost in _meter_costs(period, meters))


def _period_prefix(period: BillingPeriod) -> str:
    return f"overage:{period.start:%Y%m%dT%H%M%S}:"


def _drawn_in_period(account_id: int, period: BillingPeriod) -> int:
    """Return the credits drawn for the period: its overage draws, and the draw_down calls
    (metered reporting) made while it ran, so neither pays what the other already paid."""
    entry = CreditLedgerEntry
    ours = entry.reference.startswith(_period_prefix(period))
    reported = db.and_(~entry.reference.startswith("overage:"),
                       entry.created_at >= period.start, entry.created_at < period.end)
    drawn = db.session.scalar(db.select(db.func.coalesce(db.func.sum(entry.amount), 0)).where(
        entry.account_id == account_id, entry.kind == "draw_down", db.or_(ours, reported)))
    return -int(drawn)


def _draw_overage(row: CreditBalance, now: datetime | None = None) -> CreditLedgerEntry | None:
    """Draw the period's overage not drawn yet from a locked balance row; no commit."""
    if row.balance == 0:
        return None
    period, meters = period_usage(row.account_id, now)
    owed = overage_cost(period, meters)
    drawn = _drawn_in_period(row.account_id, period)
    if owed <= drawn:
        return None
    return _append(row, "draw_down", drawn - owed, f"{_period_prefix(period)}{drawn}-{owed}",
                   f"Overage from {period.start:%Y-%m-%d} paid with credits")


def draw_down_overage(account_id: int, now: datetime | None = None) -> CreditLedgerEntry | None:
    """Draw credits for the period's overage not drawn yet; commit. No credits: nothing."""
    row = db.session.get(CreditBalance, account_id)
    if row is None or row.balance == 0:
        return None
    entry = _draw_overage(locked_balance(account_id, row.currency), now)
    db.session.commit()
    return entry


def _batch_usage(meters: list[MeterUsage], events: list) -> list[MeterUsage]:
    """Return the meters as they would stand with the batch's well-formed events added."""
    added: dict[str, int] = {}
    last: dict[str, int] = {}
    for item in events:
        if not isinstance(item, dict) or not isinstance(item.get("meter"), str):
            continue
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            continue
        added[item["meter"]] = added.get(item["meter"], 0) + quantity
        last[item["meter"]] = quantity
    after = []
    for usage in meters:
        if usage.aggregation in ("sum", "count"):
            extra = added.get(usage.meter, 0) if usage.aggregation == "sum" else \
                sum(1 for item in events if isinstance(item, dict)
                    and item.get("meter") == usage.meter)
            used = usage.used + extra
        else:
            used = last.get(usage.meter, usage.used)
        after.append(MeterUsage(usage.meter, usage.name, usage.unit, usage.aggregation, used,
                                usage.included, max(0, used - usage.included), usage.projected))
    return after


def check_hard_limit(account_id: int, events: list, now: datetime | None = None) -> None:
    """Refuse a batch that would accrue overage the account's credits cannot pay, if it chose.

    With the hard limit on, usage beyond the included amounts is accepted only while credits
    pay for it: the batch is refused when it adds overage to a meter without an overage price
    (credits only pay priced overage), or when the period's overage cost with it would exceed
    what was drawn plus what is left. The batch is counted as sent (before duplicates).
    The balance row stays locked until the caller commits the events it accepted, so
    concurrent batches are judged one after the other.
    """
    row = db.session.get(CreditBalance, account_id)
    if row is None or not row.hard_limit:
        return
    row = locked_balance(account_id, row.currency)
    period, meters = period_usage(account_id, now)
    after = _batch_usage(meters, events)
    rates = overage_rates(period.plan_key)
    unpriced = any(new.overage > old.overage and new.meter not in rates
                   for old, new in zip(meters, after, strict=True))
    # Exact, not rounded: a fifth of a cent of overage is already more than no credits.
    exact = sum(_meter_costs(period, after), Decimal(0))
    if unpriced or exact > _drawn_in_period(account_id, period) + row.balance:
        db.session.rollback()
        raise UsageLimitReached(
            "This account's included usage and prepaid credits are used up and its hard limit "
            "is on, so no more usage is accepted this period. Buy credits or turn the hard "
            "limit off on the Credits page.")


def credits_view(account: Account) -> CreditsView:
    """Return the account's balance, hard-limit choice and latest ledger entries."""
    row = db.session.get(CreditBalance, account.id)
    entries = list(db.session.scalars(
        db.select(CreditLedgerEntry).where(CreditLedgerEntry.account_id == account.id)
        .order_by(CreditLedgerEntry.id.desc()).limit(LEDGER_PAGE)))
    currency = row.currency if row else load_catalog()["currency"]
    return CreditsView(row.balance if row else 0, currency, bool(row and row.hard_limit),
                       entries)


def set_hard_limit(account: Account, enabled: bool, *, actor=None, ip: str | None = None
                   ) -> None:
    """Turn the account's hard limit on or off; audit; commit."""
    row = locked_balance(account.id, load_catalog()["currency"])
    if row.hard_limit != enabled:
        row.hard_limit = enabled
        record_audit(actor, "credits.hard_limit_" + ("on" if enabled else "off"), "account",
                     str(account.id), ip=ip, details={"account_id": account.id})
    db.session.commit()


# Stripe credit balance transactions that move the portal's ledger (debits for applied
# credits are not here: the ledger drew them down as the overage accrued).
FOLLOWED = {
    ("debit", "credits_expired"): ("expiry", -1, "Credits expired"),
    ("debit", "credits_voided"): ("void", -1, "Credits voided"),
    ("credit", "credits_application_invoice_voided"):
        ("reinstated", 1, "Credits given back: the invoice was voided"),
}


def follow_balance_transaction(account: Account, txn: dict) -> CreditLedgerEntry | None:
    """Record an expiry, void or reinstatement Stripe made on a grant, once; no commit."""
    side = txn.get("type")
    detail = txn.get(side) or {}
    followed = FOLLOWED.get((side, detail.get("type")))
    if followed is None:
        return None
    kind, sign, description = followed
    money = detail["amount"]["monetary"]
    row = locked_balance(account.id, money["currency"])
    reference = f"txn:{txn['id']}"
    if _existing(account.id, reference) is not None:
        return None
    grant = txn.get("credit_grant")
    grant_id = grant.get("id") if isinstance(grant, dict) else grant
    return _append(row, kind, sign * int(money["value"]), reference, description,
                   stripe_credit_grant_id=grant_id)


def _account_of_customer(customer_id: str | None) -> Account | None:
    return db.session.scalar(db.select(Account).where(Account.stripe_customer_id == customer_id)) \
        if customer_id else None


def follow_grant(grant: dict) -> CreditLedgerEntry | None:
    """Add a grant made at Stripe (a pack, or one given from the Dashboard) to the ledger."""
    customer = grant.get("customer")
    account = _account_of_customer(customer.get("id") if isinstance(customer, dict) else customer)
    return record_grant(account, grant) if account is not None else None


def follow_transaction(txn: dict, grant_customer: Callable[[str], str | None]
                       ) -> CreditLedgerEntry | None:
    """Apply a Stripe credit balance transaction to the ledger of the grant's account.

    `grant_customer(grant_id)` asks Stripe for a grant's customer when the ledger does not
    know the grant yet.
    """
    grant = txn.get("credit_grant")
    grant_id = grant.get("id") if isinstance(grant, dict) else grant
    known = db.session.scalar(db.select(CreditLedgerEntry.account_id).where(
        CreditLedgerEntry.stripe_credit_grant_id == grant_id).limit(1))
    account = db.session.get(Account, known) if known is not None else \
        _account_of_customer(grant_customer(grant_id))
    return follow_balance_transaction(account, txn) if account is not None else None
