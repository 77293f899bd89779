"""The live delta's file format: an append-only log of immutable segments beside each index version.

Layout, in the shared data directory::

    delta/<base_version>/
      seg-<seq>.json      one batch of operations (upsert with the product, or delete), immutable
      vec-<uuid>.npz      the batch's search and similar vectors (upserts only), written before its seg
      RETIRED             written when a newer build has folded this delta in; names that build
    delta/folded.json     the fold ledger (see recsys.build.ledger)

A writer claims the next sequence number with ``os.link`` (atomic, fails if taken), so any number of
API processes and workers can append concurrently. Readers replay the segments in order
(:mod:`recsys.query.deltaview`); writers are :mod:`recsys.build.updates` and the reindex.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

RETIRED = "RETIRED"
Vectors = tuple[np.ndarray, np.ndarray]  # (search, similar), one row per upserted product
Segment = dict[str, Any]  # {"ops": [...], "vectors": file name or None, "at": time, "seq": n}


def delta_root(data_dir: Path) -> Path:
    return Path(data_dir) / "delta"


def delta_dir(data_dir: Path, version: str) -> Path:
    return delta_root(data_dir) / version


def signature(folder: Path) -> int:
    """Changes whenever a segment is added: the directory's mtime (-1 when there is no delta)."""
    try:
        return folder.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def segments(folder: Path) -> list[tuple[int, Segment]]:
    """Every segment of ``folder``, in sequence order."""
    return [
        (n, json.loads((folder / name).read_text(encoding="utf-8"))) for n, name in _segment_names(folder)
    ]


def load_vectors(folder: Path, segment: Segment) -> Vectors | None:
    if not segment.get("vectors"):
        return None
    with np.load(folder / segment["vectors"]) as data:
        return np.asarray(data["search"]), np.asarray(data["similar"])


def append_segment(folder: Path, ops: list[dict[str, Any]], vectors: Vectors | None) -> int:
    """Write one immutable segment; returns its sequence number."""
    folder.mkdir(parents=True, exist_ok=True)
    segment: Segment = {"ops": ops, "vectors": None, "at": time.time()}
    if vectors is not None:
        name = f"vec-{uuid.uuid4().hex}.npz"
        tmp = folder / f".{name}"
        with tmp.open("wb") as fh:
            np.savez(
                fh, search=np.asarray(vectors[0], np.float32), similar=np.asarray(vectors[1], np.float32)
            )
        os.replace(tmp, folder / name)
        segment["vectors"] = name
    tmp = folder / f".seg-{uuid.uuid4().hex}"
    try:
        while True:
            seq = max((n for n, _ in _segment_names(folder)), default=0) + 1
            tmp.write_text(json.dumps({**segment, "seq": seq}), encoding="utf-8")
            try:
                os.link(tmp, folder / f"seg-{seq:010d}.json")
            except FileExistsError:
                continue  # another writer took this number
            return seq
    finally:
        tmp.unlink(missing_ok=True)


def retired_by(folder: Path) -> str | None:
    """The version that folded this delta in, or None while it is live."""
    try:
        return (folder / RETIRED).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def retire(folder: Path, new_version: str) -> None:
    (folder / RETIRED).write_text(new_version, encoding="utf-8")


def _segment_names(folder: Path) -> list[tuple[int, str]]:
    if not folder.is_dir():
        return []
    out = []
    for name in os.listdir(folder):
        if name.startswith("seg-") and name.endswith(".json"):
            out.append((int(name[4:-5]), name))
    return sorted(out)
