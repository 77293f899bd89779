"""Annoy indexes over unit vectors, plus the memory-mapped float32 matrix they were built from.

Annoy is approximate and cannot filter, so every index directory also keeps the exact vectors: they
answer filtered queries exactly, re-score candidates, and measure the recall that picks ``search_k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
from annoy import AnnoyIndex

METRIC: Final[Literal["angular"]] = "angular"  # on unit vectors: distance² = 2 - 2·cosine
RECALL_K = 10


@dataclass(frozen=True)
class Tuning:
    search_k: int
    recall: float
    queries: int


def build_annoy(vectors: np.ndarray, path: Path, trees: int, seed: int = 42) -> None:
    index = AnnoyIndex(vectors.shape[1], METRIC)
    index.set_seed(seed)
    for row, vector in enumerate(vectors):
        index.add_item(row, vector)
    index.build(trees, n_jobs=1)
    index.save(str(path))
    index.unload()


def load_annoy(path: Path, dim: int) -> AnnoyIndex:
    index = AnnoyIndex(dim, METRIC)
    index.load(str(path))  # memory-mapped: shared by every process on the machine
    return index


def save_vectors(vectors: np.ndarray, path: Path) -> None:
    np.save(path, np.ascontiguousarray(vectors, dtype=np.float32))


def load_vectors(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def exact_top(
    vectors: np.ndarray, query: np.ndarray, n: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
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


def annoy_top(index: AnnoyIndex, query: np.ndarray, n: int, search_k: int) -> tuple[np.ndarray, np.ndarray]:
    rows, distances = index.get_nns_by_vector(query, n, search_k=search_k, include_distances=True)
    d = np.asarray(distances, dtype=np.float32)
    return np.asarray(rows, dtype=np.int64), 1.0 - d * d / 2.0


def tune_search_k(
    index: AnnoyIndex, vectors: np.ndarray, trees: int, target: float, queries: np.ndarray, k: int = RECALL_K
) -> Tuning:
    """Smallest ``search_k`` (doubling from Annoy's default) whose recall@k against exact search ≥ target.

    If even a full scan does not reach the target (tiny or degenerate data), returns -1: exact search.
    """
    n = len(vectors)
    k = min(k, n)
    truth = [set(exact_top(vectors, q, k)[0].tolist()) for q in queries]
    search_k = k * trees
    while True:
        hits = sum(
            len(truth_q & set(annoy_top(index, q, k, search_k)[0].tolist()))
            for q, truth_q in zip(queries, truth, strict=True)
        )
        recall = hits / max(1, k * len(queries))
        if recall >= target:
            return Tuning(search_k, recall, len(queries))
        if search_k >= n * trees:
            return Tuning(-1, 1.0, len(queries))
        search_k *= 2


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
