"""gunicorn settings for ``web``: ``gunicorn -c recsys/api/gunicorn_conf.py 'recsys.api:create_app()'``.

The app is preloaded in the master (settings, templates, the model directory's description), but no
index is loaded and no forward pass runs there: torch threads started before ``fork`` hang the
children. Each worker loads the published index (memory-mapped, so the page cache is shared) and the
model in ``post_worker_init``, before it accepts a request. One torch thread per worker; scale with
workers.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("RECSYS_TORCH_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

bind = os.environ.get("RECSYS_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# sync: each worker takes one connection at a time, so the kernel spreads requests over the workers
# (measured, crowdflower index, 2 clients: 167 req/s at p50 11.6 ms against gthread's 157 at 12.2 ms,
# whose keep-alive connections can both stick to one worker). One thread: gunicorn silently runs
# gthread instead of sync when given more. Behind a buffering proxy, as gunicorn recommends for sync
# workers; RECSYS_WEB_WORKER_CLASS=gthread with RECSYS_WEB_THREADS=2 or more keeps connections alive
# for clients that talk to gunicorn directly.
worker_class = os.environ.get("RECSYS_WEB_WORKER_CLASS", "sync")
threads = int(os.environ.get("RECSYS_WEB_THREADS", "1"))
preload_app = True
max_requests = int(os.environ.get("RECSYS_WEB_MAX_REQUESTS", "0"))  # 0: never recycle a worker
max_requests_jitter = max_requests // 10
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
limit_request_line = (
    8190  # the longest request line gunicorn allows; the app refuses long queries as JSON 400s
)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the Prometheus multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """Load the index and the model, and run one query, in the new worker before it accepts requests.

    Without this the first request a worker takes (after a start, or a ``max_requests`` recycle)
    waits a second or more for them to load, which shows up as p99 spikes and client timeouts.
    This runs after the fork, in the worker, so the master still never runs a forward pass.
    """
    state = getattr(worker.wsgi, "extensions", {}).get("recsys")
    if state is None:
        return
    try:
        state.engine.refresh()
        state.engine.embed_query("warm up")
    except Exception:  # a worker that cannot warm up still serves; its first query loads the model
        worker.log.exception("warm-up query failed")
