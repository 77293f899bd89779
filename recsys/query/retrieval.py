"""Candidate retrieval for hybrid search: the top rows of each vector space and of BM25, pooled, with
every candidate's evidence for :func:`recsys.query.fusion.fuse`.

Each retriever contributes its top ``max(k + offset, POOL)`` rows; live-delta products that pass the
filters are always candidates (they are few, and scored exactly).
"""

from __future__ import annotations

import numpy as np

from recsys.query.filters import Filters
from recsys.query.fusion import CandidateScores
from recsys.query.live import LiveIndex

POOL = 100


def candidates(
    live: LiveIndex,
    vector: np.ndarray,
    query: str,
    size: int,
    filters: Filters | None,
    *,
    short_weight: float,
    with_lexical: bool,
    exact_fraction: float,
) -> tuple[np.ndarray, CandidateScores]:
    """Rows (base rows first, then delta rows) and their evidence. The dense candidates are the top
    rows of the dense score itself where the index holds it and a scan is due anyway, else the top
    rows of each vector space."""
    index = live.index
    mask = live.mask(filters)
    size = max(size, POOL)
    dense = index.dense_space(short_weight, size)
    if dense is not None:
        pools = [dense.top(vector, size, mask, exact_fraction)[0]]
    else:
        pools = [index.spaces["search"].top(vector, size, mask, exact_fraction)[0]]
        if short_weight > 0:
            pools.append(index.spaces["similar"].top(vector, size, mask, exact_fraction)[0])
    bm25 = index.lexical.scores(query) if with_lexical else None
    if bm25 is not None and mask is not None:
        bm25 = np.where(mask, bm25, 0.0)
    lexical = bm25 is not None and bm25.max() > 0
    if lexical:
        pools.append(_top_rows(bm25, size))  # type: ignore[arg-type]
    delta_rows = live.delta_rows(filters)
    rows = np.concatenate([np.unique(np.concatenate(pools)), delta_rows])
    scores = CandidateScores(
        full=live.vectors("search", rows) @ vector,
        short=live.vectors("similar", rows) @ vector,
        lexical=None,
    )
    if lexical:
        base = rows[: len(rows) - len(delta_rows)]
        overlap = index.lexical.overlap(query, [live.terms[r - live.base_size] for r in delta_rows])
        normalised = bm25[base] / bm25.max()  # type: ignore[index,union-attr]
        scores = CandidateScores(scores.full, scores.short, np.concatenate([normalised, overlap]))
    return rows, scores


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    positive = int((scores > 0).sum())
    n = min(n, positive)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return np.argpartition(-scores, n - 1)[:n]
