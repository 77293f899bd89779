"""gunicorn settings for ``web``: ``gunicorn -c recsys/api/gunicorn_conf.py 'recsys.api:create_app()'``.

The app is preloaded in the master (settings, index files memory-mapped and shared by the workers), but
no forward pass runs there: torch threads started before ``fork`` hang the children, so the encoder
loads lazily in each worker on its first query. One torch thread per worker; scale with workers.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("RECSYS_TORCH_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

bind = os.environ.get("RECSYS_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("RECSYS_WEB_THREADS", "2"))
preload_app = True
max_requests = 10_000
max_requests_jitter = 1_000
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the Prometheus multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
