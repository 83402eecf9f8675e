"""Time Stripe webhook intake and processing against a rejected-signature baseline."""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from flask import Flask
from harness import (
    BENCH_PASSWORD,
    QueryCounter,
    build_app,
    capture_deliveries,
    print_table,
    stripe_requests,
    summary_ms,
)

WEBHOOK_PATH = "/webhooks/stripe"
CARDS = ("pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_discover")


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lifecycles", type=int, default=20,
                        help="subscription lifecycles whose webhooks are timed (default 20)")
    parser.add_argument("--warmup-lifecycles", type=int, default=1,
                        help="lifecycles whose webhooks are posted untimed first (default 1)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL; its tables are DROPPED (default: temp SQLite)")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    parser.add_argument("--stripe-latency-ms", type=float, default=0.0,
                        help="add this delay to each Stripe API call made while timing, as a "
                             "stand-in for the network to real Stripe (default 0)")
    parser.add_argument("--by-type", action="store_true",
                        help="also print new-event figures per event type")
    parser.add_argument("--served", action="store_true",
                        help="run against gunicorn -w 2 with Stripe behind a latency proxy, "
                             "as ratios to GET /health, plus a burst (see bench/README.md)")
    parser.add_argument("--burst-lifecycles", type=int, default=40,
                        help="--served: lifecycles whose events make the burst (default 40)")
    parser.add_argument("--burst-latency-ms", type=float, default=100.0,
                        help="--served: delay added to every Stripe call during the burst "
                             "(default 100)")
    parser.add_argument("--redis-url", default=None,
                        help="--served: also run with RQ and 2 workers on this Redis "
                             "(its database is FLUSHED)")
    return parser.parse_args()


def create_prices(stripe) -> tuple[str, str]:
    """Create one product with a monthly and a yearly price; return their ids."""
    product = stripe.v1.products.create(params={"name": "Bench Pro"})
    monthly = stripe.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 4900,
        "recurring": {"interval": "month"}})
    yearly = stripe.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 49000,
        "recurring": {"interval": "year"}})
    return monthly.id, yearly.id


def run_lifecycle(stripe, number: int, prices: tuple[str, str], rng: random.Random) -> None:
    """Register a customer; attach a card, subscribe, change plan, refund, cancel and resume."""
    from portal.services.accounts import register_customer
    from portal.services.customers import ensure_stripe_customer

    user = register_customer(f"bench{number}@example.com", BENCH_PASSWORD, f"Bench {number}")
    customer_id = ensure_stripe_customer(user.account)
    monthly, yearly = prices
    card = stripe.v1.payment_methods.attach(rng.choice(CARDS), params={"customer": customer_id})
    stripe.v1.customers.update(customer_id, params={
        "invoice_settings": {"default_payment_method": card.id}})
    subscription = stripe.v1.subscriptions.create(params={
        "customer": customer_id, "items": [{"price": monthly}]})
    item_id = subscription["items"].data[0].id
    stripe.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item_id, "price": yearly}], "proration_behavior": "always_invoice"})
    charges = stripe.v1.charges.list(params={"customer": customer_id}).data
    stripe.v1.refunds.create(params={"charge": charges[0].id,
                                     "amount": rng.choice((100, 500, 1000))})
    stripe.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    stripe.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": False})


def make_traffic(app: Flask, first: int, count: int, prices: tuple[str, str],
                 rng: random.Random) -> list[tuple[dict, bytes]]:
    """Run `count` lifecycles in the sandbox and return the webhook deliveries they caused."""
    from portal.extensions import db
    from portal.services.stripe_client import stripe_client

    with app.test_request_context("/"):
        stripe = stripe_client()
        for number in range(first, first + count):
            run_lifecycle(stripe, number, prices, rng)
        db.session.remove()
    return capture_deliveries(app)


def bad_signature(headers: dict) -> dict:
    """Return the headers with the v1 signature replaced by one of the same length."""
    parts = []
    for part in headers["Stripe-Signature"].split(","):
        key, _, value = part.partition("=")
        parts.append(f"{key}={'0' * len(value)}" if key == "v1" else part)
    return {**headers, "Stripe-Signature": ",".join(parts)}


