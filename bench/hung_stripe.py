"""Issue 14's reproduction: a Stripe that accepts connections and never answers.

Starts `gunicorn -w 2 'app:app'` (with gunicorn.conf.py: 30 s worker timeout, threads) on
SQLite, configured with Stripe keys whose API base is a local socket server that reads each
request and never answers. Two signed-in customers POST /billing/subscription/cancel at the
same time while a third client polls GET /health every 100 ms. Prints how long each cancel
took and what it answered, and /health's latency while they hung against its latency before.

    .venv/bin/python bench/hung_stripe.py [--deadline 20] [--workers 2]

Bounded: two POSTs and at most (deadline + 10) seconds of /health polls, on 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from flask_migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import Figure, run_main  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Account, Subscription, User  # noqa: E402
from portal.services.accounts import hash_password  # noqa: E402

PASSWORD = "a long bench password 1"
# gunicorn.conf.py's worker timeout: a cancel must answer before it, or the worker is killed
# and the customer gets a 500 (issue 14: the request deadline stays below it).
WORKER_TIMEOUT = 30
# What the last main() measured, for figures().
RESULTS: list = []
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class HangingServer:
    """Accept connections, read the request, never answer."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(env: dict, customers: int) -> list[str]:
    """Migrate and create customers with a renewing subscription in the mirror."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create_app()
        emails = []
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            start = datetime.now(UTC) - timedelta(days=3)
            for number in range(customers):
                account = Account(name=f"Bench {number}", stripe_customer_id=f"cus_bench{number}")
                email = f"bench{number}@example.com"
                db.session.add(account)
                db.session.flush()
                db.session.add(User(email=email, password_hash=hash_password(PASSWORD),
                                    account_id=account.id))
                db.session.add(Subscription(
                    account_id=account.id, status="active",
                    stripe_subscription_id=f"sub_bench{number}",
                    stripe_customer_id=account.stripe_customer_id,
                    stripe_price_id="price_bench", stripe_item_id=f"si_bench{number}",
                    currency="usd", current_period_start=start,
                    current_period_end=start + timedelta(days=30), stripe_created=start))
                emails.append(email)
            db.session.commit()
            db.engine.dispose()
        return emails
    finally:
        os.environ.clear()
        os.environ.update(saved)


def signed_in(base: str, email: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    token = CSRF.search(session.get(f"{base}/auth/login", timeout=10).text).group(1)
    answer = session.post(f"{base}/auth/login", timeout=10, allow_redirects=False,
                          data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302, answer.text[:300]
    page = session.get(f"{base}/billing/subscription/cancel", timeout=10).text
    return session, CSRF.search(page).group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    hanging = HangingServer()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="hung-stripe-") as folder:
        env = {
            "INSTANCE_PATH": folder, "DATABASE_URL": f"sqlite:///{folder}/portal.db",
            "PORTAL_ENV": "development", "PORTAL_BASE_URL": base, "LOG_FORMAT": "json",
            "STRIPE_SECRET_KEY": "sk_test_hung", "STRIPE_PUBLISHABLE_KEY": "pk_test_hung",
            "STRIPE_WEBHOOK_SECRET": "whsec_hung",
            "STRIPE_API_BASE": f"http://127.0.0.1:{hanging.port}",
            "STRIPE_REQUEST_DEADLINE": str(args.deadline),
        }
        emails = seed(env, 2)
        server_env = {key: value for key, value in os.environ.items()
                      if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_"))}
        server_env.update(env)
        log = open(Path(folder) / "gunicorn.log", "w")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-w", str(args.workers), "-b",
             f"127.0.0.1:{port}", "app:app"], cwd=ROOT, env=server_env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            until = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > until or server.poll() is not None:
                    raise SystemExit((Path(folder) / "gunicorn.log").read_text())
                time.sleep(0.2)
            before = []
            for _ in range(30):
                started = time.perf_counter()
                requests.get(f"{base}/health", timeout=5)
                before.append(time.perf_counter() - started)
            sessions = [signed_in(base, email) for email in emails]
            results: list[tuple[int, float, str]] = []

            def cancel(session: requests.Session, token: str) -> None:
                started = time.perf_counter()
                answer = session.post(f"{base}/billing/subscription/cancel", timeout=120,
                                      data={"csrf_token": token, "feedback": "",
                                            "comment": ""})
                message = re.search(r"Stripe, our payment provider, [^.]*", answer.text)
                results.append((answer.status_code, time.perf_counter() - started,
                                message.group(0) if message else answer.text[:80]))

            posts = [threading.Thread(target=cancel, args=pair) for pair in sessions]
            for thread in posts:
                thread.start()
            time.sleep(0.5)
            during, failures = [], 0
            while any(thread.is_alive() for thread in posts):
                started = time.perf_counter()
                try:
                    ok = requests.get(f"{base}/health", timeout=args.deadline + 10).ok
                except requests.RequestException:
                    ok = False
                during.append(time.perf_counter() - started)
                failures += 0 if ok else 1
                time.sleep(0.1)
            for thread in posts:
                thread.join()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    print(f"gunicorn -w {args.workers} (gunicorn.conf.py), STRIPE_REQUEST_DEADLINE={args.deadline}")
    for status, seconds, message in results:
        print(f"  POST /billing/subscription/cancel: {status} after {seconds:.1f} s: {message}")
    print(f"  GET /health before: median {statistics.median(before) * 1000:.1f} ms")
    if during:
        print(f"  GET /health while both hung: {len(during)} probes, {failures} failed, "
              f"median {statistics.median(during) * 1000:.1f} ms, "
              f"max {max(during) * 1000:.1f} ms")
    record(args, results, before, during, failures)


def record(args: argparse.Namespace, results: list[tuple[int, float, str]], before: list[float],
           during: list[float], failures: int) -> None:
    """Keep the run's figures for figures(): the cancels' answers and /health meanwhile."""
    setting = f"STRIPE_REQUEST_DEADLINE={args.deadline:g} s, gunicorn -w {args.workers}"
    if not results:
        return
    slowest = max(seconds for _status, seconds, _message in results)
    RESULTS.append(Figure("Slowest cancel answer while Stripe hangs", round(slowest, 2), "s",
                          f"< {WORKER_TIMEOUT}", f"{setting}; gunicorn's worker timeout is "
                          f"{WORKER_TIMEOUT} s; statuses "
                          + ", ".join(str(status) for status, _s, _m in results)))
    clear = sum(1 for _status, _seconds, message in results
                if message.startswith("Stripe, our payment provider, "))
    RESULTS.append(Figure("Cancels answered with the clear Stripe message", clear, "answers",
                          f"== {len(results)}", f"{len(results)} concurrent cancels; {setting}"))
    before_ms = statistics.median(before) * 1000
    RESULTS.append(Figure("GET /health probes failed while Stripe hangs", failures, "probes",
                          "== 0", f"{len(during)} probes every 100 ms while the cancels hung"))
    if during:
        RESULTS.append(Figure("GET /health median while Stripe hangs",
                              round(statistics.median(during) * 1000, 2), "ms", "",
                              f"{statistics.median(during) * 1000 / before_ms:.1f}x the "
                              f"/health median before ({before_ms:.2f} ms) of the same run"))
        RESULTS.append(Figure("GET /health slowest while Stripe hangs",
                              round(max(during) * 1000, 2), "ms", "",
                              f"/health median before: {before_ms:.2f} ms, same run"))


def figures(argv: list[str]) -> list[Figure]:
    """Run with `argv` and return the figures for bench/REPORT.md (the report contract)."""
    RESULTS.clear()
    run_main(main, "hung_stripe.py", argv)
    if not RESULTS:
        raise RuntimeError(f"hung_stripe.py {' '.join(argv)}: no cancel answered")
    return list(RESULTS)


if __name__ == "__main__":
    main()
