"""Gunicorn reads this file from the working directory: it tells the app how many workers
serve it, so a production app refuses to count rate limits per worker (see portal/config.py)."""
import os


def on_starting(server):
    """Record the worker count before the workers load the app."""
    os.environ["PORTAL_WORKERS"] = str(server.cfg.workers)