def post(client, headers: dict, body: bytes) -> tuple[float, int, dict]:
    """POST one delivery; return (seconds, status, JSON answer)."""
    start = time.perf_counter()
    response = client.post(WEBHOOK_PATH, data=body, headers=headers)
    elapsed = time.perf_counter() - start
    try:
        return elapsed, response.status_code, response.get_json(silent=True) or {}
    finally:
        response.close()


def add_latency(app: Flask, seconds: float) -> None:
    """Make every Stripe API request of the app's in-process transport take `seconds` longer."""
    transport = app.extensions["stripe_http_client"]
    send = transport.request

    def delayed(*args, **kwargs):
        time.sleep(seconds)
        return send(*args, **kwargs)

    transport.request = delayed


def served_traffic_maker(seed: int):
    """Return make(app, first, count): lifecycles run in-process, their deliveries captured."""
    from portal.services.stripe_client import stripe_client

    rng = random.Random(seed)
    prices: dict[int, tuple[str, str]] = {}

    def make(app: Flask, first: int, count: int) -> list[tuple[dict, bytes]]:
        if id(app) not in prices:
            with app.test_request_context("/"):
                prices[id(app)] = create_prices(stripe_client())
        return make_traffic(app, first, count, prices[id(app)], rng)

    return make


def main() -> int:
    """Build the traffic, time it against the baseline and print the figures."""
    args = parse_args()
    if args.served:
        from webhooks_served import main_served

        return main_served(args, served_traffic_maker(args.seed))
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        app = build_app(args.database_url, Path(tmp))
        from portal.extensions import db
        from portal.models import WebhookEvent
        from portal.services.stripe_client import stripe_client

        with app.test_request_context("/"):
            prices = create_prices(stripe_client())
            queries = QueryCounter(db.engine)
        client = app.test_client()

        build_start = time.perf_counter()
        warmup = make_traffic(app, 0, args.warmup_lifecycles, prices, rng)
        for headers, body in warmup:
            post(client, bad_signature(headers), body)
            post(client, headers, body)
        deliveries = make_traffic(app, args.warmup_lifecycles, args.lifecycles, prices, rng)
        build_seconds = time.perf_counter() - build_start
        types = Counter(json.loads(body)["type"] for _headers, body in deliveries)
        if args.stripe_latency_ms:
            add_latency(app, args.stripe_latency_ms / 1000)

        baseline: list[float] = []
        fresh: list[float] = []
        duplicate: list[float] = []
        problems: list[str] = []
        fresh_queries = duplicate_queries = baseline_queries = 0
        per_type: dict[str, list[tuple[float, int, int]]] = {}
        stripe_before = stripe_requests(app)
        # Interleaved with the baseline so machine noise falls on both alike.
        for headers, body in deliveries:
            with queries.counting():
                seconds, status, _answer = post(client, bad_signature(headers), body)
            baseline.append(seconds)
            if status != 400:
                problems.append(f"bad signature answered {status}")
            before, calls_before = queries.count, stripe_requests(app)
            with queries.counting():
                seconds, status, answer = post(client, headers, body)
            fresh_queries += queries.count - before
            fresh.append(seconds)
            per_type.setdefault(json.loads(body)["type"], []).append(
                (seconds, queries.count - before, stripe_requests(app) - calls_before))
            if status != 200 or answer.get("duplicate"):
                problems.append(f"event answered {status} {answer}")
        stripe_fresh = stripe_requests(app) - stripe_before
        baseline_queries = queries.count - fresh_queries

        stripe_before = stripe_requests(app)
        for headers, body in deliveries:
            seconds, status, _answer = post(client, bad_signature(headers), body)
            baseline.append(seconds)
            before = queries.count
            with queries.counting():
                seconds, status, answer = post(client, headers, body)
            duplicate_queries += queries.count - before
            duplicate.append(seconds)
            if status != 200 or not answer.get("duplicate"):
                problems.append(f"redelivery answered {status} {answer}")
        stripe_duplicate = stripe_requests(app) - stripe_before

        with app.app_context():
            outcomes = Counter(db.session.scalars(db.select(WebhookEvent.status)))
            dialect = db.engine.dialect.name
            db.engine.dispose()

    count = len(deliveries)
    print(f"database: {dialect}; lifecycles: {args.lifecycles} (+{args.warmup_lifecycles} "
          f"warm-up); events: {count}; traffic built in {build_seconds:.1f} s; "
          f"added Stripe latency: {args.stripe_latency_ms:g} ms")
    print("event types: " + ", ".join(f"{name} {n}" for name, n in sorted(types.items())))
    print("stored events by status: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    base_median, _ = summary_ms(baseline)
    rows = []
    for label, samples, sql, calls in (
        ("bad signature (baseline)", baseline, baseline_queries, 0),
        ("new event: store+process", fresh, fresh_queries, stripe_fresh),
        ("duplicate redelivery", duplicate, duplicate_queries, stripe_duplicate),
    ):
        median, p95 = summary_ms(samples)
        total = sum(samples) / (2 if samples is baseline else 1)
        rows.append([label, str(count), f"{total:.2f}", f"{count / total:.0f}",
                     f"{median:.2f}", f"{p95:.2f}", f"{median / base_median:.1f}x",
                     f"{sql / count:.1f}", f"{calls / count:.2f}"])
    print()
    print_table(["POST /webhooks/stripe", "events", "total s", "events/s", "median ms",
                 "p95 ms", "vs base", "SQL/event", "Stripe calls/event"], rows)
    if args.by_type:
        print()
        type_rows = []
        for name, figures in sorted(per_type.items()):
            median, p95 = summary_ms([seconds for seconds, _sql, _calls in figures])
            type_rows.append([name, str(len(figures)), f"{median:.2f}", f"{p95:.2f}",
                              f"{sum(sql for _s, sql, _c in figures) / len(figures):.1f}",
                              f"{sum(calls for _s, _q, calls in figures) / len(figures):.2f}"])
        print_table(["new event type", "events", "median ms", "p95 ms", "SQL/event",
                     "Stripe calls/event"], type_rows)
    if problems:
        print(f"\n{len(problems)} unexpected answers, first: {problems[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


# The report contract (bench/README.md): figures(argv) runs main() and reads back its table.
# The served run holds the targets (ratios to GET /health of the same server, a burst
# at +100 ms Stripe latency), in the default configuration and with RQ when the report has
# Redis; the in-process runs show where the time goes, against the bad-signature route.
REPORT_RUNS = [["--served", "--lifecycles", "10"], ["--lifecycles", "10"],
               ["--lifecycles", "10", "--stripe-latency-ms", "100"]]


def figures(argv: list[str]) -> list:
    """Run with `argv`, echo what main() prints, and return its table as report figures."""
    import contextlib
    import io

    from harness import Figure, run_main

    if "--served" in argv:
        import os

        import webhooks_served

        redis_url = os.environ.get("BENCH_REDIS_URL")
        if redis_url and "--redis-url" not in argv:
            argv = [*argv, "--redis-url", redis_url]
        webhooks_served.RESULTS.clear()
        code = run_main(main, "webhooks.py", argv)
        if code:
            raise RuntimeError(f"webhooks.py {' '.join(argv)} exited {code}")
        return list(webhooks_served.RESULTS)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = run_main(main, "webhooks.py", argv)
    text = printed.getvalue()
    print(text, end="")
    if code:
        raise RuntimeError(f"webhooks.py {' '.join(argv)} exited {code}")
    latency = f", +{argv[argv.index('--stripe-latency-ms') + 1]} ms Stripe latency" if (
        "--stripe-latency-ms" in argv) else ""
    found = []
    lines = text.splitlines()
    for number, line in enumerate(lines[:-1]):
        if not (line.startswith("POST /webhooks/stripe") and lines[number + 1].startswith("-")):
            continue
        headers = [cell.strip() for cell in line.split("  ") if cell.strip()]
        for row in lines[number + 2:]:
            cells = [cell.strip() for cell in row.split("  ") if cell.strip()]
            if len(cells) != len(headers):
                break
            record = dict(zip(headers, cells, strict=True))
            label = record[headers[0]]
            if "baseline" in label:
                continue
            where = f" (in process, one at a time{latency})"
            if "vs base" in record:
                slower = float(record["vs base"].rstrip("x"))
                found.append(Figure(f"webhooks {label}: speed vs bad-signature route{where}",
                                    round(1 / slower, 2), "x", "",
                                    "median of the baseline over median of this path"))
            if "events/s" in record:
                found.append(Figure(f"webhooks {label}: throughput{where}",
                                    float(record["events/s"]), "events/s"))
            if "Stripe calls/event" in record:
                found.append(Figure(f"webhooks {label}: Stripe calls per event{where}",
                                    float(record["Stripe calls/event"]), "calls"))
    return found
