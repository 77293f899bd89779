"""The search engine: hybrid product search, similar items and recommendations over the published index.

The engine follows the store's ``CURRENT`` pointer: :meth:`Engine.refresh` loads a newly published
version beside the old one and swaps a single reference, so a request in flight finishes on the
version it started with and the old one is released when the last reference goes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.build import identity
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


@dataclass(frozen=True)
class Hit:
    row: int
    score: float


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    index: LoadedIndex

    @property
    def version(self) -> str:
        return self.index.version

    def to_list(self) -> list[dict[str, Any]]:
        out = []
        for hit in self.hits:
            product = self.index.products[hit.row]
            fields = {k: v for k, v in product.items() if k not in HIDDEN_FIELDS}
            out.append({"id": product["id"], "score": round(hit.score, 6), **fields})
        return out


class Engine:
    def __init__(self, settings: Settings, encoder: Encoder, template: Template,
                 store: IndexStore | None = None) -> None:
        self.settings = settings
        self.encoder = encoder
        self.template = template
        self.store = store or IndexStore(settings.index_dir)
        self.expected = identity(settings, encoder, template)
        self._index: LoadedIndex | None = None
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
        """What every cached result must be keyed by: the served version (and, later, its live delta)."""
        return self.index.version

    def refresh(self) -> bool:
        """Load the published version if it is not the one being served. Returns True on a swap."""
        current = self.store.current()
        if current is None or (self._index is not None and self._index.version == current):
            return False
        with self._lock:
            if self._index is not None and self._index.version == current:
                return False
            self._index = LoadedIndex(self.store.path(current), self.expected)
        return True

    # -- queries -----------------------------------------------------------------------------------

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = self.encoder.encode_queries([self.template.render_query(query)])[0]
        return vector

    def search(self, query: str, k: int = 10, offset: int = 0, filters: Filters | None = None,
               query_vector: np.ndarray | None = None) -> Results:
        """Hybrid search: a convex fusion of dense cosine and max-normalised BM25 over both candidate pools."""
        check_query(query)
        check_page(k, offset)
        index = self.index
        vector = self.embed_query(query) if query_vector is None else query_vector
        mask = index.mask(filters)
        n = k + offset
        space = index.spaces["search"]
        dense_rows, _ = space.top(vector, max(n, POOL), mask, self.settings.exact_filter_fraction)
        weight = self.settings.hybrid_weight
        bm25 = index.lexical.scores(normalise_query(query)) if weight > 0 else None
        if bm25 is not None and mask is not None:
            bm25 = np.where(mask, bm25, 0.0)
        if bm25 is None or bm25.max() <= 0:
            pool = dense_rows
            fused = space.vectors[pool] @ vector
        else:
            lexical_rows = _top_rows(bm25, max(n, POOL))
            pool = np.union1d(dense_rows, lexical_rows)
            dense = space.vectors[pool] @ vector
            fused = (1.0 - weight) * dense + weight * (bm25[pool] / bm25.max())
        order = np.argsort(-fused, kind="stable")[offset:n]
        return Results([Hit(int(pool[i]), float(fused[i])) for i in order], index)

    def similar(self, product_id: str, k: int = 10, offset: int = 0, filters: Filters | None = None) -> Results:
        """Nearest products in the *similar* space, from the stored vector; never the product itself."""
        check_page(k, offset)
        index = self.index
        row = self._row(index, product_id)
        vector = np.asarray(index.spaces["similar"].vectors[row], dtype=np.float32)
        return self._nearest(index, vector, {row}, k, offset, filters)

    def recommend(self, positive: Sequence[str], negative: Sequence[str] = (), k: int = 10, offset: int = 0,
                  filters: Filters | None = None) -> Results:
        """Products like the ``positive`` ones (a cart, a session) and unlike the ``negative`` ones."""
        check_page(k, offset)
        if not positive:
            raise InvalidRequestError("positive must list at least one product id", param="positive")
        if len(positive) + len(negative) > MAX_K:
            raise InvalidRequestError(f"at most {MAX_K} product ids in positive and negative together",
                                      param="positive")
        index = self.index
        vectors = index.spaces["similar"].vectors
        pos = [self._row(index, pid) for pid in positive]
        neg = [self._row(index, pid) for pid in negative]
        vector = np.asarray(vectors[pos], dtype=np.float32).mean(axis=0)
        if neg:
            vector = vector - NEGATIVE_WEIGHT * np.asarray(vectors[neg], dtype=np.float32).mean(axis=0)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise InvalidRequestError("positive and negative cancel out; give different products",
                                      param="negative")
        return self._nearest(index, vector / norm, set(pos) | set(neg), k, offset, filters)

    def product(self, product_id: str) -> dict[str, Any]:
        index = self.index
        return dict(index.products[self._row(index, product_id)])

    def _nearest(self, index: LoadedIndex, vector: np.ndarray, exclude: set[int], k: int, offset: int,
                 filters: Filters | None) -> Results:
        n = k + offset + len(exclude)
        rows, scores = index.spaces["similar"].top(vector, n, index.mask(filters),
                                                   self.settings.exact_filter_fraction)
        hits = [Hit(int(r), float(s)) for r, s in zip(rows, scores, strict=True) if int(r) not in exclude]
        return Results(hits[offset:offset + k], index)

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
        raise InvalidRequestError(f"q must be at most {MAX_QUERY_CHARS} characters, got {len(query)}", param="q")


def check_page(k: int, offset: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidRequestError(f"k must be an integer in 1..{MAX_K}, got {k!r}", param="k")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidRequestError(f"offset must be an integer in 0..{MAX_OFFSET}, got {offset!r}", param="offset")


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    positive = int((scores > 0).sum())
    n = min(n, positive)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return np.argpartition(-scores, n - 1)[:n]
