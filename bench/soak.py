"""Soak: a mixed load on PostgreSQL against gunicorn with RQ workers for --minutes.

Run: .venv/bin/python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/soak
     --redis-url redis://127.0.0.1:6379/0 [--minutes 10] [--workers 2] [--rq-workers 2]
     [--customers 6] [--seed 1234]
Every table of that database is DROPPED first. All traffic goes to 127.0.0.1 and every loop
ends at the deadline. Prints the 5xx count (target 0), page latency (p95), webhook events
processed and failed, and each gunicorn and RQ worker's memory growth (target < 10%).
See bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import BENCH_PASSWORD, Figure, percentile, prepare_database, print_table, run_main
from pages import PAGES, HttpSession, free_port, serve
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
PLAN_KEYS = ("starter_month", "pro_month", "starter_year", "pro_year")
METERS = ("api_calls", "storage_gb", "seats")
ACCESS_STATUS = re.compile(r'" (\d{3}) ')
RESULTS: list[Figure] = []


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="length of the timed load (default 10)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="PostgreSQL; its tables are DROPPED (default $BENCH_DATABASE_URL)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"),
                        help="Redis for RQ and rate limits (default $BENCH_REDIS_URL)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--rq-workers", type=int, default=2, help="RQ workers (default 2)")
    parser.add_argument("--customers", type=int, default=6, help="customers (default 6)")
    parser.add_argument("--viewers", type=int, default=3,
                        help="threads viewing pages (default 3)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    if not (args.database_url or "").startswith(("postgres://", "postgresql")):
        parser.error("the soak runs on PostgreSQL: give --database-url postgresql://...")
    if not args.redis_url:
        parser.error("the soak runs RQ workers: give --redis-url")
    return args


def rss_kib(pid: int) -> int:
    """Return a process's resident memory in KiB (Linux /proc); 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """Return the ids of a process's direct children."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def driver_app(env: dict):
    """Return an app on the served configuration, for Stripe calls and set-up (this process)."""
    os.environ.update(env)
    from portal import create_app

    return create_app()


def set_up(app, customers: int) -> tuple[list[tuple[str, str]], str]:
    """Create customers with a card and a subscription; return [(email, sub id)], an API key."""
    from portal.extensions import db
    from portal.models import Account
    from portal.services.accounts import register_customer
    from portal.services.api_keys import create_api_key
    from portal.services.customers import ensure_stripe_customer
    from portal.services.stripe_client import stripe_client

    made = []
    with app.test_request_context("/"):
        stripe = stripe_client()
        price = stripe.v1.prices.list(params={"lookup_keys": [PLAN_KEYS[0]]}).data[0].id
        for number in range(customers):
            email = f"soak-{number}@example.com"
            user = register_customer(email, BENCH_PASSWORD, f"Soak Company {number}")
            customer_id = ensure_stripe_customer(user.account)
            card = stripe.v1.payment_methods.attach("pm_card_visa",
                                                    params={"customer": customer_id})
            stripe.v1.customers.update(customer_id, params={
                "invoice_settings": {"default_payment_method": card.id}})
            subscription = stripe.v1.subscriptions.create(params={
                "customer": customer_id, "items": [{"price": price}]})
            made.append((email, subscription.id))
        account = db.session.scalar(db.select(Account).limit(1))
        _key, secret = create_api_key(account, "soak", live=False, actor=None)
        db.session.remove()
    return made, secret


def change_plans(app, subscriptions: list[str], rng: random.Random, deadline: float,
                 counts: Counter, errors: list[str]) -> None:
    """Every 4 to 8 seconds, switch one subscription's plan (billed at once): a webhook burst."""
    from portal.extensions import db
    from portal.services.stripe_client import stripe_client

    with app.test_request_context("/"):
        stripe = stripe_client()
        prices = {key: stripe.v1.prices.list(params={"lookup_keys": [key]}).data[0].id
                  for key in PLAN_KEYS}
        while time.monotonic() < deadline:
            subscription_id = rng.choice(subscriptions)
            try:
                current = stripe.v1.subscriptions.retrieve(subscription_id)
                item = current["items"].data[0]
                choice = rng.choice([key for key, price in prices.items()
                                     if price != item.price.id])
                stripe.v1.subscriptions.update(subscription_id, params={
                    "items": [{"id": item.id, "price": prices[choice]}],
                    "proration_behavior": "always_invoice"})
                counts["plan changes"] += 1
            except Exception as exc:  # noqa: BLE001 - reported, the soak goes on
                errors.append(f"plan change: {exc}")
            db.session.remove()
            time.sleep(rng.uniform(4, 8))


