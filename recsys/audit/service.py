"""The audit as the edges use it: run and store the audit of a published version (what ``recsys audit``,
the ``recsys.audit`` task and the nightly chain call), and read a stored one back, paged (the API)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from recsys.audit.findings import CLUSTER, KINDS, AuditResult
from recsys.audit.run import audit_path
from recsys.audit.store import AuditStore
from recsys.audit.thresholds import Thresholds
from recsys.errors import IndexNotFoundError, InvalidRequestError
from recsys.index.store import IndexStore
from recsys.settings import Settings

log = logging.getLogger(__name__)

PER_PAGE = 50
MAX_PER_PAGE = 500
FINDING_KINDS = (*KINDS, CLUSTER)


def run_audit(
    settings: Settings,
    version: str | None = None,
    thresholds: Thresholds | None = None,
    report: bool = True,
) -> tuple[AuditResult, Path]:
    """Audit ``version`` (default: the published one), store it beside the version with its report, and
    drop the audits of versions that were pruned. Returns the result and where it is stored."""
    index = IndexStore(settings.index_dir)
    version = version or index.current()
    if version is None:
        raise IndexNotFoundError(f"no index has been published under {index.root}; nothing to audit")
    result, data = audit_path(index.path(version), thresholds)
    store = AuditStore(settings.data_dir)
    write = None
    if report:
        from recsys.audit.report import write_report

        def write(folder: Path) -> None:
            write_report(result, data, folder)

    where = store.save(result, write)
    store.prune(set(index.versions()))
    log.info("audit of %s: %s in %.1fs", version, result.counts, result.seconds["total"])
    return result, where


def audited_version(settings: Settings, version: str | None) -> str:
    """``version``, or the published one."""
    if version:
        return version
    current = IndexStore(settings.index_dir).current()
    if current is None:
        raise IndexNotFoundError("no index has been published yet, so there is no audit to show")
    return current


def audit_summary(settings: Settings, version: str | None = None) -> dict[str, Any]:
    return AuditStore(settings.data_dir).summary(audited_version(settings, version))


def audit_findings(
    settings: Settings,
    version: str | None = None,
    kind: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> dict[str, Any]:
    """One page of a stored audit's findings, best first: all defects, one kind, or the clusters."""
    check_kind(kind)
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidRequestError(f"per_page must be an integer in 1..{MAX_PER_PAGE}", param="per_page")
    store = AuditStore(settings.data_dir)
    version = audited_version(settings, version)
    if kind == CLUSTER:
        items = store.clusters(version)
    else:
        items = [f for f in store.findings(version) if kind is None or f["kind"] == kind]
    pages = max(1, math.ceil(len(items) / per_page))
    if not 1 <= page <= pages:
        raise InvalidRequestError(f"page must be an integer in 1..{pages}", param="page")
    start = (page - 1) * per_page
    return {
        "version": version,
        "kind": kind,
        "page": page,
        "per_page": per_page,
        "pages": pages,
        "total": len(items),
        "findings": items[start : start + per_page],
    }


def check_kind(kind: str | None) -> str | None:
    if kind is not None and kind not in FINDING_KINDS:
        raise InvalidRequestError(f"kind must be one of {', '.join(FINDING_KINDS)}", param="kind")
    return kind
