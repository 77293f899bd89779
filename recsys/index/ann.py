"""Nearest-neighbour search over unit vectors: one small interface, an Annoy and an exact backend.

Every index directory keeps the exact float32 matrix beside its Annoy file: it answers selective
filters exactly, measures the recall that picks ``search_k`` at build time, and is the whole of the
exact backend. A backend answers "the top ``n`` rows for this query, among the rows of ``mask``";
:func:`make_backend` picks one from what the build recorded (``search_k < 0`` means exact: a tiny or
degenerate catalogue where even a full Annoy scan missed the recall target).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol

import numpy as np
from annoy import AnnoyIndex

METRIC: Final[Literal["angular"]] = "angular"  # on unit vectors: distance² = 2 - 2·cosine
RECALL_K = 10
WIDEN = 4  # how much a filtered over-fetch grows each time it finds too few matches
EXACT = -1  # the search_k a build records when it chose exact search
TIE = 1e-6  # cosines this close to the exact k-th best count as ties

Hits = tuple[np.ndarray, np.ndarray]  # (rows as int64, cosines as float32), best first


class AnnBackend(Protocol):
    """Top-``n`` rows by cosine, optionally only among ``mask``'s rows."""

    def top(self, query: np.ndarray, n: int, mask: np.ndarray | None = None) -> Hits: ...

    def cost(self, n: int, matching: int) -> int:
        """About how many vectors a top-``n`` among ``matching`` rows would score."""
        ...


class ExactBackend:
    """One matrix product over the memory-mapped vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def top(self, query: np.ndarray, n: int, mask: np.ndarray | None = None) -> Hits:
        return exact_top(self.vectors, query, n, None if mask is None else np.flatnonzero(mask))

    def cost(self, n: int, matching: int) -> int:
        return len(self.vectors)


class AnnoyBackend:
    """Annoy with the build's tuned ``search_k``, raised only where ``n`` needs more (``n`` × trees).

    ``search_k`` counts the items Annoy scores, whatever ``n``: the tuned value that gives recall@10
    0.98 gives recall@100 0.97 too (bench/million.py), so a candidate pool of 100 costs what a top 10
    does. Where ``search_k`` would score as many items as there are rows, one exact product is cheaper
    and is used instead. A filter cannot be pushed into Annoy: the search over-fetches by the inverse
    selectivity and widens until ``n`` matches are found, falling back to exact scoring.
    """

    def __init__(self, annoy: AnnoyIndex, vectors: np.ndarray, search_k: int) -> None:
        self.annoy = annoy
        self.vectors = vectors
        self.search_k = search_k
        self.trees = max(1, annoy.get_n_trees())

    def top(self, query: np.ndarray, n: int, mask: np.ndarray | None = None) -> Hits:
        size = len(self.vectors)
        if mask is None:
            if self._search_k(n) >= size:
                return exact_top(self.vectors, query, n)
            return annoy_top(self.annoy, query, n, self._search_k(n))
        matching = int(mask.sum())
        fetch = _fetch(n, size, matching)
        while fetch < size:
            rows, scores = annoy_top(self.annoy, query, fetch, self._search_k(fetch))
            keep = mask[rows]
            if keep.sum() >= min(n, matching):
                return rows[keep][:n], scores[keep][:n]
            fetch *= WIDEN
        return exact_top(self.vectors, query, n, np.flatnonzero(mask))

    def cost(self, n: int, matching: int) -> int:
        return min(len(self.vectors), self._search_k(_fetch(n, len(self.vectors), matching)))

    def _search_k(self, n: int) -> int:
        return max(self.search_k, n * self.trees)


def _fetch(n: int, size: int, matching: int) -> int:
    """How many rows to ask Annoy for so that ``n`` of them likely pass a filter ``matching`` rows pass."""
    return math.ceil(n * size / max(1, matching) * 1.5)


def make_backend(annoy: AnnoyIndex, vectors: np.ndarray, search_k: int) -> AnnBackend:
    """The backend a build chose: exact when it recorded :data:`EXACT`, else Annoy."""
    if search_k == EXACT:
        return ExactBackend(vectors)
    return AnnoyBackend(annoy, vectors, search_k)


@dataclass(frozen=True)
class Tuning:
    search_k: int
    recall: float
    queries: int


def build_annoy(vectors: np.ndarray, path: Path, trees: int, seed: int = 42, jobs: int = -1) -> None:
    """Build and save an Annoy index of ``vectors``; ``jobs`` threads build the trees (-1: one a core;
    the trees then depend on the core count as well as the seed)."""
    index = AnnoyIndex(vectors.shape[1], METRIC)
    index.set_seed(seed)
    for row, vector in enumerate(vectors):
        index.add_item(row, vector)
    index.build(trees, n_jobs=jobs)
    index.save(str(path))
    index.unload()


def load_annoy(path: Path, dim: int) -> AnnoyIndex:
    index = AnnoyIndex(dim, METRIC)
    index.load(str(path))  # memory-mapped: shared by every process on the machine
    return index


def save_vectors(vectors: np.ndarray, path: Path) -> None:
    np.save(path, np.ascontiguousarray(vectors, dtype=np.float32))


def load_vectors(path: Path) -> np.ndarray:
    """The vectors, memory-mapped (shared by every process), as a plain ndarray view: numpy's memmap
    subclass would wrap every slice and score array of a query in a memmap too (measured: a third of
    an exact top-100 over 10,000 rows went to that wrapping)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def exact_top(vectors: np.ndarray, query: np.ndarray, n: int, rows: np.ndarray | None = None) -> Hits:
    """Exact top-``n`` by cosine among ``rows`` (all rows when None): (rows, scores), best first."""
    candidates = vectors if rows is None else vectors[rows]
    scores = candidates @ query
    n = min(n, len(scores))
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    found = top if rows is None else rows[top]
    return found.astype(np.int64), scores[top].astype(np.float32)


