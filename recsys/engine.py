"""The search engine: hybrid product search, similar items and recommendations over the published index.

The engine follows the store's ``CURRENT`` pointer: :meth:`Engine.refresh` loads a newly published
version beside the old one and swaps a single reference, so a request in flight finishes on the
version it started with and the old one is released when the last reference goes.

Between builds, the version's live delta (:mod:`recsys.delta`) is merged into every query: upserted
products are scored exactly from their delta vectors and override base rows with the same id, deleted
ids are never returned. Result rows ``>= len(index)`` are delta rows. In hybrid search a delta product
is ranked by the same convex mix, with query-term overlap in place of BM25 (the BM25 index is
immutable). The engine notices delta changes by other processes by stat-ing the delta directory at most every
``DELTA_POLL_S`` (and on every :meth:`Engine.refresh`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.build import identity
from recsys.delta import DeltaView, delta_dir, signature
from recsys.encoder import Encoder
from recsys.errors import IndexNotFoundError, InvalidRequestError, ProductNotFoundError
from recsys.filters import Filters
from recsys.index import LoadedIndex
from recsys.settings import Settings
from recsys.store import IndexStore
from recsys.templates import Template, normalise_query

MAX_K = 100
MAX_OFFSET = 1000
MAX_QUERY_CHARS = 512
POOL = 100  # candidates each retriever contributes to hybrid fusion
NEGATIVE_WEIGHT = 0.5
HIDDEN_FIELDS = ("description",)
DELTA_POLL_S = 0.5


@dataclass(frozen=True)
class Hit:
    row: int
    score: float


@dataclass(frozen=True)
class Live:
    """The delta merged into one loaded version, swapped as a single reference."""

    version: str
    signature: int
    delta: DeltaView
    alive: np.ndarray | None  # base rows not overridden or deleted; None when all are
    terms: tuple[frozenset[str], ...] = ()  # each delta product's stemmed terms, for lexical scoring

    @property
    def key(self) -> str:
        return self.version if self.delta.seq == 0 else f"{self.version}+{self.delta.seq}"


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    index: LoadedIndex
    delta: DeltaView | None = None

    @property
    def version(self) -> str:
        return self.index.version

    def product_at(self, row: int) -> dict[str, Any]:
        size = len(self.index)
        if row >= size and self.delta is not None:
            return self.delta.products[row - size]
        return self.index.products[row]

    def to_list(self) -> list[dict[str, Any]]:
        out = []
        for hit in self.hits:
            product = self.product_at(hit.row)
            fields = {k: v for k, v in product.items() if k not in HIDDEN_FIELDS}
            out.append({"id": product["id"], "score": round(hit.score, 6), **fields})
        return out


class Engine:
    def __init__(
        self, settings: Settings, encoder: Encoder, template: Template, store: IndexStore | None = None
    ) -> None:
        self.settings = settings
        self.encoder = encoder
        self.template = template
        self.store = store or IndexStore(settings.index_dir)
        self.expected = identity(settings, encoder, template)
        self._index: LoadedIndex | None = None
        self._live: Live | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    # -- index lifecycle ---------------------------------------------------------------------------

    @property
    def index(self) -> LoadedIndex:
        index = self._index
        if index is None:
            self.refresh()
            index = self._index
        if index is None:
            raise IndexNotFoundError(f"no index has been published under {self.store.root}")
        return index

    def state_key(self) -> str:
        """What every cached result must be keyed by: the served version and its delta's sequence
        (``VERSION`` with no delta, ``VERSION+SEQ`` once products were upserted or deleted)."""
        return self.live()[1].key

    def refresh(self) -> bool:
        """Load the published version if it is not the one being served, and re-read its delta if it
        changed. Returns True on a swap of either."""
        current = self.store.current()
        swapped = False
        if current is not None and (self._index is None or self._index.version != current):
            with self._lock:
                if self._index is None or self._index.version != current:
                    self._index = LoadedIndex(self.store.path(current), self.expected)
                    swapped = True
        index = self._index
        if index is None:
            return False
        before = self._live
        after = self._poll_delta(index)
        return swapped or before is None or before.key != after.key

    @property
    def delta(self) -> DeltaView:
        """The served version's live delta (``len()`` upserted products, ``seq``, ``deleted``)."""
        return self.live()[1].delta

    def live(self) -> tuple[LoadedIndex, Live]:
        """The served index and its merged delta, re-checking the delta at most every DELTA_POLL_S.

        The pair always belongs together: the delta state returned was built for this index.
        """
        index = self.index
        live = self._live
        if live is None or live.version != index.version or time.monotonic() - self._checked >= DELTA_POLL_S:
            live = self._poll_delta(index)
        return index, live

    def _poll_delta(self, index: LoadedIndex) -> Live:
        """The delta state for ``index``, reloaded (once, under the lock) if its folder changed."""
        folder = delta_dir(self.settings, index.version)
        sig = signature(folder)
        self._checked = time.monotonic()
        live = self._live
        if live is not None and live.version == index.version and live.signature == sig:
            return live
        with self._lock:
            live = self._live
            if live is not None and live.version == index.version and live.signature == sig:
                return live
            delta = DeltaView.load(folder) if sig != -1 else DeltaView()
            alive = None
            dead = [index.rows[pid] for pid in delta.touched if pid in index.rows]
            if dead:
                alive = np.ones(len(index), dtype=bool)
                alive[dead] = False
            terms = tuple(frozenset(index.lexical.tokens(_text(p))) for p in delta.products)
            live = Live(index.version, sig, delta, alive, terms)
            self._live = live
            return live

    # -- queries -----------------------------------------------------------------------------------

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = self.encoder.encode_queries([self.template.render_query(query)])[0]
        return vector

    def search(
        self,
        query: str,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> Results:
        """Hybrid search over the candidates of both vector spaces and BM25.

        The dense score mixes the query's cosine to the full product text (the *search* template) with
        its cosine to the short attributes-and-title text (the *similar* template), so a long
        description cannot drown the title; the result is fused convexly with max-normalised BM25.
        """
        check_query(query)
        check_page(k, offset)
        index, live = self.live()
        vector = self.embed_query(query) if query_vector is None else query_vector
        mask = _and(index.mask(filters), live.alive)
        size = max(k + offset, POOL)
        short = self.settings.short_vector_weight
        fraction = self.settings.exact_filter_fraction
        spaces = index.spaces
        candidates = [spaces["search"].top(vector, size, mask, fraction)[0]]
        if short > 0:
            candidates.append(spaces["similar"].top(vector, size, mask, fraction)[0])
        weight = self.settings.hybrid_weight
        bm25 = index.lexical.scores(normalise_query(query)) if weight > 0 else None
        if bm25 is not None and mask is not None:
            bm25 = np.where(mask, bm25, 0.0)
        lexical = bm25 is not None and bm25.max() > 0
        if lexical:
            candidates.append(_top_rows(bm25, size))  # type: ignore[arg-type]
        pool = np.unique(np.concatenate(candidates))
        fused = _dense(spaces["search"].vectors[pool], spaces["similar"].vectors[pool], vector, short)
        if lexical:
            fused = (1.0 - weight) * fused + weight * (bm25[pool] / bm25.max())  # type: ignore[index,union-attr]
        delta = live.delta
        if len(delta):
            rows = _delta_rows(delta, filters)
            extra = _dense(delta.search[rows], delta.similar[rows], vector, short)
            if lexical:
                # Delta products have no BM25 score: the same convex mix, with query-term overlap
                # standing in for normalised BM25, so an upsert is neither buried nor boosted.
                terms = [live.terms[r] for r in rows]
                extra = (1.0 - weight) * extra + weight * index.lexical.overlap(normalise_query(query), terms)
            pool = np.concatenate([pool, rows + len(index)])
            fused = np.concatenate([fused, extra])
        order = np.argsort(-fused, kind="stable")[offset : k + offset]
        return Results([Hit(int(pool[i]), float(fused[i])) for i in order], index, delta)

    def similar(
        self, product_id: str, k: int = 10, offset: int = 0, filters: Filters | None = None
    ) -> Results:
        """Nearest products in the *similar* space, from the stored vector; never the product itself."""
        check_page(k, offset)
        index, live = self.live()
        row, vector = self._locate(index, live, product_id)
        return self._nearest(index, live, vector, {row}, k, offset, filters)

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
    ) -> Results:
        """Products like the ``positive`` ones (a cart, a session) and unlike the ``negative`` ones."""
        check_page(k, offset)
        if not positive:
            raise InvalidRequestError("positive must list at least one product id", param="positive")
        if len(positive) + len(negative) > MAX_K:
            raise InvalidRequestError(
                f"at most {MAX_K} product ids in positive and negative together", param="positive"
            )
        index, live = self.live()
        pos_found = [self._locate(index, live, pid) for pid in positive]
        neg_found = [self._locate(index, live, pid) for pid in negative]
        pos = [row for row, _ in pos_found]
        neg = [row for row, _ in neg_found]
        vector = np.stack([v for _, v in pos_found]).mean(axis=0)
        if neg:
            vector = vector - NEGATIVE_WEIGHT * np.stack([v for _, v in neg_found]).mean(axis=0)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise InvalidRequestError(
                "positive and negative cancel out; give different products", param="negative"
            )
        return self._nearest(index, live, vector / norm, set(pos) | set(neg), k, offset, filters)

    def product(self, product_id: str) -> dict[str, Any]:
        index, live = self.live()
        row, _ = self._locate(index, live, product_id)
        return dict(Results([], index, live.delta).product_at(row))

    def _nearest(
        self,
        index: LoadedIndex,
        live: Live,
        vector: np.ndarray,
        exclude: set[int],
        k: int,
        offset: int,
        filters: Filters | None,
    ) -> Results:
        n = k + offset + len(exclude)
        rows, scores = index.spaces["similar"].top(
            vector, n, _and(index.mask(filters), live.alive), self.settings.exact_filter_fraction
        )
        rows, scores = _merge_delta(rows, scores, index, live.delta, vector, filters)
        order = np.argsort(-scores, kind="stable")
        hits = [Hit(int(rows[i]), float(scores[i])) for i in order if int(rows[i]) not in exclude]
        return Results(hits[offset : offset + k], index, live.delta)

    def _locate(self, index: LoadedIndex, live: Live, product_id: str) -> tuple[int, np.ndarray]:
        """A product's row (delta rows follow the base rows) and its *similar* vector."""
        delta = live.delta
        if product_id in delta.deleted:
            raise ProductNotFoundError(product_id)
        if product_id in delta.rows:
            row = delta.rows[product_id]
            return len(index) + row, np.asarray(delta.similar[row], dtype=np.float32)
        row = self._row(index, product_id)
        return row, np.asarray(index.spaces["similar"].vectors[row], dtype=np.float32)

    @staticmethod
    def _row(index: LoadedIndex, product_id: str) -> int:
        row = index.rows.get(product_id)
        if row is None:
            raise ProductNotFoundError(product_id)
        return row


