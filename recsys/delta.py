"""Live product updates between full builds: an append-only delta segment log beside each index version.

Layout, in the shared data directory::

    delta/<base_version>/
      seg-<seq>.json      one batch of operations (upsert with the product, or delete), immutable
      vec-<uuid>.npz      the batch's search and similar vectors (upserts only), written before its seg
      RETIRED             written when a newer build has folded this delta in
    delta/folded.json     every operation folded into a build so far (id → op, product, time), so a
                          rebuild from a catalogue export that still lists a deleted product does not
                          bring it back; an upsert stays until the catalogue file is newer than it

A writer claims the next sequence number with ``os.link`` (atomic, fails if taken), so any number of
API processes and workers can append concurrently. Readers (:class:`DeltaView`) replay the segments in
order: the last operation on an id wins. The engine merges the view into every query, and the next
reindex folds it into the catalogue (:func:`apply_delta`), then carries over whatever arrived meanwhile
(:func:`carry_over`) and retires the old log.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recsys.catalogue import Product, RowError, validate_rows
from recsys.encoder import Encoder
from recsys.errors import IndexNotFoundError, InvalidRequestError
from recsys.filters import FilterColumns
from recsys.settings import Settings
from recsys.store import IndexStore
from recsys.templates import Template, price_bands

MAX_BATCH = 1000
RETIRED = "RETIRED"


def delta_dir(settings: Settings, version: str) -> Path:
    return settings.data_dir / "delta" / version


class Serving(Protocol):
    """What an update needs: an :class:`~recsys.engine.Engine` has it, so has a worker's context."""

    @property
    def settings(self) -> Settings: ...

    @property
    def encoder(self) -> Encoder: ...

    @property
    def template(self) -> Template: ...


@dataclass
class DeltaView:
    """The replayed state of one version's delta: live upserted products with vectors, deleted ids."""

    seq: int = 0
    products: list[dict[str, Any]] = field(default_factory=list)
    search: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    similar: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    deleted: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=dict)
    columns: FilterColumns | None = None
    at: dict[str, float] = field(default_factory=dict)  # when each id was last touched

    @property
    def touched(self) -> set[str]:
        """Ids whose base row must never be served: upserted (overridden) or deleted."""
        return self.deleted | set(self.rows)

    def __len__(self) -> int:
        return len(self.products)

    @classmethod
    def load(cls, folder: Path, after: int = 0, upto: int | None = None) -> DeltaView:
        """Replay ``folder``'s segments with ``after < seq <= upto``."""
        latest: dict[str, tuple[dict[str, Any], np.ndarray, np.ndarray] | None] = {}
        seq = after
        at: dict[str, float] = {}
        for number, segment in _segments(folder):
            if number <= after or (upto is not None and number > upto):
                continue
            seq = number
            vectors = _load_vectors(folder, segment)
            for op in segment["ops"]:
                at[op["id"]] = float(segment.get("at", 0.0))
                latest.pop(op["id"], None)  # keep replay order: a re-upsert moves to the end
                if op["op"] == "delete":
                    latest[op["id"]] = None
                elif vectors is not None:
                    latest[op["id"]] = (op["product"], vectors[0][op["row"]], vectors[1][op["row"]])
        view = cls(seq=seq, at=at)
        live = [(pid, item) for pid, item in latest.items() if item is not None]
        view.deleted = {pid for pid, item in latest.items() if item is None}
        view.products = [item[0] for _, item in live]
        view.rows = {pid: row for row, (pid, _) in enumerate(live)}
        if live:
            view.search = np.stack([item[1] for _, item in live]).astype(np.float32)
            view.similar = np.stack([item[2] for _, item in live]).astype(np.float32)
            view.columns = FilterColumns(view.products)
        return view


@dataclass(frozen=True)
class DeltaUpdate:
    """What an upsert or delete did: the base version it applies to and the delta's new sequence."""

    version: str
    seq: int
    count: int
    errors: list[RowError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "seq": self.seq,
            "count": self.count,
            "errors": [{"line": e.line, "id": e.product_id, "reason": e.reason} for e in self.errors],
        }


