"""Values and small helpers the tests share."""
from __future__ import annotations

import os
import re
import socket

import pytest

DEFAULT_PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(client, path: str) -> str:
    """Return the CSRF token of the form on the page at `path`."""
    page = client.get(path)
    match = CSRF_INPUT.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {page.status_code})"
    return match.group(1)


def skip_or_fail(reason: str, required_by: str) -> None:
    """Skip with `reason`, or fail when the environment variable `required_by` is set (CI)."""
    if os.environ.get(required_by):
        pytest.fail(f"{reason} ({required_by} is set, so this may not be skipped)")
    pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign_in(page, base: str, email: str, password: str) -> None:
    """Sign in through the login form."""
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
