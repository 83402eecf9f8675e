"""Time the Usage page, its htmx partial and the usage summary API for an account with 1,000,000
events in its billing period, against GET /health of the same app in the same run."""
from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from harness import (
    BENCH_PASSWORD,
    Figure,
    QueryCounter,
    build_app,
    print_table,
    run_main,
    stripe_requests,
    summary_ms,
)
from pages import sign_in

BASELINE = "/health"
PATHS = (BASELINE, "/billing/usage", "/billing/usage/cards", "/api/v1/usage/summary")
METERS = (("api_calls", 0.8), ("storage_gb", 0.1), ("seats", 0.1))
PERIOD_DAYS_ELAPSED = 20
CHUNK = 50_000
# Issue 12's target for the Usage page at 1,000,000 events; the partial and the API are shown.
TARGETS_MS = {"/billing/usage": "< 50"}
# What the last main() measured, for figures().
RESULTS: list[Figure] = []


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="raw events in the current period (default 1,000,000)")
    parser.add_argument("--previous-events", type=int, default=200_000,
                        help="raw events in the 30 days before the period (default 200,000)")
    parser.add_argument("--iterations", type=int, default=100,
                        help="timed GETs of each path (default 100)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed GETs of each path first (default 10)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL; its tables are DROPPED (default: temp SQLite)")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    return parser.parse_args()


def build_customer(app: Flask) -> tuple[str, int]:
    """Subscribe a customer to Pro monthly on a test clock started 20 days ago, through the
    sandbox and its signed webhooks; return (email, account id)."""
    from portal.extensions import db
    from portal.sandbox import deliver_due
    from portal.services import sync
    from portal.services.accounts import register_customer
    from portal.services.catalog_sync import sync_catalog
    from portal.services.stripe_client import stripe_client

    email = "bench-usage@example.com"
    started = int(time.time()) - PERIOD_DAYS_ELAPSED * 86400
    with app.test_request_context("/"):
        sync_catalog()
        stripe = stripe_client()
        user = register_customer(email, BENCH_PASSWORD, "Bench Metered")
        account_id = user.account_id
        clock = stripe.v1.test_helpers.test_clocks.create(params={"frozen_time": started})
        customer = stripe.v1.customers.create(params={
            "email": email, "test_clock": clock.id, "metadata": {"account_id": str(account_id)}})
        sync.customer(customer)
        db.session.commit()
        method = stripe.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
        stripe.v1.customers.update(customer.id, params={
            "invoice_settings": {"default_payment_method": method.id}})
        price = stripe.v1.prices.list(params={"lookup_keys": ["pro_month"]}).data[0].id
        stripe.v1.subscriptions.create(params={"customer": customer.id,
                                               "items": [{"price": price}]})
        db.session.remove()
    sandbox = app.extensions["stripe_sandbox"]
    while deliver_due(sandbox):
        pass
    return email, account_id


def seed_usage(app: Flask, account_id: int, events: int, previous: int,
               rng: random.Random) -> tuple[datetime, int, int]:
    """Write raw events and their hourly aggregates straight into the database, in bulk.

    `events` fall between the period start and now, `previous` in the 30 days before it.
    Returns (period start, raw rows, hourly rows).
    """
    from portal.extensions import db
    from portal.models import Subscription, UsageEvent, UsageHourly

    with app.app_context():
        start = db.session.scalar(db.select(Subscription.current_period_start).where(
            Subscription.account_id == account_id))
        dialect = db.engine.dialect.name
        db.session.remove()
        raw = db.engine.raw_connection()
    now = datetime.now(UTC) - timedelta(minutes=1)
    spans = ((start, now, events), (start - timedelta(days=30), start, previous))
    names = [name for name, _share in METERS]
    shares = [share for _name, share in METERS]
    if dialect == "sqlite":
        def stamp(moment: datetime) -> str:
            # SQLAlchemy's own SQLite storage format, so comparisons by string hold.
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    else:
        def stamp(moment: datetime) -> str:
            return moment.isoformat()
    received = stamp(now)
    hourly: dict[tuple[str, datetime], list] = {}
    serial = 0
    cursor = raw.cursor()
    event_columns = ("account_id", "meter", "quantity", "timestamp", "identifier", "metadata",
                     "received_at")
    for first, last, count in spans:
        seconds = int((last - first).total_seconds())
        done = 0
        while done < count:
            rows = []
            for _ in range(min(CHUNK, count - done)):
                serial += 1
                moment = first + timedelta(seconds=rng.randrange(seconds))
                meter = rng.choices(names, shares)[0]
                quantity = rng.randint(1, 20) if meter == "api_calls" else rng.randint(1, 9)
                rows.append((account_id, meter, quantity, stamp(moment), f"seed-{serial}", "{}",
                             received))
                hour = moment.replace(minute=0, second=0, microsecond=0)
                total = hourly.get((meter, hour))
                if total is None:
                    hourly[(meter, hour)] = [quantity, 1, quantity, moment]
                else:
                    total[0] += quantity
                    total[1] += 1
                    if moment >= total[3]:
                        total[2], total[3] = quantity, moment
            _write(cursor, dialect, UsageEvent.__tablename__, event_columns, rows)
            done += len(rows)
    aggregate_rows = [(account_id, meter, stamp(hour), quantity, count, last_quantity,
                       stamp(last_at))
                      for (meter, hour), (quantity, count, last_quantity, last_at)
                      in sorted(hourly.items())]
    _write(cursor, dialect, UsageHourly.__tablename__,
           ("account_id", "meter", "hour", "quantity", "event_count", "last_quantity",
            "last_at"), aggregate_rows)
    raw.commit()
    if dialect == "postgresql":
        cursor.execute("ANALYZE")
        raw.commit()
    raw.close()
    return start, serial, len(aggregate_rows)


