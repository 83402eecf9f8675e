"""Revenue figures of a hand-made book: MRR changes written by the sync path, then reports.

The book (tests/revenue_book.py) and every figure below are worked out by hand:

USD prices: Starter 19.00/month or 190.00/year, Pro 49.00/month or 490.00/year.
  MRR of a yearly price = amount / 12, rounded half up to the cent:
  49000 / 12 = 4083.33 -> 4083;  19000 / 12 = 1583.33 -> 1583.
  Pro monthly with 20% off: 4900 * 0.8 = 3920.
EUR prices: 30.00/month (3000) and 300.00/year (30000 / 12 = 2500).

usd  Jan  A new business +1900, B new business +4083, C new business +3920 -> MRR 9903
     Feb  A expansion +3000 (1900 -> 4900), C churn -3920              -> MRR 8983
     Mar  B contraction -2500 (4083 -> 1583)                           -> MRR 6483
     Apr  C reactivation +1900                                         -> MRR 8383, ARR 100596
eur  Jan  D new business +3000                                         -> MRR 3000
     Mar  D expansion +2500 (a second, yearly subscription)            -> MRR 5500
     Apr  D contraction -3000 (one of two subscriptions canceled)      -> MRR 2500, ARR 30000
"""
from __future__ import annotations

from portal.extensions import db
from portal.models import MrrChange
from tests.revenue_book import build_book

BOOK_MOVEMENTS = [
    # (currency, day, customer, old MRR, new MRR, kind), all figures by hand (see above)
    ("eur", "2026-01-08", "D", 0, 3000, "new_business"),
    ("eur", "2026-03-05", "D", 0, 2500, "expansion"),
    ("eur", "2026-04-20", "D", 3000, 0, "contraction"),
    ("usd", "2026-01-05", "A", 0, 1900, "new_business"),
    ("usd", "2026-01-12", "B", 0, 4083, "new_business"),
    ("usd", "2026-01-20", "C", 0, 3920, "new_business"),
    ("usd", "2026-02-10", "A", 1900, 4900, "expansion"),
    ("usd", "2026-02-15", "C", 3920, 0, "churn"),
    ("usd", "2026-03-03", "B", 4083, 1583, "contraction"),
    ("usd", "2026-04-06", "C", 0, 1900, "reactivation"),
]


def test_sync_writes_each_mrr_change_of_the_book_classified(app, stripe_api, deliver_webhooks):
    customers = build_book(stripe_api, deliver_webhooks)
    names = {customer.customer_id: name for name, customer in customers.items()}
    rows = db.session.scalars(db.select(MrrChange).order_by(MrrChange.currency, MrrChange.at))
    written = [(row.currency, row.at.date().isoformat(), names[row.stripe_customer_id],
                row.old_mrr, row.new_mrr, row.kind) for row in rows]
    assert written == BOOK_MOVEMENTS
    # Every change belongs to the portal account of its customer.
    accounts = {row.stripe_customer_id: row.account_id
                for row in db.session.scalars(db.select(MrrChange))}
    assert accounts == {c.customer_id: c.account.id for c in customers.values()}