def signature(folder: Path) -> int:
    """Changes whenever a segment is added: the directory's mtime (-1 when there is no delta)."""
    try:
        return folder.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def upsert_products(target: Serving, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Validate, embed (through the shared embedding cache) and append products to the live delta.

    Every engine on the data dir sees them within ``DELTA_POLL_S``; ``target`` sees them at once if it
    is an engine. Returns ``{"version", "seq", "count", "errors"}``.
    """
    update = upsert(target.settings, target.encoder, target.template, rows)
    _refresh(target)
    return update.to_dict()


def delete_products(target: Serving, ids: Sequence[str]) -> dict[str, Any]:
    """Delete ``ids`` from every result at once (until the next build drops them for good)."""
    update = delete(target.settings, ids)
    _refresh(target)
    return update.to_dict()


def _refresh(target: Any) -> None:
    refresh = getattr(target, "refresh", None)
    if callable(refresh):
        refresh()


def upsert(
    settings: Settings, encoder: Encoder, template: Template, rows: Sequence[Mapping[str, Any]]
) -> DeltaUpdate:
    from recsys.build import embed, embedding_cache, render

    _check_batch(rows, "products")
    loaded = validate_rows(enumerate(rows, start=1))
    if not loaded.products:
        reasons = "; ".join(str(e) for e in loaded.errors[:5])
        raise InvalidRequestError(f"no valid product in the batch: {reasons}", param="products")
    store = IndexStore(settings.index_dir)
    version = _current(store)
    bands = _bands(store, version, settings, loaded.products)
    rendered = render(loaded.products, template, bands)
    cache = embedding_cache(settings, encoder)
    search_vectors, _ = embed(rendered.search, encoder, cache=cache)
    similar_vectors, _ = embed(rendered.similar, encoder, cache=cache)
    ops = [
        {"op": "upsert", "id": p.id, "product": p.to_dict(), "row": row}
        for row, p in enumerate(loaded.products)
    ]
    version, seq = _append_live(settings, store, version, ops, (search_vectors, similar_vectors))
    return DeltaUpdate(version, seq, len(ops), loaded.errors)


def delete(settings: Settings, ids: Sequence[str]) -> DeltaUpdate:
    _check_batch(ids, "ids")
    if not all(isinstance(i, str) and i.strip() for i in ids):
        raise InvalidRequestError("ids must be non-empty strings", param="ids")
    store = IndexStore(settings.index_dir)
    ops = [{"op": "delete", "id": pid.strip()} for pid in dict.fromkeys(ids)]
    version, seq = _append_live(settings, store, _current(store), ops, None)
    return DeltaUpdate(version, seq, len(ops))


def apply_delta(products: Sequence[Product], view: DeltaView) -> list[Product]:
    """The catalogue with the delta folded in: deletions removed, upserts replacing or appended."""
    upserts = {p["id"]: Product.from_dict(p) for p in view.products}
    out = [upserts.pop(p.id, p) for p in products if p.id not in view.deleted]
    return out + list(upserts.values())


def folded_path(settings: Settings) -> Path:
    return settings.data_dir / "delta" / "folded.json"


def load_folded(settings: Settings) -> dict[str, dict[str, Any]]:
    try:
        folded: dict[str, dict[str, Any]] = json.loads(folded_path(settings).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return folded


def fold(
    settings: Settings, catalogue: Path, products: Sequence[Product], view: DeltaView
) -> tuple[list[Product], dict[str, dict[str, Any]]]:
    """The catalogue with every earlier folded operation and the live delta applied, and the ledger to
    install once that build is published. A tombstone stays while the catalogue still lists the id; an
    upsert stays until the catalogue file is newer than it (then the catalogue is the newer truth)."""
    listed = {p.id for p in products}
    newer = catalogue.stat().st_mtime
    ledger = {
        pid: entry
        for pid, entry in load_folded(settings).items()
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


def install_folded(settings: Settings, ledger: dict[str, dict[str, Any]]) -> None:
    path = folded_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".folded.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(ledger), encoding="utf-8")
    os.replace(tmp, path)


def carry_over(settings: Settings, old: str, new: str, folded_seq: int) -> int:
    """Retire ``old``'s delta after a build that folded it up to ``folded_seq``; later segments move to
    ``new``'s delta. Returns how many segments were carried over. Deltas of pruned versions are removed."""
    source = delta_dir(settings, old)
    carried = 0
    if source.is_dir():
        (source / RETIRED).write_text(new, encoding="utf-8")  # before listing: see _append_live
        for number, segment in _segments(source):
            if number > folded_seq:
                vectors = _load_vectors(source, segment)
                append_segment(delta_dir(settings, new), segment["ops"], vectors)
                carried += 1
    live = set(IndexStore(settings.index_dir).versions())
    root = settings.data_dir / "delta"
    for folder in root.iterdir() if root.is_dir() else []:
        if folder.is_dir() and folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
    return carried


def append_segment(
    folder: Path, ops: list[dict[str, Any]], vectors: tuple[np.ndarray, np.ndarray] | None
) -> int:
    """Write one immutable segment; returns its sequence number."""
    folder.mkdir(parents=True, exist_ok=True)
    segment: dict[str, Any] = {"ops": ops, "vectors": None, "at": time.time()}
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


def _append_live(
    settings: Settings,
    store: IndexStore,
    version: str,
    ops: list[dict[str, Any]],
    vectors: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[str, int]:
    """Append to the published version's delta; if a build retired it meanwhile, append to the new one too
    (operations are idempotent, so a segment carried over twice is harmless)."""
    for _ in range(10):
        folder = delta_dir(settings, version)
        seq = append_segment(folder, ops, vectors)
        if not (folder / RETIRED).exists():
            return version, seq
        version = (folder / RETIRED).read_text(encoding="utf-8").strip() or _current(store)
    return version, seq


def _current(store: IndexStore) -> str:
    version = store.current()
    if version is None:
        raise IndexNotFoundError(f"no index has been published under {store.root}; build one first")
    return version


def _bands(store: IndexStore, version: str, settings: Settings, fresh: Sequence[Product]) -> dict[str, int]:
    """Price bands of ``fresh`` within the catalogue as served (base + delta), like a full build's."""
    base: list[Product] = []
    with (store.path(version) / "products.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            base.append(Product.from_dict(json.loads(line)))
    served = apply_delta(base, DeltaView.load(delta_dir(settings, version)))
    ids = {p.id for p in fresh}
    return price_bands([p for p in served if p.id not in ids] + list(fresh))


def _check_batch(items: Sequence[Any], param: str) -> None:
    if not isinstance(items, Sequence) or isinstance(items, str | bytes) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidRequestError(f"{param} must be a list of 1..{MAX_BATCH} items", param=param)


def _segment_names(folder: Path) -> list[tuple[int, str]]:
    if not folder.is_dir():
        return []
    out = []
    for name in os.listdir(folder):
        if name.startswith("seg-") and name.endswith(".json"):
            out.append((int(name[4:-5]), name))
    return sorted(out)


def _segments(folder: Path) -> list[tuple[int, dict[str, Any]]]:
    return [
        (n, json.loads((folder / name).read_text(encoding="utf-8"))) for n, name in _segment_names(folder)
    ]


def _load_vectors(folder: Path, segment: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    if not segment.get("vectors"):
        return None
    with np.load(folder / segment["vectors"]) as data:
        return np.asarray(data["search"]), np.asarray(data["similar"])
