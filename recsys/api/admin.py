"""Admin endpoints behind a bearer token: reindex, its progress, product upserts and deletes, cache purge.

The work itself is the core's: :class:`AdminOps` is the small interface the views call (tests may pass
their own to ``create_app(admin=...)``); :class:`CoreAdminOps`, the default, calls the same functions
the CLI and the Celery tasks call (``recsys.reindex``, ``recsys.delta``).
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol

from flask import Blueprint, Response, request

from recsys.api import params
from recsys.api.errors import ApiError
from recsys.api.views import reply, state
from recsys.engine import Engine
from recsys.settings import Settings

bp = Blueprint("admin", __name__)


class AdminOps(Protocol):
    def start_reindex(self, catalogue: str | None) -> dict[str, Any]:
        """Start a full reindex; returns at least ``{"task_id": ...}``."""
        ...

    def reindex_status(self, task_id: str) -> dict[str, Any] | None: ...

    def upsert(self, products: list[dict[str, Any]]) -> dict[str, Any]: ...

    def delete(self, product_id: str) -> dict[str, Any]: ...


class CoreAdminOps:
    """The core's own functions: ``recsys.reindex`` (Celery when a broker is set, else a thread) and
    ``recsys.delta`` (live upserts and deletes on the served version, seen by every engine at once)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

    def start_reindex(self, catalogue: str | None) -> dict[str, Any]:
        from recsys.reindex import start_reindex

        return start_reindex(self.settings, catalogue)

    def reindex_status(self, task_id: str) -> dict[str, Any] | None:
        from recsys.errors import JobNotFoundError
        from recsys.reindex import job_status

        try:
            return job_status(self.settings, task_id)
        except JobNotFoundError:
            return None

    def upsert(self, products: list[dict[str, Any]]) -> dict[str, Any]:
        from recsys.delta import upsert_products

        return upsert_products(self.engine, products)

    def delete(self, product_id: str) -> dict[str, Any]:
        from recsys.delta import delete_products

        return delete_products(self.engine, [product_id])


@bp.before_request
def authorise() -> None:
    expected = state().admin_token
    if not expected:
        raise ApiError(403, "admin_disabled", "admin endpoints are disabled: RECSYS_ADMIN_TOKEN is not set")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(
            401, "unauthorised", "admin endpoints need 'Authorization: Bearer <RECSYS_ADMIN_TOKEN>'"
        )


def _ops() -> AdminOps:
    ops: AdminOps | None = state().admin
    if ops is None:
        raise ApiError(501, "not_implemented", "no admin operations are configured")
    return ops


@bp.post("/v1/reindex")
def reindex() -> Response:
    body = request.get_json(silent=True) if request.content_length else {}
    body = params.json_object(body, ("catalogue",))
    catalogue = body.get("catalogue")
    if catalogue is not None and (not isinstance(catalogue, str) or not catalogue.strip()):
        raise ApiError(400, "invalid_request", "catalogue must be a non-empty path", param="catalogue")
    return reply(_ops().start_reindex(catalogue), 202)


@bp.get("/v1/reindex/<task_id>")
def reindex_status(task_id: str) -> Response:
    record = _ops().reindex_status(task_id)
    if record is None:
        raise ApiError(404, "task_not_found", f"unknown reindex task {task_id!r}", param="task_id")
    return reply({"task_id": task_id, "task": record})


@bp.put("/v1/products")
def upsert() -> Response:
    body = params.json_object(request.get_json(silent=True), ("products",))
    products = body.get("products")
    if (
        not isinstance(products, list)
        or not products
        or len(products) > params.MAX_BATCH
        or not all(isinstance(p, dict) for p in products)
    ):
        raise ApiError(
            400,
            "invalid_request",
            f"products must be a list of 1..{params.MAX_BATCH} product objects",
            param="products",
        )
    result = _ops().upsert(products)
    return reply(result)


@bp.delete("/v1/products/<path:product_id>")
def delete(product_id: str) -> Response:
    return reply(_ops().delete(params.product_id(product_id)))


@bp.post("/v1/cache/purge")
def purge() -> Response:
    return reply({"purged": state().cache.purge()})
