"""Helpers shared by the sandbox's browser tests: Chromium, a test shop, small servers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

PUBLISHABLE_KEY = "pk_test_sandbox_browser"
SECRET_KEY = "sk_test_sandbox_browser"


MERCHANT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test shop</title></head><body>
<form id="form"><div id="element"></div><button id="pay" type="submit">Save</button></form>
<pre id="result"></pre><p id="events"></p>
<script src="{script}"></script>
<script>
var q = new URLSearchParams(location.search);
var stripe = Stripe(q.get('pk'));
var secret = q.get('secret');
var flow = q.get('flow');
var card = flow.indexOf('card-') === 0;
var deferred = flow === 'deferred-setup';
var elements = stripe.elements(
  deferred ? {{mode: 'setup', currency: 'usd'}} : {{clientSecret: secret}});
var element = elements.create(card ? 'card' : 'payment');
var seen = [];
function note(name) {{
  if (seen.indexOf(name) < 0) {{ seen.push(name); }}
  document.getElementById('events').textContent = seen.join(',');
}}
element.on('ready', function () {{ note('ready'); }});
element.on('change', function (e) {{ if (e.complete) {{ note('complete'); }} }});
element.mount('#element');
function confirm() {{
  var back = location.origin + '/done';
  var pm = {{payment_method: {{card: element, billing_details: {{name: 'Jenny Rosen'}}}}}};
  if (flow === 'card-payment') {{ return stripe.confirmCardPayment(secret, pm); }}
  if (flow === 'card-setup') {{ return stripe.confirmCardSetup(secret, pm); }}
  if (flow === 'next-action') {{ return stripe.handleNextAction({{clientSecret: secret}}); }}
  if (flow === 'setup-redirect') {{
    return stripe.confirmSetup({{elements: elements, confirmParams: {{return_url: back}}}});
  }}
  if (deferred) {{
    return elements.submit().then(function (r) {{
      if (r.error) {{ return r; }}
      return stripe.confirmSetup({{elements: elements, clientSecret: secret,
        redirect: 'if_required', confirmParams: {{return_url: back}}}});
    }});
  }}
  return stripe.confirmSetup({{elements: elements, redirect: 'if_required',
    confirmParams: {{return_url: back}}}});
}}
document.getElementById('form').addEventListener('submit', function (ev) {{
  ev.preventDefault();
  function show(r) {{ document.getElementById('result').textContent = JSON.stringify(r); }}
  confirm().then(show, function (e) {{ show({{thrown: e.message}}); }});
}});
</script></body></html>"""


def merchant_app(script: str) -> Callable:
    """Return a WSGI app serving the test shop's pages, loading Stripe.js from ``script``."""

    def app(environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        if request.path == "/shop":
            body = MERCHANT_PAGE.format(script=script)
        else:
            body = f"<!doctype html><title>{request.path}</title><h1>{request.path}</h1>"
        return Response(body, mimetype="text/html")(environ, start_response)

    return app


def serve(app: Callable) -> tuple[str, Callable[[], None]]:
    """Serve a WSGI app on an ephemeral port; return its URL and a stop function."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_port}", stop


def new_page(browser: Any) -> tuple[Any, Any]:
    """Return a fresh browser context and a page in it with short timeouts."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    return context, tab


