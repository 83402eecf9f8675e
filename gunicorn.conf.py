"""Gunicorn reads this file from the working directory: it tells the app how many workers
serve it, so a production app refuses to count rate limits per worker (see portal/config.py),
and the worker timeout, which the Stripe deadline (STRIPE_REQUEST_DEADLINE) must stay below."""
import os

from prometheus_client import multiprocess

# A worker silent this long is killed; every web request's Stripe calls end 10 s before.
timeout = 30
# Threads per worker (gthread): a request waiting on a slow Stripe holds one thread, not the
# worker, so /health and other pages keep being served beside it.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))


def on_starting(server):
    """Record the worker count before the workers load the app."""
    os.environ["PORTAL_WORKERS"] = str(server.cfg.workers)
    os.environ["PORTAL_WORKER_TIMEOUT"] = str(server.cfg.timeout)


def child_exit(server, worker):
    """Drop a dead worker's live gauges in prometheus_client's multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
