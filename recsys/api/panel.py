"""Admin reads for the playground's index panel: the latest job's progress and the stored audit's charts.

Behind the admin bearer token (:func:`recsys.api.admin.authorise` runs before every view here).

* ``GET /v1/reindex/latest``: the record of the job started last (a reindex, or a fine-tune), so a
  panel can follow the nightly reindex without knowing its id.
* ``GET /v1/audit/charts`` lists the PNG charts of the audit stored beside a version
  (``<data_dir>/audits/<version>/report/*.png``, see :mod:`recsys.audit.store`), and
  ``GET /v1/audit/charts/<name>`` answers one. Only a listed name is ever read: the answer names files,
  never paths, and a version must be one the audit store lists. Evaluation reports are written wherever
  ``recsys eval --report DIR`` was told, outside the data directory, so they are not served.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from apiflask import APIBlueprint
from flask import Response, send_file

from recsys.api import validation  # noqa: F401  (before any @bp.input)
from recsys.api.admin import ADMIN, authorise
from recsys.api.errors import ApiError
from recsys.api.schemas import ChartList, ChartsQuery, LatestJob
from recsys.api.views import reply, state
from recsys.audit.service import audited_version
from recsys.audit.store import REPORT, AuditStore
from recsys.build.jobs import Control, make_control
from recsys.errors import AuditNotFoundError
from recsys.settings import Settings

bp = APIBlueprint("panel", __name__, tag="admin")
bp.before_request(authorise)
CHART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")
PNG: dict[int | str, dict[str, Any]] = {
    200: {"description": "the chart", "content": {"image/png": {"schema": {"type": "string"}}}},
    **{code: {"description": text} for code, text in ADMIN.items()},
    404: {"description": "no such chart"},
}


@bp.get("/v1/reindex/latest")
@bp.output(LatestJob, description="the latest job's record: kind, status, phase, shards, texts embedded")
@bp.doc(summary="The latest job's progress", security="bearer", responses={**ADMIN, 404: "no job yet"})
def latest_job() -> Response:
    control: Control = getattr(state().admin, "control", None) or make_control(state().engine.settings)
    job_id = control.latest_job()
    record = None if job_id is None else control.job(job_id)
    if job_id is None or record is None:
        raise ApiError(404, "task_not_found", "no reindex or fine-tune job has been recorded yet")
    return reply({"task_id": job_id, "task": record.model_dump()})


@bp.get("/v1/audit/charts")
@bp.input(ChartsQuery, location="query", arg_name="params")
@bp.output(ChartList, description="the PNG charts of the stored audit's report")
@bp.doc(summary="The audit report's charts", security="bearer", responses={**ADMIN, 404: "no audit stored"})
def charts(params: ChartsQuery) -> Response:
    version, found = _charts(state().engine.settings, params.version)
    listed = [{"name": name, "bytes": path.stat().st_size} for name, path in sorted(found.items())]
    return reply({"version": version, "charts": listed})


@bp.get("/v1/audit/charts/<name>")
@bp.input(ChartsQuery, location="query", arg_name="params")
@bp.doc(
    summary="One chart of the audit report (PNG)",
    security="bearer",
    responses=PNG,
)
def chart(name: str, params: ChartsQuery) -> Response:
    version, found = _charts(state().engine.settings, params.version)
    path = found.get(name)
    if path is None:
        raise ApiError(404, "chart_not_found", f"the audit of {version} has no chart {name!r}", param="name")
    response = send_file(path, mimetype="image/png", max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _charts(settings: Settings, version: str | None) -> tuple[str, dict[str, Path]]:
    """The audited version and its charts by file name; only versions the store lists are looked at."""
    store = AuditStore(settings.data_dir)
    version = audited_version(settings, version)
    if version not in store.versions():  # no path is ever built from a name the store does not list
        raise AuditNotFoundError(
            f"no audit of index version {version!r} is stored; "
            "run `recsys audit` or wait for the nightly reindex"
        )
    folder = store.path(version) / REPORT
    found = {}
    if folder.is_dir():
        found = {p.name: p for p in folder.iterdir() if CHART.match(p.name) and p.is_file()}
    return version, found
