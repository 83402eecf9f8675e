"""`webhooks.py --served`: webhooks against gunicorn, beside GET /health of the same server.

Run by bench/webhooks.py; see bench/README.md. Two configurations, each on a fresh server:
the default (events applied by a background thread of the web worker that receives them)
and, with `--redis-url`, RQ (intake stores and queues; two `flask billing worker` processes apply).
"""
from __future__ import annotations

import http.client
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import Figure, build_app, print_table, summary_ms
from served import GUNICORN, LatencyProxy, Processes, free_port, portal_env, wait_http

WEBHOOK_PATH = "/webhooks/stripe"
# What the last run measured, for bench/REPORT.md (webhooks.figures reads it).
RESULTS: list[Figure] = []


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[float, int, bytes]:
    """Send one request on a new connection; return (seconds, status, body)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return time.perf_counter() - start, response.status, data


def event_ids(deliveries) -> list[str]:
    """Return the event ids of the deliveries."""
    return [json.loads(body)["id"] for _headers, body in deliveries]


def wait_processed(app, ids: list[str], seconds: float = 900) -> tuple[float, Counter]:
    """Wait until none of these events is pending; return (when, statuses)."""
    from portal.extensions import db
    from portal.models import WebhookEvent

    wanted = set(ids)
    deadline = time.monotonic() + seconds
    with app.app_context():
        while True:
            statuses = Counter(dict(db.session.execute(
                db.select(WebhookEvent.status, db.func.count())
                .where(WebhookEvent.stripe_event_id.in_(wanted))
                .group_by(WebhookEvent.status)).all()))
            db.session.rollback()
            if sum(statuses.values()) == len(wanted) and not statuses.get("pending"):
                return time.perf_counter(), statuses
            if time.monotonic() > deadline:
                raise RuntimeError(f"events still pending after {seconds} s: {statuses}")
            time.sleep(0.02)


class Run:
    """One served configuration: sandbox, proxy, gunicorn and maybe RQ workers."""

    def __init__(self, app, workdir: Path, database_url: str, redis_url: str | None,
                 make_traffic):
        self.app = app
        self.processes = Processes(workdir)
        self.make_traffic = make_traffic
        self.redis_url = redis_url
        instance = Path(app.instance_path)
        (instance / "config.py").write_text('SANDBOX_DELIVERY = "manual"\n')
        sandbox_port = free_port()
        base_env = portal_env(instance, database_url, {"secret": "", "publishable": ""}, "",
                              "", None)
        for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET",
                     "STRIPE_API_BASE"):
            base_env.pop(name)
        sandbox, log = self.processes.start("sandbox", [
            sys.executable, "-m", "flask", "--app", "app", "sandbox", "serve",
            "--port", str(sandbox_port)], base_env)
        wait_http(f"http://127.0.0.1:{sandbox_port}/v1/balance", sandbox, log)
        self.proxy = LatencyProxy(sandbox_port)
        keys = {"secret": app.config["SANDBOX_SECRET_KEY"],
                "publishable": app.config["SANDBOX_PUBLISHABLE_KEY"]}
        env = portal_env(instance, database_url, keys, app.config["STRIPE_WEBHOOK_SECRET"],
                         f"http://127.0.0.1:{self.proxy.port}", redis_url)
        if redis_url:
            from redis import Redis

            Redis.from_url(redis_url).flushdb()
        self.port = free_port()
        server, log = self.processes.start("gunicorn", [
            str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{self.port}", "app:app"], env)
        wait_http(f"http://127.0.0.1:{self.port}/health", server, log)
        if redis_url:
            for number in range(2):
                self.processes.start(f"worker{number}", [
                    sys.executable, "-m", "flask", "--app", "app", "billing", "worker"], env)

    def close(self) -> None:
        """Stop every process and the proxy."""
        self.processes.stop_all()
        self.proxy.close()

    def health(self) -> float:
        """Time one GET /health."""
        seconds, status, _body = request(self.port, "GET", "/health")
        if status != 200:
            raise RuntimeError(f"/health answered {status}")
        return seconds

    def post(self, delivery) -> tuple[float, dict]:
        """POST one delivery; return (seconds, answer)."""
        headers, body = delivery
        seconds, status, data = request(self.port, "POST", WEBHOOK_PATH, body,
                                        {**headers, "Content-Type": "application/json"})
        if status != 200:
            raise RuntimeError(f"webhook answered {status}: {data[:200]!r}")
        return seconds, json.loads(data)

    def warm_up(self, first: int) -> None:
        """Post one lifecycle untimed (as webhooks.py does in process) and wait until it is
        applied, so the timed requests meet workers past their first requests."""
        deliveries = self.make_traffic(first, 1)
        self.proxy.delay = 0.0
        for delivery in deliveries:
            self.health()
            self.post(delivery)
        wait_processed(self.app, event_ids(deliveries))

    def intake_ratios(self, lifecycles: int, first: int) -> list[list[str]]:
        """Time new events and re-deliveries against GET /health, interleaved."""
        deliveries = self.make_traffic(first, lifecycles)
        self.proxy.delay = 0.0
        calls = self.proxy.requests
        health: list[float] = []
        fresh: list[float] = []
        for delivery in deliveries:
            health.append(self.health())
            fresh.append(self.post(delivery)[0])
        wait_processed(self.app, event_ids(deliveries))
        calls = self.proxy.requests - calls
        duplicate: list[float] = []
        for delivery in deliveries:
            health.append(self.health())
            seconds, answer = self.post(delivery)
            if not answer.get("duplicate"):
                raise RuntimeError(f"re-delivery not seen as a duplicate: {answer}")
            duplicate.append(seconds)
        base, _ = summary_ms(health)
        rows = []
        for label, samples, per_event in (("GET /health (baseline)", health, ""),
                                          ("new event", fresh, f"{calls / len(fresh):.2f}"),
                                          ("duplicate re-delivery", duplicate, "0")):
            median, p95 = summary_ms(samples)
            rows.append([label, str(len(samples)), f"{median:.2f}", f"{p95:.2f}",
                         f"{base / median:.2f}x", per_event])
        return rows

    def burst(self, lifecycles: int, first: int, latency_ms: float,
              senders: int = 16) -> list[str]:
        """Post a burst concurrently with Stripe slowed down; time until all are applied."""
        deliveries = self.make_traffic(first, lifecycles)
        self.proxy.delay = latency_ms / 1000
        calls = self.proxy.requests
        start = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            intake = list(pool.map(lambda delivery: self.post(delivery)[0], deliveries))
        posted = time.perf_counter()
        done, statuses = wait_processed(self.app, event_ids(deliveries))
        calls = self.proxy.requests - calls
        self.proxy.delay = 0.0
        median, p95 = summary_ms(intake)
        count = len(deliveries)
        return [f"{lifecycles} lifecycles", str(count), f"{posted - start:.1f}",
                f"{done - start:.1f}", f"{count / (done - start):.0f}", f"{median:.1f}",
                f"{p95:.1f}", f"{calls / count:.3f}",
                ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))]


def record_figures(label: str, dialect: str, ratios: list[list[str]], burst: list[str],
                   latency_ms: float) -> None:
    """Keep one configuration's figures, with the issue's targets, for the report."""
    where = f"{label}, gunicorn -w 2, {dialect}"
    health = ratios[0]
    for row, name, target in ((ratios[1], "new event", ">= 0.5"),
                              (ratios[2], "duplicate re-delivery", ">= 0.9")):
        RESULTS.append(Figure(
            f"webhooks served, {name} vs GET /health ({where})", float(row[4].rstrip("x")),
            "x", target, f"median /health {health[2]} ms over median {row[2]} ms, "
            f"same server, interleaved"))
    RESULTS.append(Figure(f"webhooks served, new event Stripe calls per event ({where})",
                          float(ratios[1][5]), "calls", "", "Stripe without added latency"))
    RESULTS.append(Figure(
        f"webhooks burst at +{latency_ms:g} ms Stripe latency: applied per second ({where})",
        float(burst[4]), "events/s", ">= 100",
        f"{burst[1]} events of {burst[0]}, posted by 16 senders, until all applied"))
    RESULTS.append(Figure(
        f"webhooks burst at +{latency_ms:g} ms Stripe latency: Stripe calls per event "
        f"({where})", float(burst[7]), "calls", "<= 0.1", f"outcome: {burst[8]}"))


def main_served(args, make_traffic_for) -> int:
    """Run the served figures for the default configuration and, with Redis, for RQ."""
    import tempfile

    configurations = [("default (thread)", None)]
    if args.redis_url:
        configurations.append(("RQ, 2 workers", args.redis_url))
    first = 0
    for label, redis_url in configurations:
        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            app = build_app(args.database_url, Path(tmp))
            database_url = app.config["SQLALCHEMY_DATABASE_URI"]

            def make_traffic(start: int, count: int, app=app):
                return make_traffic_for(app, start, count)

            run = None
            try:
                run = Run(app, Path(tmp), database_url, redis_url, make_traffic)
                run.warm_up(first)
                first += 1
                ratios = run.intake_ratios(args.lifecycles, first)
                first += args.lifecycles
                burst = run.burst(args.burst_lifecycles, first, args.burst_latency_ms)
                first += args.burst_lifecycles
            finally:
                if run is not None:
                    run.close()
                with app.app_context():
                    from portal.extensions import db

                    dialect = db.engine.dialect.name
                    db.engine.dispose()
        record_figures(label, dialect, ratios, burst, args.burst_latency_ms)
        print(f"\n== {label}: gunicorn -w 2 on {dialect}, Stripe = sandbox behind a proxy ==")
        print_table(["request", "count", "median ms", "p95 ms", "vs /health",
                     "Stripe calls/event"], ratios)
        print()
        print_table(["burst", "events", "posted s", "applied s", "events/s",
                     "intake median ms", "intake p95 ms", "Stripe calls/event",
                     "outcome"], [burst])
        print(f"(burst: {args.burst_latency_ms:g} ms added to every Stripe call, "
              f"16 concurrent senders)")
        sys.stdout.flush()
    return 0
