"""Prometheus metrics, created per app: a private registry, or multiprocess files under gunicorn.

With ``PROMETHEUS_MULTIPROC_DIR`` set (it must be set before the server starts and emptied between
runs), every gunicorn worker writes its samples to files there and ``/metrics`` aggregates them.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = (
            multiproc_dir if multiproc_dir is not None else os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        )
        # In multiprocess mode samples live in files, not in a registry; metrics are then created
        # unregistered and /metrics collects the files.
        self.registry = CollectorRegistry(auto_describe=True)
        target = None if self.multiproc_dir else self.registry
        self.latency = Histogram(
            "recsys_request_seconds",
            "Request latency by endpoint",
            ["endpoint", "status"],
            buckets=BUCKETS,
            registry=target,
        )
        self.cache = Counter(
            "recsys_cache_requests_total",
            "Cache lookups by cache and outcome",
            ["cache", "result"],
            registry=target,
        )
        self.index_products = Gauge(
            "recsys_index_products",
            "Products in the served index",
            registry=target,
            multiprocess_mode="liveall",
        )
        self.index_version = Gauge(
            "recsys_index_info",
            "The served index version (value 1)",
            ["version"],
            registry=target,
            multiprocess_mode="liveall",
        )
        self.delta_size = Gauge(
            "recsys_index_delta_products",
            "Products in the live delta segment",
            registry=target,
            multiprocess_mode="liveall",
        )
        self.runtime_fallback = Gauge(
            "recsys_query_runtime_fallback",
            "1 when queries fell back from the configured runtime (ONNX) to torch",
            registry=target,
            multiprocess_mode="liveall",
        )
        self._version: str | None = None

    def cache_event(self, kind: str, hit: bool) -> None:
        self.cache.labels(kind, "hit" if hit else "miss").inc()

    def observe_index(self, version: str, products: int, delta: int) -> None:
        if version != self._version:
            if self._version is not None:
                self.index_version.remove(self._version)
            self.index_version.labels(version).set(1)
            self._version = version
        self.index_products.set(products)
        self.delta_size.set(delta)

    def observe_runtime(self, fallen_back: bool) -> None:
        self.runtime_fallback.set(1 if fallen_back else 0)

    def render(self) -> bytes:
        if self.multiproc_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiproc_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)
