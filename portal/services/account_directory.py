"""The staff list of accounts: search, filters, MRR and signup-date order, keyset pages.

Each account is described by its current subscription: the newest live one, else its newest.
An account that never subscribed is "free". MRR here is the current subscription's list price
times its quantity, normalised to a month (yearly / 12, weekly * 52 / 12, rounded down to
the minor unit), for active and past-due subscriptions only; discounts are not taken off.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, exists, func, literal, or_, tuple_

from portal.extensions import db
from portal.models import Account, Invoice, Price, Product, Subscription, User
from portal.models.subscription import LIVE_STATUSES

ACCOUNTS_PER_PAGE = 25
STATUSES = ("trialing", "active", "past_due", "canceled", "free")
SORTS = {"signup_desc": "Newest signup", "signup_asc": "Oldest signup",
         "mrr_desc": "Highest MRR", "mrr_asc": "Lowest MRR"}
# Statuses that bring in recurring revenue now (a trial does not, yet).
PAYING_STATUSES = ("active", "past_due")


class BadAccountQuery(ValueError):
    """A search, filter, order or cursor that cannot be used (the message says which)."""


@dataclass
class AccountQuery:
    """What staff search and narrow the accounts list to."""

    search: str = ""
    plan: str = ""
    status: str = ""
    currency: str = ""
    sort: str = "signup_desc"

    @classmethod
    def from_args(cls, args) -> AccountQuery:
        """Read the query from query-string arguments; raise BadAccountQuery on nonsense."""
        query = cls(search=(args.get("q") or "").strip()[:320],
                    plan=(args.get("plan") or "").strip(),
                    status=(args.get("status") or "").strip(),
                    currency=(args.get("currency") or "").strip().lower(),
                    sort=(args.get("sort") or "signup_desc").strip())
        if query.status and query.status not in STATUSES:
            raise BadAccountQuery("Unknown status: choose trialing, active, past_due, canceled "
                                  "or free.")
        if query.sort not in SORTS:
            raise BadAccountQuery("Unknown order.")
        if query.currency and not (len(query.currency) == 3 and query.currency.isalpha()):
            raise BadAccountQuery("A currency is a three-letter code, like usd.")
        return query

    def query_args(self) -> dict[str, str]:
        """Return the query as query-string arguments (for the next page's link)."""
        values = {"q": self.search, "plan": self.plan, "status": self.status,
                  "currency": self.currency, "sort": self.sort}
        return {key: value for key, value in values.items() if value}


@dataclass
class AccountRow:
    """One line of the accounts list."""

    account: Account
    status: str
    plan: str | None
    currency: str | None
    mrr: int
    members: int


@dataclass
class AccountPage:
    """A page of accounts and the cursor of the next one."""

    rows: list[AccountRow] = field(default_factory=list)
    next_cursor: str | None = None


def current_subscription_id():
    """Return a correlated subquery: the id of the account's current subscription."""
    return (db.select(Subscription.id)
            .where(Subscription.account_id == Account.id)
            .order_by(case((Subscription.status.in_(LIVE_STATUSES), 1), else_=0).desc(),
                      Subscription.id.desc())
            .limit(1).correlate(Account).scalar_subquery())


def monthly_amount(price, quantity):
    """Return the SQL expression of a price's amount per month, in minor units."""
    total = price.unit_amount * quantity
    count = func.coalesce(price.interval_count, 1)
    return case(
        (price.interval == "month", total / count),
        (price.interval == "year", total / (12 * count)),
        (price.interval == "week", total * 52 / (12 * count)),
        (price.interval == "day", total * 365 / (12 * count)),
        else_=0)


def _columns():
    """Return the joined select of accounts with status, plan, currency and MRR columns."""
    sub = db.aliased(Subscription)
    price = db.aliased(Price)
    product = db.aliased(Product)
    status = func.coalesce(sub.status, literal("free")).label("status")
    mrr = case((sub.status.in_(PAYING_STATUSES),
                func.coalesce(monthly_amount(price, sub.quantity), 0)), else_=0).label("mrr")
    currency = func.coalesce(sub.currency, Account.balance_currency).label("currency")
    members = (db.select(func.count(User.id)).where(User.account_id == Account.id)
               .correlate(Account).scalar_subquery().label("members"))
    select = (db.select(Account, status, product.key.label("plan"), currency, mrr, members)
              .select_from(Account)
              # account_id first: the index narrows to the account's own subscriptions
              # before the correlated pick of its current one runs.
              .outerjoin(sub, (sub.account_id == Account.id)
                         & (sub.id == current_subscription_id()))
              .outerjoin(price, price.stripe_price_id == sub.stripe_price_id)
              .outerjoin(product, product.id == price.product_id))
    return select, {"status": status, "plan": product.key, "currency": currency, "mrr": mrr,
                    "sub": sub}


def _exact_matches(text: str) -> list[int]:
    """Return the accounts a search names exactly (customer id, invoice, member email), by index."""
    needle = text.lower()
    named = db.select(Account.id).where(Account.stripe_customer_id == text).union(
        db.select(Invoice.account_id).where(or_(
            Invoice.number == text, Invoice.number == text.upper(),
            Invoice.stripe_invoice_id == text)),
        db.select(User.account_id).where(User.email == needle))
    return [account_id for (account_id,) in db.session.execute(named) if account_id]


def _searched(select, text: str):
    """Narrow to accounts whose name, member email, Stripe customer id or invoice matches.

    An exact Stripe customer id, invoice number or member email is looked up by index; only
    when nothing matches exactly does the search scan names and emails for the fragment.
    """
    if not text:
        return select
    exact = _exact_matches(text)
    if exact:
        return select.where(Account.id.in_(exact))
    needle = text.lower()
    return select.where(or_(
        func.lower(Account.name).contains(needle, autoescape=True),
        func.lower(Account.billing_email) == needle,
        exists().where(User.account_id == Account.id,
                       User.email.contains(needle, autoescape=True)),
    ))


def _encode(value, row_id: int) -> str:
    """Return an opaque cursor for a row's sort value and id."""
    if isinstance(value, datetime):
        value = value.isoformat()
    return base64.urlsafe_b64encode(json.dumps([value, row_id]).encode()).decode()


def _decode(cursor: str, sort: str):
    """Return (sort value, id) of a cursor; raise BadAccountQuery if it is not one of ours."""
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(row_id, int):
            raise ValueError
        if sort.startswith("signup"):
            value = datetime.fromisoformat(value)
        elif not isinstance(value, int):
            raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise BadAccountQuery("That page link is broken; start from the first page.") from exc
    return value, row_id


def account_page(query: AccountQuery, cursor: str | None = None,
                 per_page: int = ACCOUNTS_PER_PAGE) -> AccountPage:
    """Return a page of accounts matching the query, by keyset on (sort value, id)."""
    select, columns = _columns()
    select = _searched(select, query.search)
    if query.status:
        select = select.where(columns["status"] == query.status)
    if query.plan:
        select = select.where(columns["plan"] == query.plan)
    if query.currency:
        select = select.where(columns["currency"] == query.currency)
    key = Account.created_at if query.sort.startswith("signup") else columns["mrr"]
    descending = query.sort.endswith("_desc")
    if cursor:
        value, row_id = _decode(cursor, query.sort)
        after = tuple_(key, Account.id) < (value, row_id) if descending else \
            tuple_(key, Account.id) > (value, row_id)
        select = select.where(after)
    order = (key.desc(), Account.id.desc()) if descending else (key.asc(), Account.id.asc())
    rows = db.session.execute(select.order_by(*order).limit(per_page + 1)).all()
    page = AccountPage([AccountRow(account=row[0], status=row.status, plan=row.plan,
                                   currency=row.currency, mrr=int(row.mrr or 0),
                                   members=row.members) for row in rows[:per_page]])
    if len(rows) > per_page:
        last = page.rows[-1]
        value = last.account.created_at if query.sort.startswith("signup") else last.mrr
        page.next_cursor = _encode(value, last.account.id)
    return page


def plan_choices() -> list[tuple[str, str]]:
    """Return (product key, name) of every plan in the catalog, for the plan filter."""
    return [(key, name) for key, name in db.session.execute(
        db.select(Product.key, Product.name).order_by(Product.sort_order, Product.id))]


def currency_choices() -> list[str]:
    """Return every currency a price or a subscription is in, for the currency filter."""
    prices = db.select(Price.currency).distinct()
    subscriptions = db.select(Subscription.currency).distinct()
    return sorted({code.lower() for (code,) in db.session.execute(prices.union(subscriptions))})


def account_mrr(account_id: int) -> tuple[int, str | None]:
    """Return the account's MRR and its currency, as the list computes them."""
    select, columns = _columns()
    row = db.session.execute(select.where(Account.id == account_id)).one()
    return int(row.mrr or 0), row.currency

