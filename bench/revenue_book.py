"""A synthetic book of business for bench/revenue.py, bulk-inserted into the mirror tables.

At --scale 1: 100,000 accounts, 150,000 subscriptions over 24 months (trials, plan changes,
churn, second subscriptions and comebacks), their classified MRR changes, 1,000,000 invoices
with a charge each (plus failed attempts) and 50,000 refunds; 80% usd, 20% eur. The MRR
changes are classified per customer as the sync path does (services.mrr.movement_kind), in
one pass here, since the bench fills the tables directly instead of replaying webhooks.
Rows go in with the driver's bulk path: executemany on SQLite, COPY on PostgreSQL.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from portal.services.mrr import monthly_amount, movement_kind

DAY = 86_400
CURRENCIES = (("usd", 0.8), ("eur", 0.2))
# (plan key, interval, amount in minor units), per currency.
PLANS = (("starter", "month", 1900), ("starter", "year", 19000),
         ("pro", "month", 4900), ("pro", "year", 49000),
         ("business", "month", 14900), ("business", "year", 149000))
BATCH = 20_000


def price_id(currency: str, plan: str, interval: str) -> str:
    return f"price_bench_{currency}_{plan}_{interval}"


class Book:
    """Rows of every mirror table, generated from a seed."""

    def __init__(self, scale: float, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now.replace(microsecond=0)
        self.start = (self.now - timedelta(days=730)).replace(microsecond=0)
        self.accounts = max(int(100_000 * scale), 10)
        self.subscription_count = max(int(150_000 * scale), 15)
        self.invoice_count = max(int(1_000_000 * scale), 100)
        self.refund_count = max(int(50_000 * scale), 5)
        self.currency_of = [self._currency() for _ in range(self.accounts)]
        self.subscriptions: list[dict] = []
        self.changes: list[tuple] = []

    def _currency(self) -> str:
        return "usd" if self.rng.random() < CURRENCIES[0][1] else "eur"

    def _moment(self, low: datetime, high: datetime) -> datetime:
        span = max(int((high - low).total_seconds()), 1)
        return low + timedelta(seconds=self.rng.randrange(span))

    def build_subscriptions(self) -> None:
        """Lay out each subscription's life: start, trial, plan change, end."""
        rng = self.rng
        for index in range(self.subscription_count):
            account = index if index < self.accounts else rng.randrange(self.accounts)
            currency = self.currency_of[account]
            plan = rng.randrange(len(PLANS))
            started = self._moment(self.start, self.now - timedelta(days=1))
            trial_end = started + timedelta(days=14) if rng.random() < 0.15 else None
            converts = trial_end is None or rng.random() < 0.6
            events: list[tuple[datetime, int]] = []  # (when, plan index or -1 for ended)
            paying_from = trial_end or started
            if converts and paying_from < self.now:
                events.append((paying_from, plan))
                if rng.random() < 0.25:
                    when = self._moment(paying_from, self.now)
                    plan = (plan + rng.choice((1, 2, -1, -2))) % len(PLANS)
                    events.append((when, plan))
                if rng.random() < 0.3:
                    events.append((self._moment(events[-1][0], self.now), -1))
            elif trial_end and trial_end < self.now:
                events.append((trial_end, -1))
            ended = events and events[-1][1] == -1
            self.subscriptions.append({
                "id": index + 1, "account": account + 1, "currency": currency,
                "plan": plan, "started": started, "trial_end": trial_end, "events": events,
                "status": "canceled" if ended else ("trialing" if trial_end and
                                                    trial_end > self.now else "active"),
                "ended": events[-1][0] if ended else None,
            })

    def classify(self) -> None:
        """Turn the subscriptions' lives into MRR changes classified per customer."""
        timeline: list[tuple[datetime, int, int]] = []  # (when, subscription index, mrr)
        for index, sub in enumerate(self.subscriptions):
            for when, plan in sub["events"]:
                mrr = 0 if plan < 0 else monthly_amount(PLANS[plan][2], PLANS[plan][1])
                timeline.append((when, index, mrr))
        timeline.sort()
        current = [0] * len(self.subscriptions)
        customer_mrr: dict[int, int] = {}
        paid_before: set[int] = set()
        for when, index, mrr in timeline:
            sub = self.subscriptions[index]
            old = current[index]
            if mrr == old:
                continue
            account = sub["account"]
            before = customer_mrr.get(account, 0)
            after = before - old + mrr
            kind = movement_kind(before, after, account in paid_before)
            paid_before.add(account)
            customer_mrr[account] = after
            current[index] = mrr
            plan = PLANS[sub["plan"]]
            self.changes.append((account, f"cus_b{account}", f"sub_b{sub['id']}",
                                 price_id(sub["currency"], plan[0], plan[1]), sub["currency"],
                                 when, old, mrr, kind, when))
        self.final_mrr = current

    def account_rows(self) -> Iterator[tuple]:
        for index in range(self.accounts):
            yield (index + 1, f"Bench account {index + 1}", f"cus_b{index + 1}", self.start,
                   0, self.start, self.start)

    def subscription_rows(self) -> Iterator[tuple]:
        for sub in self.subscriptions:
            plan = PLANS[sub["plan"]]
            yield (sub["id"], sub["account"], f"cus_b{sub['account']}", sub["status"],
                   price_id(sub["currency"], plan[0], plan[1]), 1, sub["currency"],
                   sub["trial_end"], False, sub["ended"], sub["ended"],
                   f"sub_b{sub['id']}", sub["started"], 0, sub["started"])

    def subscription_mrr_rows(self) -> Iterator[tuple]:
        for index, sub in enumerate(self.subscriptions):
            plan = PLANS[sub["plan"]]
            yield (sub["id"], f"sub_b{sub['id']}", f"cus_b{sub['account']}", sub["account"],
                   price_id(sub["currency"], plan[0], plan[1]), sub["currency"],
                   self.final_mrr[index], "", 0, 0, self.now)

    def change_rows(self) -> Iterator[tuple]:
        for number, change in enumerate(self.changes, start=1):
            yield (number, *change)

    def invoice_and_charge_rows(self) -> tuple[Iterator[tuple], list]:
        """Return invoice rows and, filled as they are read, the matching charge rows."""
        charges: list[tuple] = []

        def invoices() -> Iterator[tuple]:
            rng = self.rng
            for number in range(1, self.invoice_count + 1):
                sub = self.subscriptions[rng.randrange(len(self.subscriptions))]
                plan = PLANS[sub["plan"]]
                created = self._moment(sub["started"], sub["ended"] or self.now)
                roll = rng.random()
                status, attempts = ("paid", 1) if roll < 0.93 else (
                    ("paid", rng.choice((2, 3))) if roll < 0.97 else ("open", 2))
                paid_at = created + timedelta(days=attempts - 1, hours=1) if (
                    status == "paid") else None
                amount = plan[2]
                yield (number, sub["account"], f"cus_b{sub['account']}", f"sub_b{sub['id']}",
                       f"B-{number:07d}", status, sub["currency"], amount, amount, 0, amount,
                       amount if status == "paid" else 0, 0 if status == "paid" else amount,
                       attempts, "[]", paid_at, f"in_b{number}", created, 0, created)
                for attempt in range(attempts):
                    succeeded = status == "paid" and attempt == attempts - 1
                    charges.append((len(charges) + 1, sub["account"], f"cus_b{sub['account']}",
                                    f"in_b{number}", "succeeded" if succeeded else "failed",
                                    sub["currency"], amount, amount if succeeded else 0, 0,
                                    f"ch_b{len(charges) + 1}",
                                    created + timedelta(days=attempt, hours=1), 0, created))

        return invoices(), charges

    def refund_rows(self, charges: list) -> Iterator[tuple]:
        succeeded = [row for row in charges if row[4] == "succeeded"]
        for number in range(1, self.refund_count + 1):
            charge = succeeded[self.rng.randrange(len(succeeded))]
            amount = max(charge[7] // self.rng.choice((1, 2, 4)), 1)
            created = charge[10] + timedelta(days=self.rng.randrange(1, 20))
            yield (number, charge[9], charge[1], amount, charge[5],
                   "succeeded" if self.rng.random() < 0.97 else "failed", f"re_b{number}",
                   min(created, self.now), 0, created)


COLUMNS = {
    "accounts": ("id", "name", "stripe_customer_id", "created_at", "version", "stripe_created",
                 "synced_at"),
    "subscriptions": ("id", "account_id", "stripe_customer_id", "status", "stripe_price_id",
                      "quantity", "currency", "trial_end", "cancel_at_period_end",
                      "canceled_at", "ended_at", "stripe_subscription_id", "stripe_created",
                      "version", "synced_at"),
    "subscription_mrr": ("id", "stripe_subscription_id", "stripe_customer_id", "account_id",
                         "stripe_price_id", "currency", "mrr", "discount_ids",
                         "percent_off_bp", "amount_off", "updated_at"),
    "mrr_changes": ("id", "account_id", "stripe_customer_id", "stripe_subscription_id",
                    "stripe_price_id", "currency", "at", "old_mrr", "new_mrr", "kind",
                    "recorded_at"),
    "invoices": ("id", "account_id", "stripe_customer_id", "stripe_subscription_id", "number",
                 "status", "currency", "subtotal", "total", "tax", "amount_due", "amount_paid",
                 "amount_remaining", "attempt_count", "lines", "paid_at", "stripe_invoice_id",
                 "stripe_created", "version", "synced_at"),
    "charges": ("id", "account_id", "stripe_customer_id", "stripe_invoice_id", "status",
                "currency", "amount", "amount_captured", "amount_refunded", "stripe_charge_id",
                "stripe_created", "version", "synced_at"),
    "refunds": ("id", "stripe_charge_id", "account_id", "amount", "currency", "status",
                "stripe_refund_id", "stripe_created", "version", "synced_at"),
}


def _sqlite_value(value):
    if isinstance(value, datetime):
        # As SQLAlchemy's SQLite DateTime stores it (the UTCDateTime type drops the zone).
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(sep=" ", timespec="microseconds")
    return value


def insert(connection, dialect: str, table: str, rows) -> int:
    """Bulk-insert rows (tuples in COLUMNS order); return how many went in."""
    columns = COLUMNS[table]
    count = 0
    if dialect == "postgresql":
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    raw = connection.connection.dbapi_connection
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    batch: list[tuple] = []
    for row in rows:
        batch.append(tuple(_sqlite_value(value) for value in row))
        if len(batch) >= BATCH:
            raw.executemany(sql, batch)
            count += len(batch)
            batch.clear()
    if batch:
        raw.executemany(sql, batch)
        count += len(batch)
    return count


def catalog_rows(currencies=("usd", "eur")) -> tuple[list[tuple], list[tuple]]:
    """Return products and prices rows for the bench plans."""
    now = datetime.now(UTC)
    keys = sorted({plan for plan, _, _ in PLANS})
    products = [(number, key, key.title(), "", "[]", "{}", 0, False, number, now)
                for number, key in enumerate(keys, start=1)]
    prices = []
    for currency in currencies:
        for plan, interval, amount in PLANS:
            prices.append((len(prices) + 1, keys.index(plan) + 1,
                           price_id(currency, plan, interval), currency, amount, interval, 1,
                           "licensed", now))
    return products, prices


COLUMNS["products"] = ("id", "key", "name", "description", "features", "included_usage",
                       "trial_days", "contact_sales", "sort_order", "created_at")
COLUMNS["prices"] = ("id", "product_id", "stripe_price_id", "currency", "unit_amount",
                     "interval", "interval_count", "usage_type", "created_at")