def _write(cursor, dialect: str, table: str, columns: tuple[str, ...], rows: list) -> None:
    """Insert rows in bulk: COPY on PostgreSQL, executemany on SQLite."""
    names = ", ".join(f'"{column}"' for column in columns)
    if dialect == "postgresql":
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(str(value) for value in row) + "\n")
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        return
    marks = ", ".join("?" for _ in columns)
    cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def main() -> int:
    """Build the metered customer, time the paths against the baseline, print the figures."""
    args = parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        app = build_app(args.database_url, Path(tmp))
        # The bench measures the summary endpoint, not the per-key rate limit.
        app.config["USAGE_API_RATE_LIMIT"] = "1000000 per minute"
        email, account_id = build_customer(app)
        seeding = time.perf_counter()
        start, raw_rows, hourly_rows = seed_usage(app, account_id, args.events,
                                                  args.previous_events, rng)
        seeding = time.perf_counter() - seeding
        from portal.extensions import db
        from portal.models import Account
        from portal.services.api_keys import create_api_key

        with app.app_context():
            queries = QueryCounter(db.engine)
            dialect = db.engine.dialect.name
            _key, secret = create_api_key(db.session.get(Account, account_id), "bench",
                                          live=False, actor=None)
        client = app.test_client()
        sign_in(client, email)
        headers = {"/api/v1/usage/summary": {"Authorization": f"Bearer {secret}"},
                   "/billing/usage/cards": {"HX-Request": "true"}}

        samples: dict[str, list[float]] = {path: [] for path in PATHS}
        statements = dict.fromkeys(PATHS, 0)
        problems: list[str] = []
        used = None
        stripe_before = stripe_requests(app)
        for round_number in range(args.warmup + args.iterations):
            order = list(PATHS)
            rng.shuffle(order)
            for path in order:
                before = queries.count
                with queries.counting():
                    began = time.perf_counter()
                    response = client.get(path, headers=headers.get(path, {}))
                    elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    problems.append(f"{path} answered {response.status_code}")
                elif path == "/api/v1/usage/summary" and used is None:
                    used = {meter["meter"]: meter["used"]
                            for meter in response.get_json()["meters"]}
                response.close()
                if round_number >= args.warmup:
                    samples[path].append(elapsed)
                    statements[path] += queries.count - before
        stripe_during = stripe_requests(app) - stripe_before
        with app.app_context():
            in_period = db.session.scalar(db.text(
                "SELECT count(*) FROM usage_events WHERE account_id = :account AND "
                "timestamp >= :start"), {"account": account_id,
                                         "start": start.strftime("%Y-%m-%d %H:%M:%S.%f")
                                         if dialect == "sqlite" else start})
            db.engine.dispose()

    print(f"database: {dialect}; raw events: {raw_rows:,} ({in_period:,} in the current "
          f"period, which started {PERIOD_DAYS_ELAPSED} days ago); hourly aggregate rows: "
          f"{hourly_rows:,}; seeded in {seeding:.1f} s")
    print(f"summary used: {used}")
    print(f"{args.iterations} timed GETs per path after {args.warmup} warm-up, interleaved")
    base_median, _ = summary_ms(samples[BASELINE])
    rows = []
    for path in PATHS:
        median, p95 = summary_ms(samples[path])
        rows.append([path + (" (baseline)" if path == BASELINE else ""), f"{median:.2f}",
                     f"{p95:.2f}", f"{median / base_median:.1f}x",
                     f"{statements[path] / args.iterations:.1f}"])
        if path != BASELINE:
            RESULTS.append(Figure(f"GET {path} at {args.events:,} events, "
                                  f"median ({dialect})", round(median, 2), "ms",
                                  # The target is stated at 1,000,000 events.
                                  TARGETS_MS.get(path, "") if args.events >= 1_000_000 else "",
                                  f"{median / base_median:.1f}x the /health median "
                                  f"({base_median:.2f} ms) of the same run"))
            RESULTS.append(Figure(f"GET {path} SQL statements per request ({dialect})",
                                  round(statements[path] / args.iterations, 1), "statements"))
    RESULTS.append(Figure(f"Stripe API requests during usage GETs ({dialect})", stripe_during,
                          "requests", "== 0"))
    print()
    print_table(["GET", "median ms", "p95 ms", "vs base", "SQL/request"], rows)
    print(f"\nStripe API requests during the GET loop: {stripe_during} (must be 0)")
    if problems:
        print(f"{len(problems)} unexpected answers, first: {problems[0]}", file=sys.stderr)
    return 1 if problems or stripe_during else 0


def figures(argv: list[str]) -> list[Figure]:
    """Run with `argv` and return the figures for bench/REPORT.md (the report contract)."""
    RESULTS.clear()
    code = run_main(main, "usage_page.py", argv)
    if code:
        raise RuntimeError(f"usage_page.py {' '.join(argv)} exited {code}")
    return list(RESULTS)


# The full 1,000,000 events (seeding takes a minute or two), fewer timed rounds than by hand.
REPORT_RUNS = [["--iterations", "40", "--warmup", "5"]]


if __name__ == "__main__":
    sys.exit(main())
