"""Validation during training: nDCG@10 of the held-out training queries over a fixed pool of products.

The pool is every held-out query's relevant products (up to ``RELEVANT_PER_GROUP`` each), its hard
negatives, and a seeded sample of the catalogue up to ``val_pool``; products are scored the way dense
search serves them: ``(1 - w) · cos(query, full text) + w · cos(query, short text)`` (similar items:
the short texts only). The held-out queries are a slice of the *training* queries: evaluation
queries are never seen here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsys.finetune.encoding import Corpus, Tower
from recsys.finetune.pairs import Group

K = 10
RELEVANT_PER_GROUP = 10


@dataclass(frozen=True)
class Validation:
    groups: list[Group]
    pool: np.ndarray  # product indexes, sorted
    short_weight: float

    @classmethod
    def build(
        cls, groups: Sequence[Group], products: int, size: int, short_weight: float, rng: random.Random
    ) -> Validation:
        chosen: set[int] = set()
        for group in groups:
            relevant = sorted(group.grades)
            if len(relevant) > RELEVANT_PER_GROUP:
                relevant = sorted(rng.sample(relevant, RELEVANT_PER_GROUP))
            chosen.update(relevant)
            chosen.update(group.negatives)
            if group.anchor >= 0:
                chosen.add(group.anchor)
        rest = [i for i in range(products) if i not in chosen]
        chosen.update(rng.sample(rest, max(0, min(len(rest), size - len(chosen)))))
        return cls(list(groups), np.array(sorted(chosen), dtype=np.int64), short_weight)

    def score(self, tower: Tower, corpus: Corpus, query_length: int, doc_length: int) -> float:
        """Mean nDCG@10 over the groups (0.0 without any)."""
        if not self.groups:
            return 0.0
        pool = self.pool.tolist()
        full = tower.embed([corpus.full[i] for i in pool], doc_length)
        short = tower.embed([corpus.short[i] for i in pool], doc_length)
        search = [g for g in self.groups if g.kind == "search"]
        similar = [g for g in self.groups if g.kind == "similar"]
        values = []
        if search:
            q = tower.embed([corpus.query(g.query) for g in search], query_length)
            scores = (1.0 - self.short_weight) * (q @ full.T) + self.short_weight * (q @ short.T)
            values += [_ndcg(row, g, pool) for row, g in zip(scores, search, strict=True)]
        if similar:
            a = tower.embed([corpus.short[g.anchor] for g in similar], doc_length)
            scores = a @ short.T
            for row, g in zip(scores, similar, strict=True):
                row[pool.index(g.anchor)] = -np.inf  # a product is not its own neighbour
                values.append(_ndcg(row, g, pool))
        return float(np.mean(values))


def _ndcg(scores: np.ndarray, group: Group, pool: list[int]) -> float:
    order = np.argsort(-scores, kind="stable")[:K]
    gains = [group.grades.get(pool[j], 0.0) for j in order]
    in_pool = sorted((group.grades[p] for p in pool if p in group.grades and p != group.anchor), reverse=True)
    ideal = sum(g / math.log2(r + 2) for r, g in enumerate(in_pool[:K]))
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    return dcg / ideal if ideal > 0 else 0.0
