"""Flask commands: start the portal locally, seed demo data, create users."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade
from rq import Queue
from werkzeug.serving import run_simple

from portal.embedded_sandbox import sandbox_cli
from portal.extensions import db
from portal.models import Account, Role, User
from portal.services.accounts import EmailTaken, create_staff_user, hash_password
from portal.services.backup import BackupRefused, backup_sqlite, pg_dump_command
from portal.services.catalog import seed_plans
from portal.services.catalog_sync import sync_catalog
from portal.services.event_inbox import MIN_KEEP_DAYS, prune_events
from portal.services.jobs import event_queue, schedule_usage_report, usage_queue
from portal.services.mail import MAIL_QUEUE, deliver_queued_mail
from portal.services.metered_items import attach_metered_prices
from portal.services.passwords import password_problem
from portal.services.reconcile import reconcile
from portal.services.stripe_client import payments_configured, stripe_client, stripe_mode
from portal.services.usage_reconcile import reconcile_usage
from portal.services.usage_reporting import report_usage
from portal.services.webhooks import HANDLERS, retry_failed_events
from portal.worker import work

DEMO_USERS = (
    ("customer@demo.example.com", Role.CUSTOMER),
    ("admin@demo.example.com", Role.ADMIN),
    ("auditor@demo.example.com", Role.AUDITOR),
)


def demo_logins_path() -> Path:
    """Return the instance file that keeps the generated demo passwords."""
    return Path(current_app.instance_path) / "demo-logins.txt"


def seed_demo_data() -> list[tuple[str, str, str]]:
    """Create the demo account and users once; return (role, email, password) rows."""
    path = demo_logins_path()
    if path.exists():
        rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
        return [(row[0], row[1], row[2]) for row in rows if len(row) == 3]
    if db.session.scalar(db.select(User.id).limit(1)) is not None:
        return []
    account = Account(name="Demo Company")
    rows = []
    for email, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        user = User(email=email, password_hash=hash_password(password), role=role.value)
        if role is Role.CUSTOMER:
            user.account = account
        db.session.add(user)
        rows.append((role.value, email, password))
    db.session.add(account)
    db.session.commit()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines("\t".join(row) + "\n" for row in rows)
    return rows


def prepare_database(seed_demo: bool) -> list[tuple[str, str, str]]:
    """Apply migrations, seed the plan catalog and, when asked, the demo users."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    seed_plans()
    if stripe_mode(current_app.config) == "sandbox" and payments_configured(current_app.config):
        # The embedded sandbox starts empty: give it the catalog's products and prices.
        sync_catalog()
    return seed_demo_data() if seed_demo else []


@click.command("start")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-demo", is_flag=True, help="Do not create the demo account and users.")
@with_appcontext
def start_command(host: str, port: int, no_demo: bool) -> None:
    """Migrate, seed and serve the portal for local use."""
    app = current_app._get_current_object()
    logins = prepare_database(seed_demo=not no_demo)
    # Local plain-http serving: a Secure cookie would never come back from the browser.
    app.config["SESSION_COOKIE_SECURE"] = False
    app.config["REMEMBER_COOKIE_SECURE"] = False
    url = f"http://{host}:{port}/"
    click.echo(f"Billing portal: {url}")
    click.echo(f"Database: {app.config['SQLALCHEMY_DATABASE_URI']}")
    if logins:
        click.echo(f"Demo logins (kept in {demo_logins_path()}):")
        for role, email, password in logins:
            click.echo(f"  {role:<9} {email}  {password}")
    click.echo("Press Ctrl+C to stop.")
    # app.run() refuses to block inside a flask command, so serve through werkzeug directly.
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


@click.command("seed")
@click.option("--demo/--no-demo", default=True, show_default=True)
@with_appcontext
def seed_command(demo: bool) -> None:
    """Apply migrations and seed plans (and demo users)."""
    logins = prepare_database(seed_demo=demo)
    click.echo("Database ready.")
    for role, email, password in logins:
        click.echo(f"  {role:<9} {email}  {password}")


@click.command("create-user")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    default=Role.CUSTOMER.value,
    show_default=True,
)
@with_appcontext
def create_user_command(email: str, role: str) -> None:
    """Create a user; the password is asked for, never taken as an argument."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password, (email,))
    if problem:
        raise click.ClickException(problem)
    try:
        user = create_staff_user(email, password, Role(role))
    except EmailTaken as exc:
        raise click.ClickException(f"a user with email {exc} already exists") from exc
    click.echo(f"Created {user.role} {user.email}.")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path) -> None:
    """Back up the database to PATH (SQLite), or print the pg_dump command (PostgreSQL)."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        try:
            size = backup_sqlite(url, path)
        except BackupRefused as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Backed up the database to {path} ({size:,} bytes).")
        return
    if url.startswith("postgresql"):
        click.echo("PostgreSQL is backed up with its own tool; run (the password comes from "
                   "~/.pgpass or PGPASSWORD):")
        click.echo(f"  {pg_dump_command(url, path)}")
        return
    raise click.ClickException(f"no backup method for {url.split(':', 1)[0]} databases")


