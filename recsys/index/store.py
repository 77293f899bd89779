"""Versioned index directories under ``<data_dir>/index``, published by an atomic pointer flip.

Layout::

    index/
      CURRENT              the published version's name (replaced atomically with os.replace)
      versions/<version>/  one complete, immutable build: manifest.json and its artifacts
      staging/<tmp>/       builds in progress; never read by servers

A build writes into ``staging``, is renamed into ``versions`` when complete, and only then does
``CURRENT`` change, so a reader sees either the old version or the new one, never a partial one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsys.errors import IndexNotFoundError
from recsys.index.manifest import MANIFEST, Manifest


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.staging_dir = self.root / "staging"
        self.pointer = self.root / "CURRENT"

    def current(self) -> str | None:
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def current_path(self) -> Path:
        name = self.current()
        if name is None:
            raise IndexNotFoundError(
                f"no index has been published under {self.root}; run `recsys index build --catalogue PATH`"
            )
        return self.path(name)

    def path(self, version: str) -> Path:
        path = self.versions_dir / version
        if not (path / MANIFEST).is_file():
            raise IndexNotFoundError(f"index version {version!r} does not exist under {self.versions_dir}")
        return path

    def versions(self) -> list[str]:
        """Complete versions, oldest first (names sort by build time)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if (p / MANIFEST).is_file())

    def manifest(self, version: str) -> Manifest:
        return Manifest.load(self.path(version))

    @staticmethod
    def new_version_name() -> str:
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
        return f"{stamp}-{uuid.uuid4().hex[:6]}"

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh directory for a build; removed if the build raises."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="build-", dir=self.staging_dir))
        try:
            yield path
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def commit(self, staged: Path, version: str) -> Path:
        """Move a complete staged build into ``versions`` (atomic rename; not yet published)."""
        if not (staged / MANIFEST).is_file():
            raise IndexNotFoundError(f"staged build {staged} has no {MANIFEST}; refusing to commit it")
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        target = self.versions_dir / version
        os.replace(staged, target)
        _fsync_dir(self.versions_dir)
        return target

    def publish(self, version: str) -> None:
        """Point ``CURRENT`` at ``version``: one atomic rename, visible to every process at once."""
        self.path(version)  # must exist and be complete
        tmp = self.root / f".CURRENT.{uuid.uuid4().hex}"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.pointer)
        _fsync_dir(self.root)

    def rollback(self, to: str | None = None) -> str:
        """Publish ``to``, or the newest version older than the current one."""
        if to is None:
            current = self.current()
            older = [v for v in self.versions() if current is None or v < current]
            if not older:
                raise IndexNotFoundError("no older version to roll back to")
            to = older[-1]
        self.publish(to)
        return to

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` versions; the published one is always kept."""
        current = self.current()
        versions = self.versions()
        doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != current]
        for version in doomed:
            shutil.rmtree(self.versions_dir / version, ignore_errors=True)
        return doomed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
