"""Admin endpoints for the catalogue audit: the stored audit's summary and its findings, paged.

Behind the same bearer token as :mod:`recsys.api.admin` (its ``authorise`` check runs before every view
here). The audit itself is run by ``recsys audit``, the ``recsys.audit`` task and the nightly chain
(:func:`recsys.audit.run_audit`); these views only read what it stored.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from recsys.api import validation  # noqa: F401  (before any @bp.input)
from recsys.api.admin import ADMIN, authorise
from recsys.api.schemas import AuditFindingsQuery, AuditPage, AuditQuery, AuditSummary
from recsys.api.views import reply, state
from recsys.audit.service import audit_findings, audit_summary

bp = APIBlueprint("audit", __name__, tag="admin")
bp.before_request(authorise)
MISSING = {404: "no audit of that version is stored", 400: "a bad version, kind or page"}


@bp.get("/v1/audit")
@bp.input(AuditQuery, location="query", arg_name="params")
@bp.output(AuditSummary, description="the audit's counts per kind, thresholds and timings")
@bp.doc(
    summary="The catalogue audit of the published version", security="bearer", responses={**ADMIN, **MISSING}
)
def summary(params: AuditQuery) -> Response:
    return reply(audit_summary(state().engine.settings, params.version))


@bp.get("/v1/audit/findings")
@bp.input(AuditFindingsQuery, location="query", arg_name="params")
@bp.output(AuditPage, description="a page of findings, best first")
@bp.doc(
    summary="The audit's findings, one kind or all, paged", security="bearer", responses={**ADMIN, **MISSING}
)
def findings(params: AuditFindingsQuery) -> Response:
    page = audit_findings(state().engine.settings, params.version, params.kind, params.page, params.per_page)
    return reply(page)