billing_cli = AppGroup("billing", help="Stripe billing: catalog, webhook events, workers.")


@billing_cli.command("sync-catalog")
@with_appcontext
def sync_catalog_command() -> None:
    """Create or update Stripe products, prices and meters from portal/catalog.toml."""
    report = sync_catalog()
    for label, names in (("created", report.created), ("replaced", report.replaced),
                         ("unchanged", report.unchanged)):
        click.echo(f"{label}: {len(names)}")
        for name in names:
            click.echo(f"  {name}")


@billing_cli.command("register-webhook")
@click.argument("url")
@with_appcontext
def register_webhook_command(url: str) -> None:
    """Create a webhook endpoint for URL at the configured Stripe and print its secret."""
    endpoint = stripe_client().v1.webhook_endpoints.create(params={
        "url": url, "enabled_events": sorted(HANDLERS),
        "description": "billing portal"})
    click.echo(f"Created {endpoint.id} for {url}")
    click.echo(f"Set STRIPE_WEBHOOK_SECRET={endpoint.secret}")


@billing_cli.command("retry-events")
@click.option("--limit", default=100, show_default=True, type=int)
def retry_events_command(limit: int) -> None:
    """Process failed webhook events again and report the outcomes."""
    outcomes = retry_failed_events(limit=limit)
    if not outcomes:
        click.echo("No failed events.")
    for status, count in sorted(outcomes.items()):
        click.echo(f"{status}: {count}")


@billing_cli.command("reconcile")
@click.option("--days", default=7, show_default=True, type=click.IntRange(min=1),
              help="Compare objects Stripe created in this many past days.")
@with_appcontext
def reconcile_command(days: int) -> None:
    """Compare the mirror with Stripe's recent objects, repair drift, print each repair."""
    report = reconcile(days, echo=lambda found: click.echo(f"repaired {found}"))
    for found in report.unmatched:
        click.echo(f"unmatched {found}")
    click.echo(f"Checked {report.checked} object(s) created since "
               f"{report.since:%Y-%m-%d %H:%M} UTC: {len(report.repairs)} repaired.")


@billing_cli.command("prune-events")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=MIN_KEEP_DAYS),
              help="Delete processed events received longer ago than this.")
def prune_events_command(days: int) -> None:
    """Delete old processed webhook events; failed and pending ones are kept."""
    click.echo(f"Pruned {prune_events(days)} processed event(s) older than {days} days.")


@billing_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker for webhook events and queued mail (needs REDIS_URL)."""
    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set: events are processed inline")
    queue = event_queue(current_app.config)
    # Usage reports run on a schedule: start the chain (a no-op when it is already scheduled).
    schedule_usage_report(current_app.config, time.time())
    work([queue, Queue(MAIL_QUEUE, connection=queue.connection),
          usage_queue(current_app.config)], burst=burst)


@billing_cli.command("attach-metered-prices")
@with_appcontext
def attach_metered_prices_command() -> None:
    """Give live subscriptions the metered overage prices of their plan (once; safe to re-run)."""
    report = attach_metered_prices()
    for label, ids in (("updated", report.updated), ("already complete", report.complete),
                       ("skipped (no plan price)", report.skipped)):
        click.echo(f"{label}: {len(ids)}")
        for subscription_id in ids:
            click.echo(f"  {subscription_id}")


@billing_cli.command("report-usage")
@with_appcontext
def report_usage_command() -> None:
    """Report closed hours of usage to Stripe meters; retry reports that failed before."""
    run = report_usage()
    click.echo(f"sent {run.sent} meter event(s): {run.corrections} correction(s), "
               f"{run.moved} moved to the current period; {run.failed} failed")
    for error in run.errors:
        click.echo(f"  failed {error}", err=True)
    if run.failed:
        raise SystemExit(1)


@billing_cli.command("reconcile-usage")
@with_appcontext
def reconcile_usage_command() -> None:
    """Compare usage per account, meter and period with Stripe's meter event summaries."""
    differences = reconcile_usage()
    for difference in differences:
        click.echo(difference.describe())
    if differences:
        click.echo(f"{len(differences)} difference(s).")
        raise SystemExit(1)
    click.echo("No differences.")


mail_cli = AppGroup("mail", help="Outgoing mail.")


@mail_cli.command("flush")
def mail_flush_command() -> None:
    """Send every queued message now, retrying failed ones up to five attempts."""
    click.echo(f"Sent {deliver_queued_mail()} message(s).")


commands = [start_command, seed_command, create_user_command, billing_cli, sandbox_cli, mail_cli,
            backup_command]
