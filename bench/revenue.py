"""Revenue report pages and exports on a synthetic book: time per page, export memory.

    .venv/bin/python bench/revenue.py [--scale 1] [--database-url URL] [--iterations 5]

Fills the mirror with bench/revenue_book.py's book (at --scale 1: 100,000 accounts, 150,000
subscriptions, 1,000,000 invoices with their charges, 50,000 refunds), then times each report
page through the Flask test client against GET /health in the same run, and streams the
largest export (every MRR change) over 6 and 24 months under tracemalloc to show its peak
memory does not grow with the rows.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from harness import BENCH_PASSWORD, Figure, build_app, print_table, run_main
from revenue_book import Book, catalog_rows, insert

CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
ADMIN_EMAIL = "bench-admin@example.com"
# Issue 13's targets for every report page at full size (--scale 1), by database.
PAGE_TARGET_MS = {"postgresql": "< 1000", "sqlite": "< 2000"}
# "Export memory flat as rows grow": the larger export's peak over the smaller one's.
FLAT_TARGET = "<= 1.25"
# What the last main() measured, for figures().
RESULTS: list[Figure] = []


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the full book (1 = 100,000 accounts)")
    parser.add_argument("--database-url", help="PostgreSQL URL (every table is dropped first)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--currency", default="usd")
    parser.add_argument("--seed", type=int, default=1234)
    return parser.parse_args()


def fill(app, book: Book) -> dict[str, int]:
    """Generate the book and bulk-insert it; return the row count of each table."""
    from sqlalchemy import text

    from portal.extensions import db

    book.build_subscriptions()
    book.classify()
    invoices, charges = book.invoice_and_charge_rows()
    products, prices = catalog_rows()
    counts = {}
    with app.app_context(), db.engine.begin() as connection:
        dialect = db.engine.dialect.name
        counts["products"] = insert(connection, dialect, "products", products)
        counts["prices"] = insert(connection, dialect, "prices", prices)
        counts["accounts"] = insert(connection, dialect, "accounts", book.account_rows())
        counts["subscriptions"] = insert(connection, dialect, "subscriptions",
                                         book.subscription_rows())
        counts["subscription_mrr"] = insert(connection, dialect, "subscription_mrr",
                                            book.subscription_mrr_rows())
        counts["mrr_changes"] = insert(connection, dialect, "mrr_changes", book.change_rows())
        counts["invoices"] = insert(connection, dialect, "invoices", invoices)
        counts["charges"] = insert(connection, dialect, "charges", iter(charges))
        counts["refunds"] = insert(connection, dialect, "refunds", book.refund_rows(charges))
        if dialect == "postgresql":
            for table in ("accounts", "users"):
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"))
        if dialect == "sqlite":
            connection.execute(text("ANALYZE"))
    if dialect == "postgresql":
        # As autovacuum would in time: statistics, and the visibility map index-only scans use.
        with app.app_context(), db.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return counts


def sign_in_admin(app, client) -> None:
    """Create an admin and sign in through the login form."""
    from portal.extensions import db
    from portal.models import Role
    from portal.services.accounts import create_staff_user

    with app.app_context():
        create_staff_user(ADMIN_EMAIL, BENCH_PASSWORD, Role.ADMIN)
        db.session.commit()
    token = CSRF_INPUT.search(client.get("/auth/login").get_data(as_text=True)).group(1)
    response = client.post("/auth/login", data={"email": ADMIN_EMAIL, "password": BENCH_PASSWORD,
                                                "csrf_token": token})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed with {response.status_code}")


def months_back(count: int) -> dict[str, str]:
    """Return the range of the `count` months ending this one."""
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - (count - 1)
    return {"first": f"{index // 12:04d}-{index % 12 + 1:02d}",
            "last": f"{now.year:04d}-{now.month:02d}"}


def time_get(client, path: str, query: dict, iterations: int) -> tuple[float, int]:
    """Return the median seconds of GET path (one untimed warm-up) and the response size."""
    samples, size = [], 0
    for round_number in range(iterations + 1):
        start = time.perf_counter()
        response = client.get(path, query_string=query)
        body = b"".join(response.iter_encoded())
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        if round_number:
            samples.append(elapsed)
        size = len(body)
    return statistics.median(samples), size


def export_memory(client, query: dict) -> tuple[int, int, float]:
    """Stream an export under tracemalloc; return (rows, peak bytes, seconds)."""
    tracemalloc.start()
    start = time.perf_counter()
    response = client.get("/admin/reports/export", query_string=query)
    rows = sum(chunk.count(b"\n") for chunk in response.iter_encoded()) - 1
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return rows, peak, elapsed


def main() -> int:
    """Build the book, time the report pages and exports, print the figures."""
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        app = build_app(args.database_url, Path(tmp))
        book = Book(args.scale, args.seed, datetime.now(UTC))
        started = time.perf_counter()
        counts = fill(app, book)
        built = time.perf_counter() - started
        with app.app_context():
            from portal.extensions import db
            dialect = db.engine.dialect.name
        print(f"{dialect}: book built and inserted in {built:.1f} s: "
              + ", ".join(f"{table} {count:,}" for table, count in counts.items()))
        client = app.test_client()
        sign_in_admin(app, client)
        twelve = {"currency": args.currency, **months_back(12)}
        all_months = {"currency": args.currency, **months_back(25)}
        rows = []
        baseline, _ = time_get(client, "/health", {}, args.iterations)
        rows.append(["GET /health (baseline)", f"{baseline * 1000:.1f}", "1.0x", "-"])
        pages = [("MRR and movements, 12 months", "/admin/reports/", twelve),
                 ("MRR and movements, 25 months", "/admin/reports/", all_months),
                 ("Revenue, 12 months", "/admin/reports/revenue", twelve),
                 ("Revenue, 25 months", "/admin/reports/revenue", all_months),
                 ("Customers and plans, 12 months", "/admin/reports/customers", twelve),
                 ("Export mrr.csv (12 rows)", "/admin/reports/export",
                  {**twelve, "table": "mrr", "format": "csv"}),
                 ("Export revenue.json (25 rows)", "/admin/reports/export",
                  {**all_months, "table": "revenue", "format": "json"})]
        for label, path, query in pages:
            seconds, size = time_get(client, path, query, args.iterations)
            rows.append([label, f"{seconds * 1000:.1f}", f"{seconds / baseline:.0f}x",
                         f"{size / 1024:.0f} KiB"])
            # The targets hold at full size; a smaller book is reported without them.
            full = args.scale == 1 and path != "/admin/reports/export"
            RESULTS.append(Figure(
                f"{label} at --scale {args.scale:g}, median ({dialect})",
                round(seconds * 1000, 2), "ms", PAGE_TARGET_MS[dialect] if full else "",
                f"{seconds / baseline:.0f}x the /health median ({baseline * 1000:.2f} ms) of "
                f"the same run" + ("" if full or path == "/admin/reports/export" else
                                   f"; target {PAGE_TARGET_MS[dialect]} ms applies at "
                                   f"--scale 1")))
        print(f"\nMedian of {args.iterations} requests after one warm-up:")
        print_table(["Request", "ms", "vs /health", "size"], rows)

        print("\nStreaming export of every MRR change (CSV), peak Python memory (tracemalloc):")
        memory_rows = []
        peaks: list[tuple[str, int, int]] = []
        export_memory(client, {"currency": args.currency, **months_back(1),
                               "table": "mrr_changes", "format": "csv"})  # warm-up, untimed
        for label, months in (("6 months", 6), ("25 months", 25)):
            query = {"currency": args.currency, **months_back(months),
                     "table": "mrr_changes", "format": "csv"}
            count, peak, seconds = export_memory(client, query)
            memory_rows.append([label, f"{count:,}", f"{seconds:.2f}",
                                f"{peak / 1024:,.0f} KiB"])
            peaks.append((label, count, peak))
            RESULTS.append(Figure(f"Export of every MRR change, {label}, {count:,} rows, peak "
                                  f"memory at --scale {args.scale:g} ({dialect})",
                                  round(peak / 1024), "KiB", "",
                                  f"tracemalloc peak; streamed in {seconds:.2f} s"))
        print_table(["Range", "rows", "s", "peak memory"], memory_rows)
        (_, small_rows, small_peak), (_, large_rows, large_peak) = peaks
        RESULTS.append(Figure(f"Export peak memory growth, 25 over 6 months at --scale "
                              f"{args.scale:g} ({dialect})", round(large_peak / small_peak, 2),
                              "x", FLAT_TARGET,
                              f"peak for {large_rows:,} rows over the peak for {small_rows:,} "
                              f"rows ({large_rows / max(small_rows, 1):.1f}x the rows), "
                              f"same run"))
    return 0


def figures(argv: list[str]) -> list[Figure]:
    """Run with `argv` and return the figures for bench/REPORT.md (the report contract)."""
    RESULTS.clear()
    code = run_main(main, "revenue.py", argv)
    if code:
        raise RuntimeError(f"revenue.py {' '.join(argv)} exited {code}")
    return list(RESULTS)


# A tenth of the book, so the report stays short: the page targets are stated at --scale 1
# and the figure names carry the scale; the export's flatness holds at any size.
REPORT_RUNS = [["--scale", "0.1", "--iterations", "3"]]


if __name__ == "__main__":
    sys.exit(main())
