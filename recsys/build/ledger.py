"""Folding the live delta into a rebuild, and the ledger that keeps folded operations true.

``delta/folded.json`` holds every operation folded into a build so far (id → op, product, time), so a
rebuild from a catalogue export that still lists a deleted product does not bring it back; an upsert
stays until the catalogue file is newer than it. After a publish, :func:`carry_over` retires the old
version's delta and moves the segments that arrived during the build onto the new version.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recsys.catalogue import Product
from recsys.index import deltalog
from recsys.index.store import IndexStore
from recsys.query.deltaview import DeltaView

Ledger = dict[str, dict[str, Any]]


def apply_delta(products: Sequence[Product], view: DeltaView) -> list[Product]:
    """The catalogue with the delta folded in: deletions removed, upserts replacing or appended."""
    upserts = {p["id"]: Product.from_dict(p) for p in view.products}
    out = [upserts.pop(p.id, p) for p in products if p.id not in view.deleted]
    return out + list(upserts.values())


def folded_path(data_dir: Path) -> Path:
    return deltalog.delta_root(data_dir) / "folded.json"


def load_folded(data_dir: Path) -> Ledger:
    try:
        folded: Ledger = json.loads(folded_path(data_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return folded


def fold(
    data_dir: Path, catalogue: Path, products: Sequence[Product], view: DeltaView
) -> tuple[list[Product], Ledger]:
    """The catalogue with every earlier folded operation and the live delta applied, and the ledger to
    install once that build is published. A tombstone stays while the catalogue still lists the id; an
    upsert stays until the catalogue file is newer than it (then the catalogue is the newer truth)."""
    listed = {p.id for p in products}
    newer = catalogue.stat().st_mtime
    ledger = {
        pid: entry
        for pid, entry in load_folded(data_dir).items()
        if (entry["op"] == "delete" and pid in listed) or (entry["op"] == "upsert" and entry["at"] > newer)
    }
    for pid in view.deleted:
        ledger[pid] = {"op": "delete", "at": view.at.get(pid, 0.0)}
    for product in view.products:
        ledger[product["id"]] = {"op": "upsert", "product": product, "at": view.at.get(product["id"], 0.0)}
    combined = DeltaView(
        deleted={pid for pid, e in ledger.items() if e["op"] == "delete"},
        products=[e["product"] for e in ledger.values() if e["op"] == "upsert"],
    )
    return apply_delta(products, combined), ledger


def install_folded(data_dir: Path, ledger: Ledger) -> None:
    path = folded_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".folded.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(ledger), encoding="utf-8")
    os.replace(tmp, path)


def carry_over(data_dir: Path, store: IndexStore, old: str, new: str, folded_seq: int) -> int:
    """Retire ``old``'s delta after a build that folded it up to ``folded_seq``; later segments move to
    ``new``'s delta. Returns how many segments were carried over. Deltas of pruned versions are removed."""
    source = deltalog.delta_dir(data_dir, old)
    carried = 0
    if source.is_dir():
        deltalog.retire(source, new)  # before listing: see recsys.build.updates
        for number, segment in deltalog.segments(source):
            if number > folded_seq:
                vectors = deltalog.load_vectors(source, segment)
                deltalog.append_segment(deltalog.delta_dir(data_dir, new), segment["ops"], vectors)
                carried += 1
    live = set(store.versions())
    root = deltalog.delta_root(data_dir)
    for folder in root.iterdir() if root.is_dir() else []:
        if folder.is_dir() and folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
    return carried
