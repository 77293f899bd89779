"""Live product updates between builds: upserts and deletes appended to the served version's delta.

Every engine on the data directory sees them within ``recsys.query.live.DELTA_POLL_S``; the next
reindex folds them in (:mod:`recsys.build.ledger`). An upsert is rendered with the price bands the
served build fitted (stored with the version) and embedded through the shared embedding cache.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recsys.build.texts import embed_rendered, embedding_cache, render
from recsys.catalogue import PriceBands, RowError, validate_rows
from recsys.errors import IndexNotFoundError, InvalidRequestError
from recsys.index import deltalog
from recsys.index.deltalog import Vectors
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import Settings

log = logging.getLogger(__name__)

MAX_BATCH = 1000
APPEND_TRIES = 10


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


class DeltaWriter:
    """Appends upserts and deletes; one per process, so the embedding cache's key index is read once."""

    def __init__(self, settings: Settings, encoder: Encoder, template: Template) -> None:
        self.settings = settings
        self.encoder = encoder
        self.template = template
        self.store = IndexStore(settings.index_dir)
        self.cache = embedding_cache(settings, encoder)

    def upsert(self, rows: Sequence[Mapping[str, Any]]) -> DeltaUpdate:
        """Validate, embed and append ``rows``; bad rows are reported, the good ones applied."""
        _check_batch(rows, "products")
        loaded = validate_rows(enumerate(rows, start=1))
        if not loaded.products:
            reasons = "; ".join(str(e) for e in loaded.errors[:5])
            raise InvalidRequestError(f"no valid product in the batch: {reasons}", param="products")
        version = self._current()
        bands = PriceBands.load(self.store.path(version) / "bands.json").assign(loaded.products)
        rendered = render(loaded.products, self.template, bands)
        search_vectors, similar_vectors, _ = embed_rendered(rendered, self.encoder, cache=self.cache)
        ops = [
            {"op": "upsert", "id": p.id, "product": p.to_dict(), "row": row}
            for row, p in enumerate(loaded.products)
        ]
        version, seq = self._append(version, ops, (search_vectors, similar_vectors))
        log.info(
            "upserted %d products into %s's delta (seq %d, %d rows refused)",
            len(ops),
            version,
            seq,
            len(loaded.errors),
        )
        return DeltaUpdate(version, seq, len(ops), loaded.errors)

    def delete(self, ids: Sequence[str]) -> DeltaUpdate:
        """Hide ``ids`` from every result at once (until the next build drops them for good)."""
        _check_batch(ids, "ids")
        if not all(isinstance(i, str) and i.strip() for i in ids):
            raise InvalidRequestError("ids must be non-empty strings", param="ids")
        ops = [{"op": "delete", "id": pid.strip()} for pid in dict.fromkeys(ids)]
        version, seq = self._append(self._current(), ops, None)
        log.info("deleted %d products from %s's delta (seq %d)", len(ops), version, seq)
        return DeltaUpdate(version, seq, len(ops))

    def _append(self, version: str, ops: list[dict[str, Any]], vectors: Vectors | None) -> tuple[str, int]:
        """Append to the published version's delta; if a build retired it meanwhile, append to the new one
        too (operations are idempotent, so a segment carried over twice is harmless)."""
        for _ in range(APPEND_TRIES):
            folder = deltalog.delta_dir(self.settings.data_dir, version)
            seq = deltalog.append_segment(folder, ops, vectors)
            successor = deltalog.retired_by(folder)
            if successor is None:
                return version, seq
            version = successor or self._current()
        return version, seq

    def _current(self) -> str:
        version = self.store.current()
        if version is None:
            raise IndexNotFoundError(f"no index has been published under {self.store.root}; build one first")
        return version


def _check_batch(items: Sequence[Any], param: str) -> None:
    if not isinstance(items, Sequence) or isinstance(items, str | bytes) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidRequestError(f"{param} must be a list of 1..{MAX_BATCH} items", param=param)
