"""Catalogue intelligence from the vectors a reindex already computed: near-duplicates, misfiled products,
contradictory attributes, price outliers and what each large category contains.

:func:`run_audit` audits a published version and stores the result beside it (the CLI, the Celery task
and the nightly chain call it); :class:`AuditStore` reads stored audits back; :func:`audit` runs the checks
over an :class:`AuditData` in memory. Pure core: no Flask, no Celery.
"""

from recsys.audit.data import AuditData
from recsys.audit.findings import KINDS, AuditResult, Cluster, Finding
from recsys.audit.run import audit, audit_path
from recsys.audit.service import audit_findings, audit_summary, run_audit
from recsys.audit.store import AuditStore
from recsys.audit.thresholds import Thresholds

__all__ = [
    "KINDS",
    "AuditData",
    "AuditResult",
    "AuditStore",
    "Cluster",
    "Finding",
    "Thresholds",
    "audit",
    "audit_findings",
    "audit_path",
    "audit_summary",
    "run_audit",
]
