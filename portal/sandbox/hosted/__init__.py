"""The browser side Stripe hosts, served by the sandbox app itself.

URLs (relative to the sandbox root, so they work under a mount prefix such as ``/_stripe``):

- ``/v3/``: the Stripe.js stand-in; a page loads it with ``<script src="<root>/v3/">`` exactly
  as it would load ``https://js.stripe.com/v3/``. It derives the API base from its own src.
- ``/v3/elements-inner.html``: the iframe Elements mount (card fields) and the hidden
  controller frame that talks to the API with the publishable key.
- ``/c/pay/<session id>``: a Checkout Session's hosted payment page (the session's ``url``).
- ``/three_d_secure/<intent id>?client_secret=...``: the 3-D Secure challenge page with
  Complete and Fail buttons (an intent's ``next_action`` points here).
- ``/invoice/<token>`` and ``/invoice/<token>/pdf``: an invoice's hosted page and its PDF
  (``hosted_invoice_url`` and ``invoice_pdf``).

``register(app)`` adds these routes to the sandbox app.
"""

from __future__ import annotations

from flask import Flask

from . import checkout, invoice, stripe_js, three_d_secure  # noqa: F401  - routes register on bp
from .blueprint import bp


def register(app: Flask) -> None:
    """Add the hosted pages and the Stripe.js stand-in to the sandbox app."""
    app.register_blueprint(bp)
