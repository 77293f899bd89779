"""Exact nearest neighbours inside blocks of products, by blocked matrix products over the memory-mapped
vectors: all pairs of a block at ``chunk`` rows at a time, so memory stays at ``chunk × block`` floats
however large the catalogue. Blocks keep the work to pairs that could matter (the same leaf category,
gender and colour for duplicates) instead of all ``n²``."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CHUNK = 2048

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (row, neighbour row, cosine), row < neighbour


def block_pairs(
    vectors: np.ndarray, queries: np.ndarray, refs: np.ndarray, k: int, threshold: float
) -> Pairs:
    """For each row of ``queries``, its ``k`` nearest rows of ``refs`` (itself excluded) with a cosine of at
    least ``threshold``; each pair once, as (smaller row, larger row, cosine)."""
    empty = np.empty(0, dtype=np.int64)
    if len(queries) == 0 or len(refs) == 0:
        return empty, empty, np.empty(0, dtype=np.float32)
    ref_vectors = np.asarray(vectors[refs], dtype=np.float32)
    found_a, found_b, found_s = [], [], []
    for start in range(0, len(queries), CHUNK):
        rows = queries[start : start + CHUNK]
        sims = np.asarray(vectors[rows], dtype=np.float32) @ ref_vectors.T
        sims[rows[:, None] == refs[None, :]] = -np.inf  # never a product with itself
        take = min(k, len(refs))
        if take < len(refs):
            top = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        else:
            top = np.broadcast_to(np.arange(len(refs)), sims.shape)
        scores = np.take_along_axis(sims, top, axis=1)
        keep = scores >= threshold
        a = np.broadcast_to(rows[:, None], top.shape)[keep]
        b = refs[top[keep]]
        found_a.append(np.minimum(a, b))
        found_b.append(np.maximum(a, b))
        found_s.append(scores[keep])
    return _unique(np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s))


def blocked_pairs(
    vectors: np.ndarray, blocks: Iterable[tuple[np.ndarray, np.ndarray]], k: int, threshold: float
) -> Pairs:
    """:func:`block_pairs` over every ``(queries, refs)`` block, merged."""
    parts = [block_pairs(vectors, q, r, k, threshold) for q, r in blocks]
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32)
    return _unique(*(np.concatenate([p[i] for p in parts]) for i in range(3)))


def _unique(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> Pairs:
    if len(a) == 0:
        return a.astype(np.int64), b.astype(np.int64), s.astype(np.float32)
    order = np.lexsort((b, a))
    a, b, s = a[order], b[order], s[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first].astype(np.int64), b[first].astype(np.int64), s[first].astype(np.float32)
