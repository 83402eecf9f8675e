"""Usage ingestion throughput over HTTP against gunicorn, beside GET /health of the same server.

Run: .venv/bin/python bench/usage.py [--batches 60] [--workers 2] [--clients 2]
     [--redis-url redis://127.0.0.1:6379/0] [--database-url URL] [--seed 1234]
See bench/README.md. Exits 1 if any answer is not the expected one.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import Figure, prepare_database, print_table, run_main, summary_ms  # noqa: E402

BATCH = 1000
DUPLICATES = 100  # 10% of every batch repeats identifiers already sent
METERS = ("api_calls", "storage_gb", "seats")
# What the last main() measured, for figures().
RESULTS: list[Figure] = []


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_batches(count: int, seed: int, lag: int) -> list[bytes]:
    """Return `count` JSON batches of 1,000 events: 900 new and 100 repeats.

    Repeats come from batches at least `lag` before (sent and answered even when several
    clients post at once), or from earlier in the same batch while there are none yet.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    earlier: list[list[dict]] = []
    batches = []
    serial = 0
    for number in range(count):
        fresh = []
        for _ in range(BATCH - DUPLICATES):
            serial += 1
            seconds_ago = rng.randint(0, 20 * 86400)
            fresh.append({
                "meter": rng.choice(METERS), "quantity": rng.randint(1, 50),
                "timestamp": int((now - timedelta(seconds=seconds_ago)).timestamp()),
                "identifier": f"evt-{serial}", "metadata": {"region": rng.choice("abc")}})
        settled = [item for batch in earlier[:max(0, number - lag)] for item in batch]
        if settled:
            repeats = [dict(rng.choice(settled)) for _ in range(DUPLICATES)]
            events = fresh + repeats
            rng.shuffle(events)
        else:
            # Each repeat follows its original within the batch: the second one is the duplicate.
            events = fresh + [dict(item) for item in rng.sample(fresh, DUPLICATES)]
        earlier.append(fresh)
        batches.append(json.dumps({"events": events}).encode())
    return batches


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[float, int, bytes]:
    """Send one request on a new connection; return (seconds, status, body)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return time.perf_counter() - start, response.status, data


def make_key(env: dict) -> str:
    """Create the bench account and its API key in the served database; return the secret."""
    os.environ.update(env)
    from portal import create_app
    from portal.extensions import db
    from portal.models import Account
    from portal.services.api_keys import create_api_key

    app = create_app()
    with app.app_context():
        account = Account(name="Bench Company")
        db.session.add(account)
        db.session.commit()
        _key, secret = create_api_key(account, "bench", live=False, actor=None)
        db.engine.dispose()
    return secret


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--database-url")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    if args.workers > 1 and not args.redis_url:
        parser.error("several gunicorn workers need shared rate limits: give --redis-url")

    workdir = Path(tempfile.mkdtemp(prefix="bench-usage-"))
    url = prepare_database(args.database_url, workdir)
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_"))}
    env.update({"INSTANCE_PATH": str(workdir / "instance"), "DATABASE_URL": url,
                "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "PORTAL_ENV": "development",
                "USAGE_API_RATE_LIMIT": "1000000 per minute", "MAIL_DELIVERY": "manual"})
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "seed", "--no-demo"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    secret = make_key(env)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = (workdir / "gunicorn.log").open("w")
    server = subprocess.Popen([str(gunicorn), "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                               "app:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    failures = 0
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(port, "GET", "/health")[1] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print((workdir / "gunicorn.log").read_text())
                return 1
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        total = args.warmup + args.batches + args.batches
        batches = build_batches(total, args.seed, lag=args.clients + 1)
        expected_new = BATCH - DUPLICATES

        def post(body: bytes) -> float:
            nonlocal failures
            seconds, status, data = request(port, "POST", "/api/v1/usage", body, headers)
            answer = json.loads(data) if status == 200 else {}
            if (status, answer.get("accepted"), answer.get("duplicates")) != (
                    200, expected_new, DUPLICATES):
                failures += 1
                print("unexpected answer:", status, data[:300])
            return seconds

        for body in batches[:args.warmup]:
            post(body)
            request(port, "GET", "/health")
        # One client, health and a batch interleaved: latency of each.
        health, ingest = [], []
        for body in batches[args.warmup:args.warmup + args.batches]:
            health.append(request(port, "GET", "/health")[0])
            ingest.append(post(body))
        # Several clients at once: what the server sustains.
        queue = list(batches[args.warmup + args.batches:])
        lock = threading.Lock()

        def client(kind: str, counter: list) -> None:
            while True:
                with lock:
                    if kind == "post" and not queue:
                        return
                    if kind == "health" and counter[0] >= args.batches:
                        return
                    body = queue.pop(0) if kind == "post" else None
                    counter[0] += 1
                if kind == "post":
                    post(body)
                else:
                    request(port, "GET", "/health")

        def concurrent(kind: str) -> float:
            counter = [0]
            threads = [threading.Thread(target=client, args=(kind, counter))
                       for _ in range(args.clients)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return time.perf_counter() - start

        health_wall = concurrent("health")
        ingest_wall = concurrent("post")
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()

    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{database}, gunicorn -w {args.workers}, {args.batches} batches of {BATCH} events "
          f"({DUPLICATES} duplicates each), Redis limits: {'yes' if args.redis_url else 'no'}")
    health_median, health_p95 = summary_ms(health)
    ingest_median, ingest_p95 = summary_ms(ingest)
    print_table(
        ["request", "median ms", "p95 ms", "vs /health", "events/s (1 client)",
         f"req or events/s ({args.clients} clients)"],
        [["GET /health (baseline)", f"{health_median:.2f}", f"{health_p95:.2f}", "1.0x", "-",
          f"{args.batches / health_wall:.0f} req/s"],
         ["POST /api/v1/usage (1,000 events)", f"{ingest_median:.2f}", f"{ingest_p95:.2f}",
          f"{ingest_median / health_median:.1f}x",
          f"{BATCH * len(ingest) / sum(ingest):.0f}",
          f"{BATCH * args.batches / ingest_wall:.0f} events/s"]])
    RESULTS[:] = [
        Figure(f"usage ingestion, 1 client ({database}, gunicorn -w {args.workers})",
               round(BATCH * len(ingest) / sum(ingest)), "events/s", ">= 10000",
               f"batch median {ingest_median / health_median:.1f}x the /health median "
               f"({health_median:.2f} ms) of the same run"),
        Figure(f"usage ingestion, {args.clients} clients ({database}, gunicorn -w "
               f"{args.workers})", round(BATCH * args.batches / ingest_wall), "events/s",
               ">= 10000", f"/health: {args.batches / health_wall:.0f} req/s with "
               f"{args.clients} clients in the same run")]
    if failures:
        print(f"{failures} answers were not the expected 200 with {expected_new} accepted")
    return 1 if failures else 0


def figures(argv: list[str]) -> list[Figure]:
    """Run with `argv` and return the figures for bench/REPORT.md (the report contract)."""
    RESULTS.clear()
    if "--redis-url" not in argv and os.environ.get("BENCH_REDIS_URL"):
        argv = [*argv, "--redis-url", os.environ["BENCH_REDIS_URL"]]
    code = run_main(main, "usage.py", argv)
    if code:
        raise RuntimeError(f"usage.py {' '.join(argv)} exited {code}")
    return list(RESULTS)


# Fewer batches than by hand: the report runs every program.
REPORT_RUNS = [["--batches", "20"]]


if __name__ == "__main__":
    sys.exit(main())
