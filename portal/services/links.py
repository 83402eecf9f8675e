"""Addresses of portal pages for mails and Stripe, from PORTAL_BASE_URL, never a request's Host."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def portal_base_url() -> str:
    """Return the configured public address of the portal, without a trailing slash."""
    return current_app.config["PORTAL_BASE_URL"].rstrip("/")


def external_url(endpoint: str, **values) -> str:
    """Return the absolute address of a portal page under PORTAL_BASE_URL."""
    base = urlsplit(portal_base_url())
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/",
                                       url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)