def post_usage(port: int, secret: str, rng: random.Random, deadline: float,
               counts: Counter, statuses: Counter) -> None:
    """Post a batch of 200 usage events every second or two."""
    serial = 0
    session = HttpSession(port)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        events = []
        for _ in range(200):
            serial += 1
            events.append({"meter": rng.choice(METERS), "quantity": rng.randint(1, 20),
                           "timestamp": int((now - timedelta(seconds=rng.randint(0, 3600)))
                                            .timestamp()),
                           "identifier": f"soak-{serial}"})
        status, _ = session.request("POST", "/api/v1/usage",
                                    json.dumps({"events": events}).encode(), headers)
        statuses[status] += 1
        counts["usage events"] += len(events)
        time.sleep(rng.uniform(1, 2))


def view_pages(sessions: list[HttpSession], rng: random.Random, deadline: float,
               latencies: list[float], statuses: Counter) -> None:
    """GET the customer pages of random customers until the deadline."""
    while time.monotonic() < deadline:
        session = rng.choice(sessions)
        path = rng.choice(PAGES)
        start = time.perf_counter()
        status, _ = session.request("GET", path)
        latencies.append(time.perf_counter() - start)
        statuses[status] += 1


def memory(pids: dict[str, int]) -> dict[str, int]:
    """Return each named process's resident memory in KiB."""
    return {name: rss_kib(pid) for name, pid in pids.items()}


