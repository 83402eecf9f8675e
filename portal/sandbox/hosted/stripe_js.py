"""The Stripe.js stand-in (``/v3/``) and the frame its Elements live in.

A page loads ``<sandbox root>/v3/`` where it would load ``https://js.stripe.com/v3/``; the
script finds the sandbox root from its own ``src``. Card fields live in
``/v3/elements-inner.html`` frames served by the sandbox, so card numbers go from the
browser straight to the sandbox API (with the publishable key), never through the page
that embeds them; the page and the frames talk with ``postMessage``.
"""

from __future__ import annotations

import os

from flask import Response, current_app, render_template, send_from_directory

from .blueprint import bp
from .pages import page


def _hosted_static() -> str:
    """Return the folder holding the hosted pages' scripts and styles."""
    return os.path.join(current_app.static_folder or "", "hosted")


@bp.get("/v3/")
def stripe_js() -> Response:
    """Serve the Stripe.js stand-in."""
    resp = send_from_directory(
        _hosted_static(), "stripe-v3.js", mimetype="text/javascript", max_age=60
    )
    # Pages on any origin load this script, as they load js.stripe.com.
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.get("/v3/elements-inner.html")
def elements_frame() -> Response:
    """Serve the frame that holds card fields or the hidden API controller."""
    return page(render_template("hosted/elements_inner.html"))
