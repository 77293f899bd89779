"""Hard negatives from the base model's own near misses: what the served dense index ranks high for a
query that is not relevant to it.

The products are embedded once with the base model, through the short (*similar*) template: a few
tokens each, so a 10,000-product catalogue costs about a minute here, and nothing when the embedding
cache already holds them (the served index embeds the same texts). A near miss is never a product
known to be relevant, nor one whose title holds every word of the query (likely relevant, only
unjudged).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from recsys.finetune.pairs import Example
from recsys.model.encoder import Encoder

Embed = Callable[[Sequence[str]], np.ndarray]  # document texts -> unit vectors (cached where possible)
_TOKEN = re.compile(r"[a-z0-9]+")
_CHUNK = 512


def mine(
    examples: Sequence[Example],
    vectors: np.ndarray,
    pool: np.ndarray,
    encoder: Encoder,
    render_query: Callable[[str], str],
    titles: Sequence[str],
    *,
    depth: int,
    skip: int,
    rng: random.Random,
) -> tuple[list[Example], int]:
    """``examples`` with up to two of the base model's near misses added to their negatives.

    ``vectors`` are the base model's unit vectors of the products ``pool`` (indexes into the catalogue)
    under the similar template. Returns the examples and how many got a mined negative.
    """
    if not len(examples) or not len(pool):
        return list(examples), 0
    texts = sorted({e.query for e in examples if e.kind == "search"})
    position = {t: i for i, t in enumerate(texts)}
    queries = encoder.encode_queries([render_query(t) for t in texts]) if texts else None
    anchors = sorted({e.anchor for e in examples if e.kind == "similar"})
    where = {int(p): i for i, p in enumerate(pool.tolist())}
    anchor_rows = {a: where[a] for a in anchors if a in where}
    k = min(len(pool), depth + skip + 1)
    top_q = _top(queries, vectors, k) if queries is not None else np.zeros((0, k), dtype=np.int64)
    top_a = _top(vectors[list(anchor_rows.values())], vectors, k) if anchor_rows else None
    anchor_pos = {a: i for i, a in enumerate(anchor_rows)}
    words = {t: set(_TOKEN.findall(t.lower())) for t in texts}
    out, mined = [], 0
    for e in examples:
        if e.kind == "search":
            ranked = top_q[position[e.query]]
            query_words = words[e.query]
        elif e.anchor in anchor_pos and top_a is not None:
            ranked = top_a[anchor_pos[e.anchor]]
            query_words = set()
        else:
            out.append(e)
            continue
        candidates = [
            int(pool[j])
            for j in ranked[skip:]
            if int(pool[j]) not in e.known
            and int(pool[j]) != e.anchor
            and not (query_words and query_words <= set(_TOKEN.findall(titles[int(pool[j])].lower())))
        ][:depth]
        if candidates:
            picked = tuple(candidates[:1] + rng.sample(candidates[1:], min(1, len(candidates) - 1)))
            out.append(replace(e, negatives=(*picked, *e.negatives)))
            mined += 1
        else:
            out.append(e)
    return out, mined


def _top(queries: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the ``k`` best rows of ``vectors`` for each query, best first (exact, chunked)."""
    rows = []
    for start in range(0, len(queries), _CHUNK):
        scores = queries[start : start + _CHUNK] @ vectors.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1, kind="stable")[:, ::-1]
        rows.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)


def mining_pool(count: int, must: Sequence[int], size: int, rng: random.Random) -> np.ndarray:
    """The products searched for near misses: all of them, or ``size`` of them (those of ``must`` first,
    then a seeded sample), sorted."""
    if count <= size:
        return np.arange(count)
    chosen = set(must[:size])
    rest = [i for i in range(count) if i not in chosen]
    chosen.update(rng.sample(rest, max(0, size - len(chosen))))
    return np.array(sorted(chosen))
