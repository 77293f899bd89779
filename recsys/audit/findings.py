"""What an audit finds: scored findings with their evidence, category clusters, and the audit as a whole.

A finding is one suspected defect: ``kind`` (:data:`KINDS`), the product ``ids`` involved (a duplicate
group lists all of them), a ``score`` in [0, 1] (higher: surer) and the ``evidence`` a merchandiser
checks it by. Misfiled findings add ``suggested_category``; contradictions name the ``field``.
Clusters are not defects: they say what a large category really contains.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DUPLICATE = "duplicate"
MISFILED = "misfiled"
CONTRADICTION = "contradiction"
PRICE_OUTLIER = "price_outlier"
CLUSTER = "cluster"
KINDS = (DUPLICATE, MISFILED, CONTRADICTION, PRICE_OUTLIER)


@dataclass(frozen=True)
class Finding:
    kind: str
    ids: tuple[str, ...]
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)
    suggested_category: tuple[str, ...] | None = None  # misfiled only
    field: str | None = None  # contradiction only

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """What makes two findings the same one (across two audits of related catalogues)."""
        return (self.kind, self.field or "", tuple(sorted(self.ids)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "ids": list(self.ids), "score": round(self.score, 4)}
        if self.suggested_category is not None:
            out["suggested_category"] = list(self.suggested_category)
        if self.field is not None:
            out["field"] = self.field
        out["evidence"] = self.evidence
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        suggested = data.get("suggested_category")
        return cls(
            kind=str(data["kind"]),
            ids=tuple(str(i) for i in data["ids"]),
            score=float(data["score"]),
            evidence=dict(data.get("evidence") or {}),
            suggested_category=None if suggested is None else tuple(suggested),
            field=data.get("field"),
        )


@dataclass(frozen=True)
class Cluster:
    """A group of products inside one category, labelled by its most distinctive title terms."""

    category: tuple[str, ...]
    label: str
    ids: tuple[str, ...]
    terms: tuple[str, ...]
    examples: tuple[str, ...]  # titles of the products nearest the cluster's centre
    share: float  # of the category's products

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": CLUSTER,
            "category": list(self.category),
            "label": self.label,
            "size": len(self.ids),
            "share": round(self.share, 4),
            "terms": list(self.terms),
            "examples": list(self.examples),
            "ids": list(self.ids),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        return cls(
            category=tuple(data["category"]),
            label=str(data["label"]),
            ids=tuple(str(i) for i in data["ids"]),
            terms=tuple(data["terms"]),
            examples=tuple(data["examples"]),
            share=float(data["share"]),
        )


def ranked(findings: list[Finding]) -> list[Finding]:
    """Best first: by score, then kind and ids so that equal scores keep one order."""
    return sorted(findings, key=lambda f: (-f.score, f.kind, f.ids))


@dataclass(frozen=True)
class AuditResult:
    version: str
    products: int
    findings: list[Finding]  # sorted by score
    clusters: list[Cluster]
    thresholds: dict[str, Any]
    seconds: dict[str, float]  # per step, and "total"
    created_at: str = ""

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(f.kind for f in self.findings)
        return {kind: found.get(kind, 0) for kind in KINDS}

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def summary(self) -> dict[str, Any]:
        """What ``GET /v1/audit`` answers: everything but the findings and clusters themselves."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "products": self.products,
            "counts": self.counts,
            "clusters": len(self.clusters),
            "thresholds": self.thresholds,
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``recsys audit --json`` object."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "products": self.products,
            "counts": self.counts,
            "findings": [f.to_dict() for f in self.findings],
            "clusters": [c.to_dict() for c in self.clusters],
            "thresholds": self.thresholds,
            "seconds": self.seconds,
        }
