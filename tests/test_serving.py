"""Production serving: gunicorn with several workers shares all state through the database."""
from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


@pytest.fixture
def gunicorn_portal(tmp_path):
    """Seed a fresh instance, then serve it with `gunicorn -w 2 'app:app'` and Redis limits."""
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        # Several production workers need shared rate limits: the app refuses memory storage.
        skip_or_fail("set TEST_REDIS_URL to serve with several gunicorn workers", "REQUIRE_REDIS")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_"))}
    env["INSTANCE_PATH"] = str(tmp_path)
    env["REDIS_URL"] = redis_url
    port = free_port()
    env["PORTAL_BASE_URL"] = f"http://127.0.0.1:{port}"
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "seed", "--no-demo"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                log.close()
                pytest.fail((tmp_path / "gunicorn.log").read_text())
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_gunicorn_workers_share_sessions_and_data(gunicorn_portal):
    base = gunicorn_portal
    jar = http.cookiejar.CookieJar()

    class KeepHttpCookies(http.cookiejar.DefaultCookiePolicy):
        def return_ok(self, cookie, request):
            # Production cookies are Secure; this test talks plain http on loopback.
            return True

    jar.set_policy(KeepHttpCookies())
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def csrf(path: str) -> str:
        with opener.open(base + path) as page:
            return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.read().decode())[1]

    form = {"account_name": "Gunicorn Ltd", "email": "g@example.com",
            "password": "a long password", "confirm": "a long password",
            "csrf_token": csrf("/auth/register")}
    with opener.open(base + "/auth/register", urllib.parse.urlencode(form).encode()) as reply:
        assert reply.url.endswith("/auth/login")
    form = {"email": "g@example.com", "password": "a long password",
            "csrf_token": csrf("/auth/login")}
    with opener.open(base + "/auth/login", urllib.parse.urlencode(form).encode()) as reply:
        assert reply.url.endswith("/billing/")
    # Many requests spread over both workers: each one sees the same signed-in session.
    for _ in range(12):
        with opener.open(base + "/billing/") as page:
            assert "Billing for Gunicorn Ltd" in page.read().decode()
