"""Serving HTTP: gunicorn for the HTTP services; a small thread server for a worker's probes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from werkzeug.serving import make_server


class _Gunicorn(BaseApplication):
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve_gunicorn(
    app: Flask,
    host: str,
    port: int,
    *,
    workers: int = 1,
    threads: int = 8,
    post_worker_init: Callable[[Any], None] | None = None,
    on_exit: Callable[[Any], None] | None = None,
) -> None:
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        # Trust X-Forwarded-For only from loopback proxies (the API key IP allow-list depends on it).
        "forwarded_allow_ips": "127.0.0.1,::1",
    }
    if post_worker_init:
        options["post_worker_init"] = post_worker_init
    if on_exit:
        options["worker_exit"] = lambda _arbiter, worker: on_exit(worker)
    _Gunicorn(app, options).run()


def serve_probes_in_thread(app: Flask, host: str, port: int) -> Callable[[], None]:
    """A worker service's /healthz, /readyz, /metrics; returns the function that stops it."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="probes", daemon=True)
    thread.start()
    return server.shutdown