def annoy_top(index: AnnoyIndex, query: np.ndarray, n: int, search_k: int) -> Hits:
    rows, distances = index.get_nns_by_vector(query, n, search_k=search_k, include_distances=True)
    d = np.asarray(distances, dtype=np.float32)
    return np.asarray(rows, dtype=np.int64), 1.0 - d * d / 2.0


def tune_search_k(
    index: AnnoyIndex, vectors: np.ndarray, trees: int, target: float, queries: np.ndarray, k: int = RECALL_K
) -> Tuning:
    """Smallest ``search_k`` (doubling from Annoy's default) whose recall@k against exact search ≥ target.

    A hit counts when its cosine reaches the exact k-th best: among tied products (a catalogue's
    duplicates) any one is as right as another. If even a full scan does not reach the target (tiny or
    degenerate data), returns :data:`EXACT`.
    """
    n = len(vectors)
    k = min(k, n)
    kth = exact_kth(vectors, queries, k)
    search_k = k * trees
    while True:
        hits = sum(
            tied_hits(vectors, annoy_top(index, q, k, search_k)[0], q, floor)
            for q, floor in zip(queries, kth, strict=True)
        )
        recall = hits / max(1, k * len(queries))
        if recall >= target:
            return Tuning(search_k, recall, len(queries))
        if search_k >= n * trees:
            return Tuning(EXACT, 1.0, len(queries))
        search_k *= 2


def tied_hits(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray, floor: float) -> int:
    """How many of ``rows`` score at least ``floor``, the exact k-th best cosine (ties count)."""
    return int(np.count_nonzero(np.asarray(vectors[np.sort(rows)]) @ query >= floor - TIE))


def exact_kth(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 65_536) -> np.ndarray:
    """Each query's exact k-th best cosine, reading the (memory-mapped) vectors once, a chunk at a time."""
    best = np.full((len(queries), k), -np.inf, dtype=np.float32)
    for start in range(0, len(vectors), chunk):
        scores = np.asarray(vectors[start : start + chunk], dtype=np.float32) @ queries.T
        merged = np.concatenate([best, scores.T], axis=1)
        best = -np.partition(-merged, k - 1, axis=1)[:, :k]
    return best.min(axis=1)


def sample_queries(vectors: np.ndarray, count: int, seed: int = 7, noise: float = 0.12) -> np.ndarray:
    """Query-like probes: sampled rows pushed well off themselves.

    Real shopper queries sit far from any product (top cosine about 0.5-0.6 with MiniLM); probes this
    noisy land there too, so the tuned search_k holds for queries and not only for near-duplicates.
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(count, len(vectors)), replace=False)
    probes = np.asarray(vectors[rows], dtype=np.float32) + rng.normal(0, noise, (len(rows), vectors.shape[1]))
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return probes.astype(np.float32)
