"""Shared set-up for the benchmarks: a migrated portal app on the embedded Stripe sandbox."""
from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, event, inspect, text

BENCH_SECRET_KEY = "bench-secret-key"
BENCH_PASSWORD = "correct horse battery"


def prepare_database(database_url: str | None, workdir: Path) -> str:
    """Return a database URL with an empty schema: a fresh SQLite file, or a wiped PostgreSQL."""
    if not database_url:
        return f"sqlite:///{workdir / 'portal.db'}"
    from portal.config import normalise_database_url

    url = normalise_database_url(database_url)
    engine = create_engine(url)
    with engine.begin() as connection:
        # A clean slate, as the test suite does: earlier runs may have left tables behind.
        for table in reversed(inspect(connection).get_table_names()):
            connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    engine.dispose()
    return url


def build_app(database_url: str | None, workdir: Path) -> Flask:
    """Return a portal app in test configuration on a freshly migrated database."""
    # create_app reads INSTANCE_PATH: keep the sandbox store and secrets out of the repository.
    os.environ["INSTANCE_PATH"] = str(workdir / "instance")
    url = prepare_database(database_url, workdir)
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url,
        "TESTING": True,
        "PORTAL_ENV": "testing",
        "SECRET_KEY": BENCH_SECRET_KEY,
        "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
        "SANDBOX_DELIVERY": "manual",
        "WEBHOOK_PROCESSING": "inline",
    })
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()
    return app


def capture_deliveries(app: Flask) -> list[tuple[dict, bytes]]:
    """Take every due sandbox webhook delivery (headers, body) instead of posting it."""
    from portal.sandbox import deliver_due

    sandbox = app.extensions["stripe_sandbox"]
    captured: list[tuple[dict, bytes]] = []

    def keep(url: str, headers: dict, body: bytes) -> int:
        captured.append((dict(headers), body))
        return 200

    original = sandbox.config["SANDBOX_DELIVER"]
    sandbox.config["SANDBOX_DELIVER"] = keep
    try:
        # deliver_due hands over at most 100 per call.
        while deliver_due(sandbox):
            pass
    finally:
        sandbox.config["SANDBOX_DELIVER"] = original
    return captured


def stripe_requests(app: Flask) -> int:
    """Return how many Stripe API requests the app's in-process transport has sent."""
    transport = app.extensions.get("stripe_http_client")
    return transport.requests_sent if transport is not None else 0


class QueryCounter:
    """Count SQL statements sent on an engine while enabled."""

    def __init__(self, engine) -> None:
        self.count = 0
        self.enabled = False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        if self.enabled:
            self.count += 1

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Count statements inside the block."""
        self.enabled = True
        try:
            yield
        finally:
            self.enabled = False


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of the samples."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(samples: list[float]) -> tuple[float, float]:
    """Return (median, p95) of seconds samples, in milliseconds."""
    return statistics.median(samples) * 1000, percentile(samples, 0.95) * 1000


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print a plain aligned table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:<{width}}}" if index == 0 else f"{{:>{width}}}"
                     for index, width in enumerate(widths))
    print(line.format(*headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def timed(call: Callable[[], object]) -> tuple[float, object]:
    """Run call once; return (seconds, result)."""
    from time import perf_counter

    start = perf_counter()
    result = call()
    return perf_counter() - start, result


# The report contract (bench/README.md): every program exposes figures(argv) -> list[Figure].
COMPARISONS = {">=": lambda value, bound: value >= bound,
               ">": lambda value, bound: value > bound,
               "<=": lambda value, bound: value <= bound,
               "<": lambda value, bound: value < bound,
               "==": lambda value, bound: value == bound}


@dataclass
class Figure:
    """One measured figure for bench/REPORT.md, with the target it is held to (if any).

    `target` reads "<op> <number>" with op one of >=, >, <=, <, == (e.g. ">= 0.5"); `note`
    says what the figure is measured against (the baseline of the same run).
    """

    name: str
    value: float
    unit: str
    target: str = ""
    note: str = ""

    def met(self) -> bool | None:
        """Return whether the value meets the target, or None when there is no target."""
        if not self.target:
            return None
        op, bound = self.target.split()
        return COMPARISONS[op](self.value, float(bound))


def run_main(main: Callable[[], int], program: str, argv: list[str]) -> int:
    """Run a program's main() with `argv` as its command line; return its exit code."""
    import sys

    saved = sys.argv
    sys.argv = [program, *argv]
    try:
        return main()
    finally:
        sys.argv = saved
