"""Time invoice PDFs (uncached, cached, 304) and the Invoices page of a 5,000-invoice account
against GET /health, measured interleaved in the same run."""
from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from harness import (
    BENCH_PASSWORD,
    Figure,
    QueryCounter,
    build_app,
    print_table,
    run_main,
    summary_ms,
)

BASELINE = "/health"
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
MORE = re.compile(r'hx-get="([^"]+)"')
# What the last main() measured, for figures(); the invoices issue's targets by path prefix.
RESULTS: list[Figure] = []
TARGETS_MS = {"PDF 3 lines, uncached": "<= 100", "PDF 3 lines, cached": "<= 5",
              "Invoices page": "<= 30"}


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pdf-iterations", type=int, default=20,
                        help="timed uncached renders of each PDF (default 20)")
    parser.add_argument("--iterations", type=int, default=200,
                        help="timed GETs of the fast paths (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first (default 5)")
    parser.add_argument("--invoices", type=int, default=5000,
                        help="invoices of the account whose list is timed (default 5000)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL; its tables are DROPPED (default: temp SQLite)")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    return parser.parse_args()


def paid_invoice(stripe, customer_id: str, lines: int) -> str:
    """Bill `lines` items to the customer at the sandbox and pay; return the invoice id."""
    for n in range(lines):
        stripe.v1.invoice_items.create(params={
            "customer": customer_id, "amount": 1000 + 37 * n, "currency": "eur",
            "description": f"Consulting block {n + 1} (Ωμέγα / Привет)"})
    invoice = stripe.v1.invoices.create(params={
        "customer": customer_id, "auto_advance": False, "currency": "eur",
        "pending_invoice_items_behavior": "include"})
    invoice = stripe.v1.invoices.finalize_invoice(invoice.id)
    stripe.v1.invoices.pay(invoice.id, options={"idempotency_key": f"bench-{invoice.id}"})
    return invoice.id


def build_buyer(app: Flask) -> tuple[str, dict[int, str]]:
    """Make a customer with billing details and paid 3- and 60-line invoices, mirrored by
    webhooks; return its email and {lines: invoice id}."""
    from portal.extensions import db
    from portal.sandbox import deliver_due
    from portal.services.accounts import register_customer
    from portal.services.customers import ensure_stripe_customer
    from portal.services.stripe_client import stripe_client

    email = "bench-buyer@example.com"
    with app.test_request_context("/"):
        stripe = stripe_client()
        user = register_customer(email, BENCH_PASSWORD, "Bench Buyer")
        customer_id = ensure_stripe_customer(user.account)
        card = stripe.v1.payment_methods.attach("pm_card_visa", params={"customer": customer_id})
        stripe.v1.customers.update(customer_id, params={
            "name": "Ακμή Σύμβουλοι ΙΚΕ", "invoice_settings": {"default_payment_method": card.id},
            "address": {"line1": "Odos 5", "city": "Athens", "postal_code": "10558",
                        "country": "GR"}})
        stripe.v1.customers.tax_ids.create(customer_id, params={"type": "eu_vat",
                                                                "value": "EL123456789"})
        invoices = {lines: paid_invoice(stripe, customer_id, lines) for lines in (3, 60)}
        db.session.remove()
    sandbox = app.extensions["stripe_sandbox"]
    while deliver_due(sandbox):
        pass
    return email, invoices


def build_history(app: Flask, count: int, rng: random.Random) -> str:
    """Mirror `count` invoices for one account through sync.invoice; return its email."""
    from portal.extensions import db
    from portal.services import sync
    from portal.services.accounts import register_customer

    email = "bench-history@example.com"
    start = int(datetime(2012, 1, 1, tzinfo=UTC).timestamp())
    with app.app_context():
        user = register_customer(email, BENCH_PASSWORD, "Bench History")
        customer_id = "cus_bench_history"
        sync.link_customer(user.account, customer_id)
        for n in range(count):
            created = start + n * 86_400 + rng.randrange(3600)
            status = rng.choice(("paid", "paid", "paid", "open", "void", "uncollectible"))
            total = rng.randrange(500, 50_000)
            sync.invoice({
                "id": f"in_hist_{n:06d}", "object": "invoice", "customer": customer_id,
                "status": status, "number": f"HIST-{n:06d}", "currency": "usd",
                "created": created, "subtotal": total, "total": total, "amount_due": total,
                "amount_paid": total if status == "paid" else 0,
                "amount_remaining": total if status == "open" else 0,
                "period_start": created, "period_end": created + 30 * 86_400,
                "lines": {"object": "list", "data": [], "has_more": False},
            }, version=created)
            if n % 500 == 499:
                db.session.commit()
        db.session.commit()
    return email


def signed_in_client(app: Flask, email: str):
    """Return a test client signed in through the login form."""
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token = CSRF_INPUT.search(page).group(1)
    response = client.post("/auth/login", data={"email": email, "password": BENCH_PASSWORD,
                                                "csrf_token": token})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed with {response.status_code}")
    return client


