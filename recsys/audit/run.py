"""One audit of one version: every check over the version's stored products and vectors, timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from recsys.audit.clusters import find_clusters
from recsys.audit.contradictions import find_contradictions
from recsys.audit.data import AuditData
from recsys.audit.duplicates import find_duplicates
from recsys.audit.findings import AuditResult, Finding, ranked
from recsys.audit.misfiled import find_misfiled
from recsys.audit.prices import find_price_outliers
from recsys.audit.thresholds import Thresholds

Check = Callable[[AuditData, Thresholds], list[Finding]]
CHECKS: dict[str, Check] = {
    "duplicates": find_duplicates,
    "misfiled": find_misfiled,
    "contradictions": find_contradictions,
    "prices": find_price_outliers,
}


def audit(data: AuditData, thresholds: Thresholds | None = None, clusters: bool = True) -> AuditResult:
    thresholds = thresholds or Thresholds()
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    findings: list[Finding] = []
    for name, check in CHECKS.items():
        step = time.perf_counter()
        findings += check(data, thresholds)
        seconds[name] = round(time.perf_counter() - step, 3)
    step = time.perf_counter()
    found_clusters = find_clusters(data, thresholds) if clusters else []
    seconds["clusters"] = round(time.perf_counter() - step, 3)
    seconds["total"] = round(time.perf_counter() - started, 3)
    return AuditResult(
        version=data.version,
        products=len(data),
        findings=ranked(findings),
        clusters=found_clusters,
        thresholds=thresholds.to_dict(),
        seconds=seconds,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def audit_path(
    path: Path, thresholds: Thresholds | None = None, clusters: bool = True
) -> tuple[AuditResult, AuditData]:
    """Audit the version directory at ``path`` (loading included in the time); the data comes back too,
    for the report's charts."""
    started = time.perf_counter()
    data = AuditData.load(path)
    loaded = time.perf_counter() - started
    result = audit(data, thresholds, clusters)
    result.seconds["load"] = round(loaded, 3)
    result.seconds["total"] = round(result.seconds["total"] + loaded, 3)
    return result, data
