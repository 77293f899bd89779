"""Public endpoints: search, similar items, recommendations, products, index info, health, metrics.

Each endpoint declares its parameters and answers once (:mod:`recsys.api.schemas`); APIFlask validates
the request with them before the view runs and documents them at ``/openapi.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app, g

from recsys.api import validation  # noqa: F401  (before any @bp.input)
from recsys.api.schemas import Empty, Health, IndexInfo, ProductReply, Readiness, ResultPage
from recsys.errors import RecsysError
from recsys.query.cache import Cache
from recsys.query.engine import Engine
from recsys.query.requests import RecommendBody, SearchParams, SimilarParams, check_product_id
from recsys.query.service import Page, Service

log = logging.getLogger(__name__)
bp = APIBlueprint("public", __name__, tag="search")
NOT_FOUND = {404: "no product with that id"}
PROMETHEUS = "text/plain"
METRICS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format", "content": {PROMETHEUS: {"schema": {"type": "string"}}}}
}


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
        version = state().engine.follower.loaded_version
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
    body = {
        "results": page.results,
        "k": k,
        "offset": offset,
        "count": len(page.results),
        "cached": page.cached,
    }
    if page.intent is not None:
        body["intent"] = page.intent
    response = reply(body)
    response.headers["X-Cache"] = "hit" if page.cached else "miss"
    return response


@bp.get("/v1/search")
@bp.input(SearchParams, location="query", arg_name="params")
@bp.output(ResultPage, description="a page of products, best first")
@bp.doc(summary="Product search: hybrid dense and BM25 ranking, with filters")
def search(params: SearchParams) -> Response:
    understand = params.intent == "on"
    page = state().service.search(
        params.q, params.k, params.offset, params.filters, understand, params.explain
    )
    return page_reply(page, params.k, params.offset)


@bp.get("/v1/products/<path:product_id>/similar")
@bp.input(SimilarParams, location="query", arg_name="params")
@bp.output(ResultPage, description="similar products, nearest first; never the product itself")
@bp.doc(summary="Similar items (the 'you may also like' widget)", responses=NOT_FOUND)
def similar(product_id: str, params: SimilarParams) -> Response:
    page = state().service.similar(check_product_id(product_id), params.k, params.offset, params.filters)
    return page_reply(page, params.k, params.offset)


@bp.post("/v1/recommend")
@bp.input(RecommendBody, location="json", arg_name="body")
@bp.output(ResultPage, description="products like the positive ones and unlike the negative ones")
@bp.doc(summary="Recommendations for a cart or a session", responses=NOT_FOUND)
def recommend(body: RecommendBody) -> Response:
    service = state().service
    page = service.recommend(body.positive, body.negative, body.k, body.offset, body.filters.filters)
    return page_reply(page, body.k, body.offset)


@bp.get("/v1/products/<path:product_id>")
@bp.input(Empty, location="query", arg_name="params")
@bp.output(ProductReply, description="the product as served (the live delta included)")
@bp.doc(summary="One product", responses=NOT_FOUND)
def product(product_id: str, params: Empty) -> Response:
    return reply({"product": state().engine.product(check_product_id(product_id))})


@bp.get("/v1/index")
@bp.input(Empty, location="query", arg_name="params")
@bp.output(IndexInfo, description="the served version, its model, template, counts and live delta")
@bp.doc(summary="The served index", responses={503: "no index has been published"})
def index_info(params: Empty) -> Response:
    st = state()
    live = st.engine.live()
    manifest = live.index.manifest
    g.index_version = live.version
    return reply(
        {
            "version": live.version,
            "state_key": live.key,
            "model": {"name": manifest.model_name, "identity": manifest.model},
            "template": {"name": manifest.template_name, "hash": manifest.template},
            "counts": {**manifest.counts.model_dump(), "served": live.base_size},
            "built_at": manifest.built_at,
            "delta": {"size": len(live.delta), "sequence": live.delta.seq},
            "cache": st.cache.name,
            **_runtime(st.engine),
        }
    )


@bp.get("/healthz")
@bp.output(Health, description="the process answers")
@bp.doc(summary="Liveness")
def healthz() -> Response:
    return reply({"status": "ok"})


@bp.get("/readyz")
@bp.output(Readiness, description="ready or degraded: serving")
@bp.doc(summary="Readiness", responses={503: "no index can be served"})
def readyz() -> Response:
    st = state()
    try:
        version: str | None = st.engine.live().version
    except RecsysError as exc:
        return reply({"status": "unavailable", "index": str(exc), "cache": st.cache.name}, 503)
    cache_ok = st.cache.ping()
    runtime = _runtime(st.engine)
    refused = st.engine.follower.refused
    g.index_version = version
    degraded = not cache_ok or runtime["query_runtime_fallback"] is not None or refused is not None
    body = {
        "status": "degraded" if degraded else "ready",
        "index": "loaded",
        "cache": st.cache.name,
        "cache_reachable": cache_ok,
        **runtime,
    }
    if refused is not None:
        body["refused"] = {"version": refused[0], "reason": refused[1]}
    return reply(body)


@bp.get("/metrics")
@bp.doc(summary="Prometheus metrics", responses=METRICS)
def metrics() -> Response:
    st = state()
    st.metrics.observe_runtime(st.engine.encoder.fallback is not None)
    try:
        live = st.engine.live()
        st.metrics.observe_index(live.version, live.base_size, len(live.delta))
    except RecsysError as exc:
        log.warning("metrics: no index to describe (%s)", exc)
    return Response(st.metrics.render(), content_type=f"{PROMETHEUS}; version=0.0.4; charset=utf-8")


def _runtime(engine: Engine) -> dict[str, Any]:
    return {"query_runtime": engine.encoder.runtime, "query_runtime_fallback": engine.encoder.fallback}
