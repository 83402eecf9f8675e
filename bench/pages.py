"""Time server-side rendering of the customer's billing pages against GET /health."""
from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask
from harness import (
    BENCH_PASSWORD,
    QueryCounter,
    build_app,
    print_table,
    stripe_requests,
    summary_ms,
)

BASELINE = "/health"
PAGES = ("/billing/", "/billing/plans", "/billing/payment-methods")
CARDS = ("pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_discover",
         "pm_card_jcb", "pm_card_unionpay", "pm_card_visa_debit", "pm_card_mastercard_debit")
PLAN_KEYS = ("starter_month", "pro_month", "starter_year", "pro_year")
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=200,
                        help="timed GETs of each page (default 200)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="untimed GETs of each page first (default 20)")
    parser.add_argument("--cards", type=int, default=4, choices=range(1, len(CARDS) + 1),
                        metavar=f"1..{len(CARDS)}", help="cards on file (default 4)")
    parser.add_argument("--plan-changes", type=int, default=5,
                        help="plan changes billed at once, one invoice each (default 5)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL; its tables are DROPPED (default: temp SQLite)")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    return parser.parse_args()


def build_customer(app: Flask, cards: int, plan_changes: int, rng: random.Random) -> str:
    """Create a subscribed customer with cards and invoices via webhooks; return its email."""
    from portal.extensions import db
    from portal.sandbox import deliver_due
    from portal.services.accounts import register_customer
    from portal.services.catalog_sync import sync_catalog
    from portal.services.customers import ensure_stripe_customer
    from portal.services.stripe_client import stripe_client

    email = "bench-customer@example.com"
    with app.test_request_context("/"):
        sync_catalog()
        stripe = stripe_client()
        user = register_customer(email, BENCH_PASSWORD, "Bench Company")
        customer_id = ensure_stripe_customer(user.account)
        attached = [stripe.v1.payment_methods.attach(card, params={"customer": customer_id})
                    for card in CARDS[:cards]]
        stripe.v1.customers.update(customer_id, params={
            "invoice_settings": {"default_payment_method": attached[0].id}})
        prices = {key: stripe.v1.prices.list(params={"lookup_keys": [key]}).data[0].id
                  for key in PLAN_KEYS}
        current = PLAN_KEYS[0]
        subscription = stripe.v1.subscriptions.create(params={
            "customer": customer_id, "items": [{"price": prices[current]}]})
        item_id = subscription["items"].data[0].id
        for _change in range(plan_changes):
            current = rng.choice([key for key in PLAN_KEYS if key != current])
            stripe.v1.subscriptions.update(subscription.id, params={
                "items": [{"id": item_id, "price": prices[current]}],
                "proration_behavior": "always_invoice"})
        db.session.remove()
    # Real signed deliveries into the portal's webhook endpoint build the mirror.
    sandbox = app.extensions["stripe_sandbox"]
    while deliver_due(sandbox):
        pass
    return email


def sign_in(client, email: str) -> None:
    """Sign in through the login form."""
    page = client.get("/auth/login").get_data(as_text=True)
    token = CSRF_INPUT.search(page).group(1)
    response = client.post("/auth/login", data={"email": email, "password": BENCH_PASSWORD,
                                                "csrf_token": token})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed with {response.status_code}")


def mirror_counts(app: Flask) -> dict[str, int]:
    """Return how many mirrored rows the page data comes from."""
    from portal.extensions import db
    from portal.models import Invoice, PaymentMethod, Subscription

    with app.app_context():
        return {model.__tablename__: db.session.scalar(db.select(db.func.count(model.id)))
                for model in (Subscription, Invoice, PaymentMethod)}


def main() -> int:
    """Build the customer, time the pages against the baseline and print the figures."""
    args = parse_args()
    rng = random.Random(args.seed)
    paths = (BASELINE, *PAGES)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        app = build_app(args.database_url, Path(tmp))
        email = build_customer(app, args.cards, args.plan_changes, rng)
        rows_behind = mirror_counts(app)
        from portal.extensions import db

        with app.app_context():
            queries = QueryCounter(db.engine)
            dialect = db.engine.dialect.name
        client = app.test_client()
        sign_in(client, email)

        samples: dict[str, list[float]] = {path: [] for path in paths}
        statements = dict.fromkeys(paths, 0)
        problems: list[str] = []
        stripe_before = stripe_requests(app)
        for round_number in range(args.warmup + args.iterations):
            order = list(paths)
            # A new order each round, so no page always follows the same neighbour.
            rng.shuffle(order)
            for path in order:
                before = queries.count
                with queries.counting():
                    start = time.perf_counter()
                    response = client.get(path)
                    elapsed = time.perf_counter() - start
                if response.status_code != 200:
                    problems.append(f"{path} answered {response.status_code}")
                response.close()
                if round_number >= args.warmup:
                    samples[path].append(elapsed)
                    statements[path] += queries.count - before
        stripe_during = stripe_requests(app) - stripe_before
        with app.app_context():
            db.engine.dispose()

    print(f"database: {dialect}; mirror rows: " + ", ".join(
        f"{name} {count}" for name, count in rows_behind.items()))
    print(f"{args.iterations} timed GETs per page after {args.warmup} warm-up, interleaved")
    base_median, _ = summary_ms(samples[BASELINE])
    rows = []
    for path in paths:
        median, p95 = summary_ms(samples[path])
        rows.append([path + (" (baseline)" if path == BASELINE else ""), f"{median:.2f}",
                     f"{p95:.2f}", f"{median / base_median:.1f}x",
                     f"{statements[path] / args.iterations:.1f}"])
    print()
    print_table(["GET", "median ms", "p95 ms", "vs base", "SQL/request"], rows)
    print(f"\nStripe API requests during the GET loop: {stripe_during} (must be 0)")
    if problems:
        print(f"{len(problems)} unexpected answers, first: {problems[0]}", file=sys.stderr)
    return 1 if problems or stripe_during else 0


if __name__ == "__main__":
    sys.exit(main())
