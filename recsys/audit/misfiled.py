"""Misfiled products: a product that reads, and sits, like another category's products.

The similar vectors embed the category path itself, so a misfiled product's vector is pulled towards
the category it is wrongly filed under (on myntra, a product moved to another sub-category stays nearer
its new category's centroid than its true one more often than not). Two pieces of evidence are therefore
asked for, each blind to the filing:

* **the title**: a naive Bayes model of each leaf category's title words, fitted on the catalogue itself
  with the product left out of its own category, gives the odds of the best other category against the
  product's own;
* **the vector**: with the direction of its own category's mean taken out of the product's vector (what
  every product filed there shares, the category text included), the rest must point at that other
  category's mean.

A product is misfiled when both agree, and that category is suggested. Only leaf categories with enough
products are judged or suggested.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.audit.data import AuditData
from recsys.audit.findings import MISFILED, Finding
from recsys.audit.thresholds import Thresholds

ALPHA = 0.1  # additive smoothing of the word counts
CHUNK = 4096
ODDS_FULL = 20.0  # title log-odds at which the title's half of the score is full
VECTOR_FULL = 0.5  # vector cosine at which the vector's half of the score is full


def title_odds(data: AuditData, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per product: the log-odds of the best eligible other leaf against its own (leave-one-out), and
    that leaf. Multinomial naive Bayes over the title's distinct words."""
    leaves, leaf_of = data.leaves
    n, n_leaves = len(data), len(leaves)
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for row, title in enumerate(data.title_words):
        for word in set(title):
            rows.append(row)
            cols.append(vocab.setdefault(word, len(vocab)))
    x = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, max(1, len(vocab))))
    y = sp.csr_matrix((np.ones(n), (np.arange(n), leaf_of)), shape=(n, n_leaves))
    counts = (y.T @ x).tocsr()  # leaves × words
    totals = np.asarray(counts.sum(axis=1)).ravel()
    sizes = np.bincount(leaf_of, minlength=n_leaves).astype(np.float64)
    denominator = np.log(totals + ALPHA * x.shape[1])
    boost = counts.copy()
    boost.data = np.log1p(boost.data / ALPHA)  # log(count + α) - log(α): zero where a word is unseen
    lengths = np.asarray(x.sum(axis=1)).ravel()
    best_odds = np.full(n, -np.inf)
    best = np.full(n, -1, dtype=np.int64)
    allowed = np.zeros(n_leaves, dtype=bool)
    allowed[eligible] = True
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        part = x[start:stop]
        length = lengths[start:stop, None]
        scores = (
            np.asarray((part @ boost.T).todense()) + length * (np.log(ALPHA) - denominator) + np.log(sizes)
        )
        own_leaf = leaf_of[start:stop]
        own = _own_scores(part, own_leaf, counts, totals, sizes, x.shape[1])
        scores[:, ~allowed] = -np.inf
        scores[np.arange(stop - start), own_leaf] = -np.inf
        top = np.argmax(scores, axis=1)
        best[start:stop] = top
        best_odds[start:stop] = scores[np.arange(stop - start), top] - own
    return best_odds, best


def _own_scores(
    part: sp.csr_matrix,
    own_leaf: np.ndarray,
    counts: sp.csr_matrix,
    totals: np.ndarray,
    sizes: np.ndarray,
    n_words: int,
) -> np.ndarray:
    """Each product's score for its own leaf with the product itself left out of the counts."""
    coo = part.tocoo()
    leaf = own_leaf[coo.row]
    seen = np.asarray(counts[leaf, coo.col]).ravel() - coo.data
    out = np.zeros(part.shape[0])
    np.add.at(out, coo.row, np.log(np.maximum(seen, 0) + ALPHA))
    lengths = np.asarray(part.sum(axis=1)).ravel()
    rest = np.maximum(totals[own_leaf] - lengths, 0)
    return out - lengths * np.log(rest + ALPHA * n_words) + np.log(np.maximum(sizes[own_leaf] - 1, 1))


def vector_agreement(data: AuditData, suggested: np.ndarray) -> np.ndarray:
    """Per product: the cosine between its vector with its own leaf's mean direction taken out and the
    suggested leaf's mean direction."""
    leaves, leaf_of = data.leaves
    means = np.zeros((len(leaves), data.vectors.shape[1]))
    for start in range(0, len(data), CHUNK):
        np.add.at(means, leaf_of[start : start + CHUNK], np.asarray(data.vectors[start : start + CHUNK]))
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    out = np.zeros(len(data))
    for start in range(0, len(data), CHUNK):
        stop = min(start + CHUNK, len(data))
        v = np.asarray(data.vectors[start:stop], dtype=np.float64)
        own = means[leaf_of[start:stop]]
        rest = v - np.einsum("ij,ij->i", v, own)[:, None] * own
        rest /= np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-12)
        out[start:stop] = np.einsum("ij,ij->i", rest, means[np.maximum(suggested[start:stop], 0)])
    return out


def find_misfiled(data: AuditData, thresholds: Thresholds) -> list[Finding]:
    leaves, leaf_of = data.leaves
    sizes = np.bincount(leaf_of, minlength=len(leaves))
    eligible = np.flatnonzero(sizes >= thresholds.misfiled_min_category)
    if len(eligible) < 2:
        return []
    odds, suggested = title_odds(data, eligible)
    agreement = vector_agreement(data, suggested)
    judged = sizes[leaf_of] >= thresholds.misfiled_min_category
    flagged = (
        judged
        & (odds >= thresholds.misfiled_title_odds)
        & (agreement >= thresholds.misfiled_vector)
        & (suggested >= 0)
    )
    findings = []
    for row in np.flatnonzero(flagged).tolist():
        score = 0.5 * min(1.0, odds[row] / ODDS_FULL) + 0.5 * min(1.0, agreement[row] / VECTOR_FULL)
        findings.append(
            Finding(
                kind=MISFILED,
                ids=(data.ids[row],),
                score=float(score),
                suggested_category=leaves[suggested[row]],
                evidence={
                    **data.describe(row),
                    "title_log_odds": round(float(odds[row]), 2),
                    "vector_agreement": round(float(agreement[row]), 4),
                    "products_in_own_category": int(sizes[leaf_of[row]]),
                    "products_in_suggested": int(sizes[suggested[row]]),
                },
            )
        )
    return findings
