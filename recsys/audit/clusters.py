"""Clusters inside each large category, for merchandising: k-means over the products' similar vectors,
each cluster labelled by the title words most distinctive of it against the rest of its category."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np

from recsys.audit.data import AuditData
from recsys.audit.findings import Cluster
from recsys.audit.thresholds import Thresholds
from recsys.catalogue.vocabulary import words

MAX_CLUSTERS = 12
FIT_SAMPLE = 3000  # a category larger than this is clustered on a sample, then every product assigned
LABEL_TERMS = 3
MIN_TERM_SHARE = 0.15  # of the cluster's titles a label word must appear in
EXAMPLES = 3
STOP = frozenset(["a", "an", "and", "the", "of", "for", "with", "in", "on", "by", "to", "&", "x"])


def find_clusters(data: AuditData, thresholds: Thresholds, seed: int = 0) -> list[Cluster]:
    leaves, leaf_of = data.leaves
    counts = np.bincount(leaf_of, minlength=len(leaves))
    large = [leaf for leaf in range(len(leaves)) if counts[leaf] >= thresholds.cluster_min_category]
    if not large:
        return []
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    out: list[Cluster] = []
    for leaf in large:
        category = leaves[leaf]
        rows = np.flatnonzero(leaf_of == leaf)
        k = max(2, min(MAX_CLUSTERS, round(len(rows) / thresholds.cluster_size)))
        vectors = np.asarray(data.vectors[rows], dtype=np.float32)
        rng = np.random.default_rng(seed)
        fit = vectors[rng.choice(len(rows), FIT_SAMPLE, replace=False)] if len(rows) > FIT_SAMPLE else vectors
        # one thread: many small fits, where a thread pool costs more than it saves (10× on a busy machine);
        # identical listings can leave fewer distinct points than k
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(fit)
        assigned = model.predict(vectors)
        named = {w for part in category for w in words(part)}
        titles = [set(data.title_words[r]) - STOP - named for r in rows]
        overall = Counter(w for t in titles for w in t)
        for c in range(k):
            members = np.flatnonzero(assigned == c)
            if len(members) == 0:
                continue
            terms = _distinctive([titles[m] for m in members], overall, len(rows))
            centre = model.cluster_centers_[c]
            nearest = members[np.argsort(-(vectors[members] @ centre))[:EXAMPLES]]
            out.append(
                Cluster(
                    category=category,
                    label=" / ".join(terms) if terms else "(no distinctive words)",
                    ids=tuple(data.ids[rows[m]] for m in members),
                    terms=tuple(terms),
                    examples=tuple(data.titles[rows[m]] for m in nearest),
                    share=len(members) / len(rows),
                )
            )
    return sorted(out, key=lambda c: (c.category, -len(c.ids)))


def _distinctive(titles: list[set[str]], overall: Counter[str], total: int) -> list[str]:
    """Words frequent in the cluster and rarer in the category: share in cluster × log(lift)."""
    inside = Counter(w for t in titles for w in t)
    n = len(titles)
    scored = []
    for word, count in inside.items():
        share = count / n
        if share < MIN_TERM_SHARE or len(word) < 2:
            continue
        lift = share / (overall[word] / total)
        if lift > 1.0:
            scored.append((share * math.log(lift), word))
    return [w for _, w in sorted(scored, key=lambda s: (-s[0], s[1]))[:LABEL_TERMS]]
