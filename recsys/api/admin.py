"""Admin endpoints behind a bearer token: reindex, its progress, product upserts and deletes, cache purge.

The work itself is the core's: :class:`AdminOps` is the small interface the views call (tests may pass
their own to ``create_app(admin=...)``); :class:`CoreAdminOps`, the default, calls the same functions
the CLI and the Celery tasks call (``recsys.build.pipeline``, ``recsys.build.delta``).
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol

from apiflask import APIBlueprint
from flask import Response, request

from recsys.api import validation  # noqa: F401  (before any @bp.input)
from recsys.api.errors import ApiError
from recsys.api.schemas import DeltaReply, JobReply, Purged, ReindexBody, Started, UpsertBody
from recsys.api.views import reply, state
from recsys.build.jobs import Control
from recsys.build.runner import JobRunner, requested_catalogue, start_reindex
from recsys.build.updates import DeltaWriter
from recsys.query.engine import Engine
from recsys.query.requests import check_product_id
from recsys.settings import Settings

bp = APIBlueprint("admin", __name__, tag="admin")
ADMIN = {401: "no or a wrong bearer token", 403: "admin is disabled: RECSYS_ADMIN_TOKEN is not set"}


class AdminOps(Protocol):
    def start_reindex(self, catalogue: str | None) -> dict[str, Any]:
        """Start a full reindex; returns at least ``{"task_id": ...}``."""
        ...

    def reindex_status(self, task_id: str) -> dict[str, Any] | None: ...

    def upsert(self, products: list[dict[str, Any]]) -> dict[str, Any]: ...

    def delete(self, product_id: str) -> dict[str, Any]: ...


class CoreAdminOps:
    """The core's own functions, as the CLI and the Celery tasks call them: the reindex through the
    job runner the edge chose (Celery's with a broker, else a thread), and live upserts and deletes
    on the served version (seen by the engine at once, by every other process within a second)."""

    def __init__(self, settings: Settings, engine: Engine, control: Control, runner: JobRunner) -> None:
        self.settings = settings
        self.engine = engine
        self.control = control
        self.runner = runner
        self.writer = DeltaWriter(settings, engine.encoder, engine.template)

    def start_reindex(self, catalogue: str | None) -> dict[str, Any]:
        path = None if catalogue is None else requested_catalogue(self.settings, catalogue)
        return start_reindex(self.settings, self.control, self.runner, path)

    def reindex_status(self, task_id: str) -> dict[str, Any] | None:
        record = self.control.job(task_id)
        return None if record is None else record.model_dump()

    def upsert(self, products: list[dict[str, Any]]) -> dict[str, Any]:
        result = self.writer.upsert(products).to_dict()
        self.engine.refresh()
        return result

    def delete(self, product_id: str) -> dict[str, Any]:
        result = self.writer.delete([product_id]).to_dict()
        self.engine.refresh()
        return result


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
@bp.input(ReindexBody, location="json", arg_name="body")
@bp.output(Started, status_code=202, description="the reindex was queued")
@bp.doc(summary="Start a full reindex", security="bearer", responses={**ADMIN, 409: "one is already running"})
def reindex(body: ReindexBody) -> Response:
    return reply(_ops().start_reindex(body.catalogue), 202)


@bp.get("/v1/reindex/<task_id>")
@bp.output(JobReply, description="the job's record: status, phase, shards, texts embedded")
@bp.doc(summary="A reindex's progress", security="bearer", responses={**ADMIN, 404: "no such job"})
def reindex_status(task_id: str) -> Response:
    record = _ops().reindex_status(task_id)
    if record is None:
        raise ApiError(404, "task_not_found", f"unknown reindex task {task_id!r}", param="task_id")
    return reply({"task_id": task_id, "task": record})


@bp.put("/v1/products")
@bp.input(UpsertBody, location="json", arg_name="body")
@bp.output(DeltaReply, description="the delta's new sequence; bad rows are reported and skipped")
@bp.doc(summary="Upsert products (visible within a second)", security="bearer", responses=ADMIN)
def upsert(body: UpsertBody) -> Response:
    return reply(_ops().upsert(body.products))


@bp.delete("/v1/products/<path:product_id>")
@bp.output(DeltaReply, description="the delta's new sequence")
@bp.doc(summary="Delete a product (hidden within a second)", security="bearer", responses=ADMIN)
def delete(product_id: str) -> Response:
    return reply(_ops().delete(check_product_id(product_id)))


@bp.post("/v1/cache/purge")
@bp.output(Purged, description="how many cache entries were dropped")
@bp.doc(summary="Drop every cached result", security="bearer", responses=ADMIN)
def purge() -> Response:
    return reply({"purged": state().cache.purge()})
