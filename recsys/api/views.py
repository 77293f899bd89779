"""Public endpoints: search, similar items, recommendations, products, index info, health, metrics."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from recsys.api import params
from recsys.cache import Cache
from recsys.engine import Engine
from recsys.errors import InvalidRequestError, RecsysError
from recsys.serving import Page, Service

bp = Blueprint("public", __name__)


@dataclass
class State:
    """Everything the views need, attached to the app in the factory (``app.extensions["recsys"]``)."""

    engine: Engine
    service: Service
    cache: Cache
    metrics: Any  # recsys.api.metrics.Metrics
    admin: Any  # recsys.api.admin.AdminOps | None
    admin_token: str | None


def state() -> State:
    found: State = current_app.extensions["recsys"]
    return found


def served_version() -> str | None:
    version = g.get("index_version")
    if version is None:  # never load an index just to label a response (/healthz, early errors)
        loaded = getattr(state().engine, "_index", None)
        version = getattr(loaded, "version", None)
    return None if version is None else str(version)


def reply(payload: dict[str, Any], status: int = 200) -> Response:
    """JSON with ``index_version`` and ``took_ms`` in the body and in headers."""
    version = served_version()
    took = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 3)
    body = {**payload, "index_version": version, "took_ms": took}
    response = Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )
    response.headers["X-Index-Version"] = version or ""
    response.headers["X-Took-Ms"] = str(took)
    return response


def page_reply(page: Page, k: int, offset: int) -> Response:
    g.index_version = page.index_version
    response = reply(
        {"results": page.results, "k": k, "offset": offset, "count": len(page.results), "cached": page.cached}
    )
    response.headers["X-Cache"] = "hit" if page.cached else "miss"
    return response


@bp.get("/v1/search")
def search() -> Response:
    raw = params.single(request.args, ("q", "k", "offset"))
    q = params.query(raw)
    k, offset = params.page(raw)
    return page_reply(state().service.search(q, k, offset, params.filters(raw)), k, offset)


@bp.get("/v1/products/<path:product_id>/similar")
def similar(product_id: str) -> Response:
    raw = params.single(request.args, ("k", "offset"))
    k, offset = params.page(raw)
    page = state().service.similar(params.product_id(product_id), k, offset, params.filters(raw))
    return page_reply(page, k, offset)


@bp.post("/v1/recommend")
def recommend() -> Response:
    body = params.json_object(
        request.get_json(silent=True), ("positive", "negative", "k", "offset", "filters")
    )
    k, offset = params.page(body, text=False)
    positive = params.id_list(body, "positive", required=True)
    negative = params.id_list(body, "negative", required=False)
    if set(positive) & set(negative):
        raise InvalidRequestError("a product id may not be both positive and negative", param="negative")
    page = state().service.recommend(positive, negative, k, offset, params.body_filters(body))
    return page_reply(page, k, offset)


@bp.get("/v1/products/<path:product_id>")
def product(product_id: str) -> Response:
    params.single(request.args, ())
    engine = state().engine
    found = engine.product(params.product_id(product_id))
    return reply({"product": found})


@bp.get("/v1/index")
def index_info() -> Response:
    params.single(request.args, ())
    engine = state().engine
    index = engine.index
    manifest = index.manifest
    g.index_version = index.version
    return reply(
        {
            "version": index.version,
            "state_key": engine.state_key(),
            "model": {"name": manifest.get("model_name"), "identity": manifest.get("model")},
            "template": {"name": manifest.get("template_name"), "hash": manifest.get("template")},
            "counts": {**manifest.get("counts", {}), "served": len(index)},
            "built_at": manifest.get("built_at"),
            "delta": delta_info(engine),
            "cache": state().cache.name,
        }
    )


def delta_info(engine: Engine) -> dict[str, Any]:
    """The live delta beside the served version: upserted products and its sequence number."""
    delta = engine.delta
    return {"size": len(delta), "sequence": delta.seq}


@bp.get("/healthz")
def healthz() -> Response:
    return reply({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    st = state()
    try:
        version: str | None = st.engine.index.version
    except RecsysError as exc:
        return reply({"status": "unavailable", "index": str(exc), "cache": st.cache.name}, 503)
    cache_ok = st.cache.ping()
    g.index_version = version
    return reply(
        {
            "status": "ready" if cache_ok else "degraded",
            "index": "loaded",
            "cache": st.cache.name,
            "cache_reachable": cache_ok,
        }
    )


@bp.get("/metrics")
def metrics() -> Response:
    st = state()
    try:
        index = st.engine.index
        delta = delta_info(st.engine).get("size") or 0
        st.metrics.observe_index(index.version, len(index), int(delta))
    except RecsysError:
        pass
    return Response(st.metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")
