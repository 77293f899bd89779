"""What a query runs on: the published version with its live delta merged (:class:`LiveIndex`), and
the :class:`Follower` that keeps it current.

The follower follows the store's ``CURRENT`` pointer: :meth:`Follower.refresh` loads a newly
published version beside the old one and swaps a single reference, so a request in flight finishes
on the version it started with and the old one is released when the last reference goes. It notices
delta changes by other processes by stat-ing the delta directory at most every ``DELTA_POLL_S``.

Rows number the version's products first and the delta's upserted products after them; only
:class:`LiveIndex` knows where one ends and the other begins.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from recsys.catalogue import PriceBands
from recsys.errors import IndexNotFoundError, ProductNotFoundError, RecsysError
from recsys.index import deltalog
from recsys.index.loaded import LoadedIndex
from recsys.index.manifest import Identity
from recsys.index.store import IndexStore
from recsys.query.deltaview import DeltaView
from recsys.query.filters import Filters

log = logging.getLogger(__name__)

DELTA_POLL_S = 0.5


@dataclass(frozen=True)
class LiveIndex:
    """One loaded version and its delta, swapped as a single reference."""

    index: LoadedIndex
    delta: DeltaView
    signature: int
    alive: np.ndarray | None  # base rows not overridden or deleted; None when all are
    terms: tuple[frozenset[str], ...] = ()  # each delta product's stemmed terms, for lexical scoring
    band: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))  # every row's price band

    @classmethod
    def load(cls, index: LoadedIndex, folder_signature: int, delta: DeltaView) -> LiveIndex:
        alive = None
        dead = [index.rows[pid] for pid in delta.touched if pid in index.rows]
        if dead:
            alive = np.ones(len(index), dtype=bool)
            alive[dead] = False
        terms = tuple(frozenset(index.lexical.tokens(_text(p))) for p in delta.products)
        delta_band = [_band(index.bands, p) for p in delta.products]
        band = np.concatenate([index.band, np.array(delta_band, dtype=np.int8)])
        return cls(index, delta, folder_signature, alive, terms, band)

    @cached_property
    def delta_terms(self) -> frozenset[str]:
        """Every delta product's stemmed terms: words spelling correction leaves alone."""
        return frozenset().union(*self.terms)

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def key(self) -> str:
        """What every cached result must be keyed by: ``VERSION``, or ``VERSION+SEQ`` once the delta
        has operations."""
        return self.version if self.delta.seq == 0 else f"{self.version}+{self.delta.seq}"

    @property
    def base_size(self) -> int:
        return len(self.index)

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Base rows that pass ``filters`` and are not superseded by the delta (None: all of them)."""
        mask = self.index.mask(filters)
        if self.alive is None:
            return mask
        return self.alive if mask is None else mask & self.alive

    def delta_rows(self, filters: Filters | None) -> np.ndarray:
        """Rows (in this index's numbering) of the delta products that pass ``filters``."""
        delta = self.delta
        if filters is not None and not filters.is_empty() and delta.columns is not None:
            local = np.flatnonzero(delta.columns.mask(filters))
        else:
            local = np.arange(len(delta))
        return local + self.base_size

    def having(self, name: str, value: str) -> np.ndarray:
        """Over every row (base, then delta): products whose ``name`` (brand, or a vocabulary field such
        as colour, under any attribute that holds it) is ``value``. Unisex products count for men and
        for women."""
        values = [value]
        if name == "gender" and value.lower() in ("men", "women"):
            values.append("unisex")
        if name == "brand":
            choices = [Filters(brand=v) for v in values]
        else:
            sources = self.index.vocabulary.sources.get(name, [name])
            choices = [Filters(attributes={source: v}) for source in sources for v in values]
        base = np.zeros(self.base_size, dtype=bool)
        extra = np.zeros(len(self.delta), dtype=bool)
        for choice in choices:
            base |= self.index.columns.mask(choice)
            if self.delta.columns is not None:
                extra |= self.delta.columns.mask(choice)
        return np.concatenate([base, extra])

    def vectors(self, space: str, rows: np.ndarray) -> np.ndarray:
        """The ``space`` vectors of ``rows``, base or delta."""
        base = rows[rows < self.base_size]
        local = rows[rows >= self.base_size] - self.base_size
        stored = self.index.spaces[space].vectors
        parts = [np.asarray(stored[base], dtype=np.float32)]
        if len(local):
            parts.append(getattr(self.delta, space)[local])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def product(self, row: int) -> dict[str, Any]:
        if row >= self.base_size:
            return self.delta.products[row - self.base_size]
        return self.index.products[row]

    def locate(self, product_id: str) -> tuple[int, np.ndarray]:
        """A product's row and its *similar* vector; deleted and unknown ids raise."""
        delta = self.delta
        if product_id in delta.deleted:
            raise ProductNotFoundError(product_id)
        if product_id in delta.rows:
            local = delta.rows[product_id]
            return self.base_size + local, np.asarray(delta.similar[local], dtype=np.float32)
        row = self.index.rows.get(product_id)
        if row is None:
            raise ProductNotFoundError(product_id)
        return row, np.asarray(self.index.spaces["similar"].vectors[row], dtype=np.float32)


class Follower:
    """Keeps the newest published version (and its delta) loaded; one per process."""

    def __init__(self, store: IndexStore, data_dir: Path, expected: Identity) -> None:
        self.store = store
        self.data_dir = data_dir
        self.expected = expected
        self._index: LoadedIndex | None = None
        self._live: LiveIndex | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.refused: tuple[str, str] | None = None  # a published version that failed to load, and why

    @property
    def loaded_version(self) -> str | None:
        """The version held now, without loading anything (for labelling responses)."""
        index = self._index
        return None if index is None else index.version

    def refresh(self) -> bool:
        """Load the published version if it is not the one held, and re-read its delta if it changed.
        Returns True on a swap of either."""
        current = self.store.current()
        swapped = False
        wanted = current is not None and (self.refused is None or self.refused[0] != current)
        if wanted and (self._index is None or self._index.version != current):
            with self._lock:
                if self._index is None or self._index.version != current:
                    swapped = self._load(str(current))
        index = self._index
        if index is None:
            return False
        before = self._live
        after = self._poll(index)
        return swapped or before is None or before.key != after.key

    def _load(self, version: str) -> bool:
        """Swap to ``version``; a damaged or mismatched one is refused (once, logged) while the loaded
        version keeps serving. With nothing loaded yet, the refusal is raised."""
        previous = self.loaded_version
        try:
            index = LoadedIndex(self.store.path(version), self.expected)
        except RecsysError as exc:
            if self._index is None:
                raise
            self.refused = (version, str(exc))
            log.error("refusing published index %s: %s; still serving %s", version, exc, previous)
            return False
        self._index, self.refused = index, None
        log.info("serving index %s (%d products; was %s)", version, len(index), previous)
        return True

    def current(self) -> LiveIndex:
        """The live index, re-checking the delta at most every DELTA_POLL_S."""
        index = self._index
        if index is None:
            self.refresh()
            index = self._index
        if index is None:
            raise IndexNotFoundError(f"no index has been published under {self.store.root}")
        live = self._live
        if live is None or live.index is not index or time.monotonic() - self._checked >= DELTA_POLL_S:
            live = self._poll(index)
        return live

    def _poll(self, index: LoadedIndex) -> LiveIndex:
        """The live state for ``index``, rebuilt (once, under the lock) if its delta folder changed."""
        folder = deltalog.delta_dir(self.data_dir, index.version)
        sig = deltalog.signature(folder)
        self._checked = time.monotonic()
        live = self._live
        if live is not None and live.index is index and live.signature == sig:
            return live
        with self._lock:
            live = self._live
            if live is not None and live.index is index and live.signature == sig:
                return live
            live = LiveIndex.load(index, sig, DeltaView.load(folder) if sig != -1 else DeltaView())
            self._live = live
            return live


def _band(bands: PriceBands, product: dict[str, Any]) -> int:
    band = bands.band(product.get("category") or (), product.get("price"))
    return -1 if band is None else band


def _text(product: dict[str, Any]) -> str:
    attributes = product.get("attributes") or {}
    parts = [product.get("title"), product.get("brand"), " ".join(product.get("category") or ())]
    parts += [str(v) for v in attributes.values()] + [product.get("description")]
    return " ".join(str(p) for p in parts if p)
