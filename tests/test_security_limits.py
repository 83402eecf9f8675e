"""Issue 10, finding 5: sign-in limits per account from any address, shared by every worker."""
from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from portal import create_app
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import csrf_from, free_port, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def attempt_from(client, address, email_address, password, token):
    """Send one sign-in from a given source address; return the status."""
    return client.post("/auth/login", data={"email": email_address, "password": password,
                                            "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address}).status_code


def test_one_account_is_throttled_across_many_addresses_and_its_owner_told(
        app, client, make_user, outbox):
    user = make_user(email="target@example.com")
    token = csrf_from(client, "/auth/login")
    statuses = [attempt_from(client, f"198.51.100.{n}", user.email, "wrong password!", token)
                for n in range(1, 15)]
    # Every attempt came from its own address, so only the per-account limit (10) applies.
    assert statuses[:10] == [400] * 10
    assert statuses[10:] == [429] * 4
    # While locked, even the right password learns nothing.
    assert attempt_from(client, "203.0.113.9", user.email, DEFAULT_PASSWORD, token) == 429
    notices = [email.message_from_bytes(p.read_bytes()) for p in outbox.glob("*.eml")]
    assert [(m["To"], m["Subject"]) for m in notices] == [
        ("target@example.com", "Repeated failed sign-ins to your billing portal account")]
    # Other accounts are not affected.
    other = make_user()
    assert attempt_from(client, "203.0.113.10", other.email, DEFAULT_PASSWORD, token) == 302


def test_x_forwarded_for_is_not_believed_unless_configured(client, make_user):
    token = csrf_from(client, "/auth/login")
    statuses = [
        client.post("/auth/login", data={"email": f"nobody{n}@example.com",
                                         "password": "wrong password!", "csrf_token": token},
                    headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code
        for n in range(11)
    ]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429


def test_production_refuses_several_workers_with_memory_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_WORKERS", "4")
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/9")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/9"


def serving_env(tmp_path, **extra) -> dict:
    """Return a production environment for a fresh instance folder."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_", "MAIL_"))}
    env.update(INSTANCE_PATH=str(tmp_path), **extra)
    return env


def test_gunicorn_with_two_workers_and_memory_limits_refuses_to_start(tmp_path):
    env = serving_env(tmp_path, PORTAL_BASE_URL="http://127.0.0.1")
    result = subprocess.run([str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{free_port()}",
                             "app:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "in-memory rate limits" in result.stdout + result.stderr


def test_account_limit_holds_across_two_gunicorn_workers_with_redis(tmp_path):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        skip_or_fail("set TEST_REDIS_URL to test limits shared by gunicorn workers",
                     "REQUIRE_REDIS")
    import redis

    with redis.Redis.from_url(redis_url) as connection:
        # Per-address counters of earlier tests (all from 127.0.0.1) must not count here.
        for key in connection.scan_iter("LIMITS:*"):
            connection.delete(key)
    target = f"limited-{uuid.uuid4().hex[:8]}@example.com"
    port = free_port()
    env = serving_env(tmp_path, REDIS_URL=redis_url, PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
                      SIGNIN_ACCOUNT_LIMIT="5 per hour", MAIL_DELIVERY="thread")
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "seed", "--no-demo"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "create-user", "--role",
                    "customer", target], input=f"{DEFAULT_PASSWORD}\n" * 2,
                   cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen([str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "gunicorn.log").read_text())
                time.sleep(0.2)
        statuses = []
        for _ in range(9):
            # A fresh connection (and session) each time, so both workers take turns.
            with urllib.request.urlopen(f"{base}/auth/login") as page:
                html = page.read().decode()
                cookie = page.headers["Set-Cookie"].split(";")[0]
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)[1]
            form = urllib.parse.urlencode({"email": target,
                                           "password": "wrong password!",
                                           "csrf_token": token}).encode()
            request = urllib.request.Request(f"{base}/auth/login", data=form,
                                             headers={"Cookie": cookie})
            try:
                with urllib.request.urlopen(request) as reply:
                    statuses.append(reply.status)
            except urllib.error.HTTPError as error:
                statuses.append(error.code)
        assert statuses == [400] * 5 + [429] * 4
        deadline = time.monotonic() + 10
        while not list((tmp_path / "outbox").glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.2)
        notices = list((tmp_path / "outbox").glob("*.eml"))
        assert len(notices) == 1
        assert target in notices[0].read_text()
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
    with_two = (tmp_path / "gunicorn.log").read_text()
    assert with_two.count("Booting worker") == 2
