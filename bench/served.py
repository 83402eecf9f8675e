"""Servers for the served webhook benchmark: the sandbox alone, a latency proxy, gunicorn, RQ.

The portal runs as in production, under `gunicorn -w 2 app:app`, and reaches "Stripe" over
HTTP: the sandbox served alone (`flask sandbox serve`) on the same store the traffic was built
in, behind a proxy that adds a fixed delay to every API request and counts them.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LatencyProxy:
    """Forward HTTP requests to `target_port` after `delay` seconds; count them."""

    def __init__(self, target_port: int, delay: float = 0.0):
        self.delay = delay
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.requests += 1
                if proxy.delay:
                    time.sleep(proxy.delay)
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP_HEADERS}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def wait_http(url: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    """Wait until `url` answers (any status), or fail with the process's log."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


class Processes:
    """Child processes started for one run, stopped together."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.children: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict) -> tuple[subprocess.Popen, Path]:
        """Start a child in its own process group; its output goes to workdir/name.log."""
        log = self.workdir / f"{name}.log"
        with log.open("a") as output:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append(process)
        return process, log

    def stop(self, process: subprocess.Popen) -> None:
        """Stop one child and everything it started."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.children.remove(process)

    def stop_all(self) -> None:
        """Stop every child still running."""
        for process in list(self.children):
            self.stop(process)


def portal_env(instance: Path, database_url: str, keys: dict, webhook_secret: str,
               api_base: str, redis_url: str | None) -> dict:
    """Return the environment of a portal talking to `api_base` as it would to Stripe."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_",
                                  "WEBHOOK_"))}
    env.update(INSTANCE_PATH=str(instance), DATABASE_URL=database_url,
               STRIPE_SECRET_KEY=keys["secret"], STRIPE_PUBLISHABLE_KEY=keys["publishable"],
               STRIPE_WEBHOOK_SECRET=webhook_secret, STRIPE_API_BASE=api_base,
               PORTAL_ENV="development", PORTAL_BASE_URL="http://127.0.0.1")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env
