"""Time the customer's billing pages against GET /health: in process, or over HTTP (gunicorn).

The ratio printed is the page's speed as a fraction of /health's (median of /health over
median of the page in process; requests/s of the page over requests/s of /health over
HTTP), as the issue measures it: 0.5x means a page costs twice what /health does.
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
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

BASELINE = "/health"
PAGES = ("/billing/", "/billing/plans", "/billing/invoices", "/billing/payment-methods")
# Pages the issue holds to at least half the speed of /health.
TARGET_PAGES = ("/billing/", "/billing/plans", "/billing/invoices")
TARGET = ">= 0.5"
ROOT = Path(__file__).resolve().parent.parent
# What the last main() measured, for figures().
RESULTS: list[Figure] = []
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
    parser.add_argument("--http", action="store_true",
                        help="serve with gunicorn and measure requests/s over HTTP")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (--http)")
    parser.add_argument("--clients", type=int, default=4,
                        help="concurrent clients (--http, default 4)")
    parser.add_argument("--burst", type=int, default=50,
                        help="requests per page per round (--http, default 50)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="timed rounds, each page once per round (--http, default 6)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"),
                        help="Redis for the workers' shared rate limits (--http with -w > 1)")
    args = parser.parse_args()
    if args.http and args.workers > 1 and not args.redis_url:
        parser.error("several gunicorn workers need shared rate limits: give --redis-url")
    return args


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
    RESULTS.clear()
    if args.http:
        return main_http(args)
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
        ratio = base_median / median
        rows.append([path + (" (baseline)" if path == BASELINE else ""), f"{median:.2f}",
                     f"{p95:.2f}", f"{ratio:.2f}x",
                     f"{statements[path] / args.iterations:.1f}"])
        if path != BASELINE:
            RESULTS.append(Figure(f"GET {path} speed vs /health, in process ({dialect})",
                                  round(ratio, 2), "x",
                                  TARGET if path in TARGET_PAGES else "",
                                  "median /health ms over median page ms, test client"))
            RESULTS.append(Figure(f"GET {path} SQL statements per request ({dialect})",
                                  round(statements[path] / args.iterations, 1), "statements"))
    RESULTS.append(Figure(f"Stripe API requests during page GETs ({dialect})", stripe_during,
                          "requests", "== 0"))
    print()
    print_table(["GET", "median ms", "p95 ms", "x of /health", "SQL/request"], rows)
    print(f"\nStripe API requests during the GET loop: {stripe_during} (must be 0)")
    if problems:
        print(f"{len(problems)} unexpected answers, first: {problems[0]}", file=sys.stderr)
    return 1 if problems or stripe_during else 0


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HttpSession:
    """A signed-in browser stand-in over plain HTTP: one new connection per request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        """Send one request with the session's cookies; keep the cookies the answer sets."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        connection.close()
        return response.status, data

    def sign_in(self, email: str, password: str) -> None:
        """Sign in through the login form (CSRF token included)."""
        _status, page = self.request("GET", "/auth/login")
        token = CSRF_INPUT.search(page.decode()).group(1)
        form = (f"email={email.replace('@', '%40')}&password={password.replace(' ', '+')}"
                f"&csrf_token={token}").encode()
        status, _ = self.request("POST", "/auth/login", form,
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302:
            raise RuntimeError(f"sign-in over HTTP answered {status}")


def serve(env: dict, workers: int, port: int, log_path: Path) -> subprocess.Popen:
    """Start gunicorn on 127.0.0.1:port and wait until /health answers."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = log_path.open("w")
    server = subprocess.Popen([str(gunicorn), "-w", str(workers), "-b", f"127.0.0.1:{port}",
                               "app:app"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if HttpSession(port).request("GET", "/health")[0] == 200:
                return server
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            raise RuntimeError(f"gunicorn did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)


def burst(session: HttpSession, path: str, count: int, clients: int,
          problems: list[str]) -> float:
    """GET `path` `count` times from `clients` threads at once; return the wall seconds."""
    left = [count]
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            status, _ = session.request("GET", path)
            if status != 200:
                problems.append(f"{path} answered {status}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main_http(args: argparse.Namespace) -> int:
    """Serve the built mirror with gunicorn and compare pages' requests/s with /health's."""
    rng = random.Random(args.seed)
    paths = (BASELINE, *PAGES)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        workdir = Path(tmp)
        app = build_app(args.database_url, workdir)
        email = build_customer(app, args.cards, args.plan_changes, rng)
        rows_behind = mirror_counts(app)
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        port = free_port()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_"))}
        env.update({"INSTANCE_PATH": str(workdir / "instance"), "DATABASE_URL": url,
                    "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
                    "PORTAL_ENV": "development", "MAIL_DELIVERY": "manual",
                    "SANDBOX_DELIVERY": "manual"})
        if args.redis_url:
            env["REDIS_URL"] = args.redis_url
        server = serve(env, args.workers, port, workdir / "gunicorn.log")
        problems: list[str] = []
        wall: dict[str, float] = dict.fromkeys(paths, 0.0)
        try:
            session = HttpSession(port)
            session.sign_in(email, BENCH_PASSWORD)
            for path in paths:  # warm-up: templates compiled, connections opened
                burst(session, path, args.burst // 2, args.clients, problems)
            for _round in range(args.rounds):
                order = list(paths)
                rng.shuffle(order)
                for path in order:
                    wall[path] += burst(session, path, args.burst, args.clients, problems)
        finally:
            server.terminate()
            server.wait(timeout=30)
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    total = args.burst * args.rounds
    print(f"{database}, gunicorn -w {args.workers}, {args.clients} clients, {total} GETs per "
          f"page in {args.rounds} shuffled rounds; mirror rows: " + ", ".join(
              f"{name} {count}" for name, count in rows_behind.items()))
    base_rps = total / wall[BASELINE]
    rows = []
    for path in paths:
        rps = total / wall[path]
        rows.append([path + (" (baseline)" if path == BASELINE else ""), f"{rps:.0f}",
                     f"{rps / base_rps:.2f}x"])
        if path != BASELINE:
            RESULTS.append(Figure(
                f"GET {path} requests/s vs /health, gunicorn -w {args.workers} ({database})",
                round(rps / base_rps, 2), "x", TARGET if path in TARGET_PAGES else "",
                f"/health: {base_rps:.0f} req/s in the same run, {args.clients} clients"))
    print_table(["GET", "requests/s", "x of /health"], rows)
    if problems:
        print(f"{len(problems)} unexpected answers, first: {problems[0]}", file=sys.stderr)
    return 1 if problems else 0


def figures(argv: list[str]) -> list[Figure]:
    """Run with `argv` and return the figures for bench/REPORT.md (the report contract)."""
    code = run_main(main, "pages.py", argv)
    if code:
        raise RuntimeError(f"pages.py {' '.join(argv)} exited {code}")
    return list(RESULTS)


# The report runs the pages in process and over HTTP against gunicorn -w 2.
REPORT_RUNS = [["--iterations", "100"], ["--http"]]


if __name__ == "__main__":
    sys.exit(main())