def check_query(query: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequestError("q must be a non-empty search query", param="q")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidRequestError(
            f"q must be at most {MAX_QUERY_CHARS} characters, got {len(query)}", param="q"
        )


def check_page(k: int, offset: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidRequestError(f"k must be an integer in 1..{MAX_K}, got {k!r}", param="k")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidRequestError(
            f"offset must be an integer in 0..{MAX_OFFSET}, got {offset!r}", param="offset"
        )


def _and(mask: np.ndarray | None, alive: np.ndarray | None) -> np.ndarray | None:
    if alive is None:
        return mask
    return alive if mask is None else mask & alive


def _merge_delta(
    rows: np.ndarray,
    scores: np.ndarray,
    index: LoadedIndex,
    delta: DeltaView,
    vector: np.ndarray,
    filters: Filters | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Add every matching delta product, scored exactly by cosine, to the base candidates."""
    if not len(delta):
        return rows, scores
    candidates = _delta_rows(delta, filters)
    extra = (delta.similar[candidates] @ vector).astype(np.float32)
    return (
        np.concatenate([np.asarray(rows, dtype=np.int64), candidates + len(index)]),
        np.concatenate([np.asarray(scores, dtype=np.float32), extra]),
    )


def _delta_rows(delta: DeltaView, filters: Filters | None) -> np.ndarray:
    """Rows of the delta's products that pass ``filters``."""
    if filters is not None and not filters.is_empty() and delta.columns is not None:
        return np.flatnonzero(delta.columns.mask(filters))
    return np.arange(len(delta))


def _dense(full: np.ndarray, short: np.ndarray, vector: np.ndarray, weight: float) -> np.ndarray:
    """Cosine to the full text, mixed with cosine to the short text by ``weight``."""
    scores = full @ vector
    if weight > 0:
        scores = (1.0 - weight) * scores + weight * (short @ vector)
    return np.asarray(scores, dtype=np.float32)


def _text(product: dict[str, Any]) -> str:
    attributes = product.get("attributes") or {}
    parts = [product.get("title"), product.get("brand"), " ".join(product.get("category") or ())]
    parts += [str(v) for v in attributes.values()] + [product.get("description")]
    return " ".join(str(p) for p in parts if p)


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    positive = int((scores > 0).sum())
    n = min(n, positive)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return np.argpartition(-scores, n - 1)[:n]