def deep_page_url(client, pages_in: int) -> str:
    """Follow the 'older invoices' cursor `pages_in` pages deep; return that page's URL."""
    url = "/billing/invoices"
    for _ in range(pages_in):
        page = client.get(url).get_data(as_text=True)
        url = MORE.search(page).group(1).replace("&amp;", "&")
    return url


def main() -> int:
    """Build the data, time every path against the baseline and print the figures."""
    args = parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        app = build_app(args.database_url, Path(tmp))
        app.config["PDF_CACHE_DIR"] = str(Path(tmp) / "pdf-cache")
        cache = Path(app.config["PDF_CACHE_DIR"])
        buyer_email, invoices = build_buyer(app)
        history_email = build_history(app, args.invoices, rng)
        from portal.extensions import db

        with app.app_context():
            queries = QueryCounter(db.engine)
            dialect = db.engine.dialect.name
        buyer = signed_in_client(app, buyer_email)
        history = signed_in_client(app, history_email)
        deep = deep_page_url(history, (args.invoices // 25) * 3 // 4)
        etags = {lines: buyer.get(f"/billing/invoices/{invoice}/pdf").headers["ETag"]
                 for lines, invoice in invoices.items()}

        def pdf(lines: int) -> str:
            return f"/billing/invoices/{invoices[lines]}/pdf"

        cases = {
            "GET /health (baseline)": (buyer, BASELINE, {}, None),
            "PDF 3 lines, uncached": (buyer, pdf(3), {}, "clear"),
            "PDF 60 lines, uncached": (buyer, pdf(60), {}, "clear"),
            "PDF 3 lines, cached": (buyer, pdf(3), {}, None),
            "PDF 3 lines, If-None-Match: 304": (buyer, pdf(3), {"If-None-Match": etags[3]},
                                                None),
            f"Invoices page 1 of {args.invoices}": (history, "/billing/invoices", {}, None),
            f"Invoices page {(args.invoices // 25) * 3 // 4 + 1} (deep)": (history, deep, {},
                                                                        None),
        }
        samples = {name: [] for name in cases}
        statements = dict.fromkeys(cases, 0)
        problems: list[str] = []
        rounds = args.warmup + max(args.iterations, args.pdf_iterations)
        for round_number in range(rounds):
            order = list(cases)
            rng.shuffle(order)
            for name in order:
                client, url, headers, prepare = cases[name]
                slow = prepare == "clear"
                if slow and round_number >= args.warmup + args.pdf_iterations:
                    continue
                if slow:
                    shutil.rmtree(cache, ignore_errors=True)
                before = queries.count
                with queries.counting():
                    start = time.perf_counter()
                    response = client.get(url, headers=headers)
                    elapsed = time.perf_counter() - start
                expected = 304 if "If-None-Match" in headers else 200
                if response.status_code != expected:
                    problems.append(f"{name} answered {response.status_code}")
                response.close()
                if round_number >= args.warmup:
                    samples[name].append(elapsed)
                    statements[name] += queries.count - before
        with app.app_context():
            db.engine.dispose()

    print(f"database: {dialect}; PDFs: paid EUR invoices of 3 and 60 lines (Greek/Cyrillic "
          f"text, tax id, card payment); list: an account with {args.invoices} invoices")
    base_median, _ = summary_ms(samples["GET /health (baseline)"])
    rows = []
    for name, values in samples.items():
        median, p95 = summary_ms(values)
        rows.append([name, str(len(values)), f"{median:.2f}", f"{p95:.2f}",
                     f"{median / base_median:.1f}x", f"{statements[name] / len(values):.1f}"])
        target = next((bound for prefix, bound in TARGETS_MS.items()
                       if name.startswith(prefix)), "")
        if name != "GET /health (baseline)":
            RESULTS.append(Figure(f"{name}, median ({dialect})", round(median, 2), "ms",
                                  target, f"{median / base_median:.1f}x the /health median "
                                  f"({base_median:.2f} ms) of the same run"))
    print()
    print_table(["path", "n", "median ms", "p95 ms", "vs base", "SQL/request"], rows)
    if problems:
        print(f"{len(problems)} unexpected answers, first: {problems[0]}", file=sys.stderr)
    return 1 if problems else 0


def figures(argv: list[str]) -> list[Figure]:
    """Run with `argv` and return the figures for bench/REPORT.md (the report contract)."""
    RESULTS.clear()
    code = run_main(main, "invoices.py", argv)
    if code:
        raise RuntimeError(f"invoices.py {' '.join(argv)} exited {code}")
    return list(RESULTS)


# Smaller than by hand, since the report runs every program.
REPORT_RUNS = [["--invoices", "2000", "--pdf-iterations", "5", "--iterations", "60"]]


if __name__ == "__main__":
    sys.exit(main())
