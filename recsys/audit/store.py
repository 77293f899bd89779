"""Audits stored beside the versions they audit, never inside the immutable version directory.

Layout::

    audits/
      <version>/          one complete audit: summary.json, findings.jsonl, clusters.json, report/
      .staging-<tmp>/     an audit being written; never read

An audit is written into a staging directory and renamed into place, so a reader sees a whole audit
or none. Auditing a version again replaces its audit the same way (the old one is renamed aside first,
then deleted).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.audit.findings import AuditResult
from recsys.errors import AuditNotFoundError

SUMMARY = "summary.json"
FINDINGS = "findings.jsonl"
CLUSTERS = "clusters.json"
REPORT = "report"


class AuditStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "audits"

    def path(self, version: str) -> Path:
        path = self.root / version
        if not (path / SUMMARY).is_file():
            audited = ", ".join(self.versions()[-3:]) or "none"
            raise AuditNotFoundError(
                f"no audit of index version {version!r} is stored (audited: {audited}); "
                "run `recsys audit` or wait for the nightly reindex"
            )
        return path

    def versions(self) -> list[str]:
        """Audited versions, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / SUMMARY).is_file())

    def save(self, result: AuditResult, report: Callable[[Path], object] | None = None) -> Path:
        """Write ``result`` (and, with ``report``, the report into ``report/``) and move it into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            with (staged / FINDINGS).open("w", encoding="utf-8") as fh:
                for finding in result.findings:
                    fh.write(json.dumps(finding.to_dict(), ensure_ascii=False) + "\n")
            clusters = [c.to_dict() for c in result.clusters]
            (staged / CLUSTERS).write_text(json.dumps(clusters, ensure_ascii=False), encoding="utf-8")
            if report is not None:
                report(staged / REPORT)
            (staged / SUMMARY).write_text(json.dumps(result.summary(), indent=2), encoding="utf-8")
            target = self.root / result.version
            old = self.root / f".old-{uuid.uuid4().hex}"
            if target.exists():
                os.replace(target, old)
            os.replace(staged, target)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return target

    def summary(self, version: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path(version) / SUMMARY).read_text(encoding="utf-8"))
        return data

    def findings(self, version: str) -> list[dict[str, Any]]:
        with (self.path(version) / FINDINGS).open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    def clusters(self, version: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads((self.path(version) / CLUSTERS).read_text(encoding="utf-8"))
        return data

    def prune(self, keep: set[str]) -> list[str]:
        """Delete the audits of versions not in ``keep`` (versions the index store no longer has)."""
        doomed = [v for v in self.versions() if v not in keep]
        for version in doomed:
            shutil.rmtree(self.root / version, ignore_errors=True)
        return doomed