def main() -> int:
    """Run the soak and print its figures."""
    args = parse_args()
    RESULTS.clear()
    rng = random.Random(args.seed)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-soak-{os.getpid()}"
    workdir.mkdir(parents=True)
    url = prepare_database(args.database_url, workdir)
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_"))}
    env.update({"INSTANCE_PATH": str(workdir / "instance"), "DATABASE_URL": url,
                "REDIS_URL": args.redis_url, "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
                "PORTAL_ENV": "development", "MAIL_DELIVERY": "manual",
                "USAGE_API_RATE_LIMIT": "1000000 per minute"})
    # Jobs left in this Redis database by an earlier run would name events of another schema.
    Redis.from_url(args.redis_url).flushdb()
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "seed", "--no-demo"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    app = driver_app(env)
    log = (workdir / "gunicorn.log")
    access = workdir / "access.log"
    env_server = {**env, "GUNICORN_CMD_ARGS": f"--access-logfile {access}"}
    server = serve(env_server, args.workers, port, log)
    rq_log = (workdir / "rq.log").open("w")
    rq_workers = [subprocess.Popen([*flask, "billing", "worker"], cwd=ROOT, env=env,
                                   stdout=rq_log, stderr=subprocess.STDOUT)
                  for _ in range(args.rq_workers)]
    statuses: Counter = Counter()
    usage_statuses: Counter = Counter()
    counts: Counter = Counter()
    errors: list[str] = []
    latencies: list[float] = []
    try:
        made, secret = set_up(app, args.customers)
        sessions = []
        for email, _sub in made:
            session = HttpSession(port)
            session.sign_in(email, BENCH_PASSWORD)
            sessions.append(session)
        pids = {f"gunicorn worker {n + 1}": pid
                for n, pid in enumerate(children(server.pid))}
        pids.update({f"rq worker {n + 1}": worker.pid for n, worker in enumerate(rq_workers)})
        total = args.minutes * 60
        # The first tenth of the run (at least 20 s) warms every process up: templates,
        # connection pools, imports. Memory growth is measured from its end.
        warm = max(20.0, total / 10)
        start = time.monotonic()
        deadline = start + total
        threads = [threading.Thread(target=view_pages, args=(
            sessions, random.Random(rng.random()), deadline, latencies, statuses))
            for _ in range(args.viewers)]
        threads.append(threading.Thread(target=post_usage, args=(
            port, secret, random.Random(rng.random()), deadline, counts, usage_statuses)))
        threads.append(threading.Thread(target=change_plans, args=(
            app, [sub for _email, sub in made], random.Random(rng.random()), deadline,
            counts, errors)))
        for thread in threads:
            thread.start()
        time.sleep(min(warm, total))
        after_warmup = memory(pids)
        warm_latencies = len(latencies)
        for thread in threads:
            thread.join()
        at_end = memory(pids)
        events = drain(app, timeout=90)
    finally:
        # An RQ worker's work horse (a forked child) outlives a worker that is killed.
        horses = [pid for worker in rq_workers for pid in children(worker.pid)]
        server.terminate()
        for worker in rq_workers:
            worker.terminate()
        for process in (server, *rq_workers):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        for pid in horses:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        rq_log.close()
    server_statuses = Counter(ACCESS_STATUS.findall(access.read_text())) if access.exists() \
        else Counter()
    shutil.rmtree(workdir, ignore_errors=True)
    five_hundreds = sum(n for code, n in server_statuses.items() if code.startswith("5"))
    timed = latencies[warm_latencies:] or latencies
    p50, p95 = percentile(timed, 0.5) * 1000, percentile(timed, 0.95) * 1000
    print(f"PostgreSQL, gunicorn -w {args.workers}, {args.rq_workers} RQ workers, "
          f"{args.customers} customers, {args.viewers} page viewers, {args.minutes:g} min "
          f"(memory baseline after {warm:.0f} s of warm-up)")
    print(f"requests served: {sum(server_statuses.values())} by status "
          + ", ".join(f"{code} {n}" for code, n in sorted(server_statuses.items())))
    print(f"page views: {len(latencies)} ({dict(statuses)}); usage batches: "
          f"{dict(usage_statuses)}, {counts['usage events']} events; plan changes: "
          f"{counts['plan changes']}; webhook events: {events}")
    print(f"page latency after warm-up: median {p50:.1f} ms, p95 {p95:.1f} ms")
    rows = []
    for name in pids:
        growth = 100 * (at_end[name] - after_warmup[name]) / max(after_warmup[name], 1)
        rows.append([name, f"{after_warmup[name] / 1024:.1f}", f"{at_end[name] / 1024:.1f}",
                     f"{growth:+.1f}%"])
        RESULTS.append(Figure(f"soak: {name} memory growth", round(growth, 1), "%", "< 10",
                              f"RSS {after_warmup[name] / 1024:.0f} -> "
                              f"{at_end[name] / 1024:.0f} MiB after warm-up"))
    print_table(["process", "MiB after warm-up", "MiB at end", "growth"], rows)
    failed = events.get("failed", 0) + events.get("pending", 0)
    RESULTS[:0] = [
        Figure("soak: 5xx answers", five_hundreds, "responses", "== 0",
               f"{sum(server_statuses.values())} requests in {args.minutes:g} min"),
        Figure("soak: page latency p95", round(p95, 1), "ms", "",
               f"median {p50:.1f} ms over {len(timed)} page views after warm-up"),
        Figure("soak: webhook events not processed", failed, "events", "== 0",
               f"{sum(events.values())} events stored"),
    ]
    for problem in errors[:5]:
        print("driver error:", problem, file=sys.stderr)
    return 1 if five_hundreds or errors or failed else 0


def drain(app, timeout: float) -> dict[str, int]:
    """Wait for the sandbox's deliveries and the RQ queue to finish; return events by status."""
    from portal.extensions import db
    from portal.models import WebhookEvent

    deadline = time.monotonic() + timeout
    seen, quiet_since = -1, time.monotonic()
    with app.app_context():
        while True:
            found = dict(Counter(db.session.scalars(db.select(WebhookEvent.status))))
            db.session.remove()
            total = sum(found.values())
            if total != seen:
                seen, quiet_since = total, time.monotonic()
            # Done when nothing is pending and no delivery arrived for five seconds.
            settled = not found.get("pending") and time.monotonic() - quiet_since > 5
            if settled or time.monotonic() > deadline:
                db.engine.dispose()
                return found
            time.sleep(1)


def figures(argv: list[str]) -> list[Figure]:
    """Run with `argv` and return the figures for bench/REPORT.md (the report contract)."""
    code = run_main(main, "soak.py", argv)
    if code and not RESULTS:
        raise RuntimeError(f"soak.py {' '.join(argv)} exited {code}")
    return list(RESULTS)


# The report's soak is short; run `bench/soak.py --minutes 10` for the full one.
REPORT_RUNS = [["--minutes", "10"]]


if __name__ == "__main__":
    sys.exit(main())
