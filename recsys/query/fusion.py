"""Score fusion: how dense and lexical evidence become one ranking score. Pure functions over the
candidates' score arrays, so they are testable without a model, and the one place ranking changes.

* dense = (1 − short_weight) · cos(query, full text) + short_weight · cos(query, attributes-and-title)
  — the short vector keeps a long description from drowning the title (a build also writes this
  mix of the two vectors as one matrix, dense.npy, for searches that scan every row);
* fused = (1 − lexical_weight) · dense + lexical_weight · lexical, where lexical is on [0, 1]
  (BM25 divided by the query's best BM25; query-term overlap for live-delta products, which the
  immutable BM25 index does not hold). Without lexical evidence the dense score stands alone;
* plus intent_weight · intent, the share of the query's soft constraints (a colour, a brand, a price
  band, ... that query understanding found) that the product satisfies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fusion:
    lexical_weight: float = 0.5
    short_weight: float = 0.5
    intent_weight: float = 0.1


@dataclass(frozen=True)
class CandidateScores:
    """Per-candidate evidence, aligned arrays."""

    full: np.ndarray  # cosine to the *search* template's vector
    short: np.ndarray  # cosine to the *similar* template's vector
    lexical: np.ndarray | None  # on [0, 1]; None when no query term is in the vocabulary
    intent: np.ndarray | None = None  # on [0, 1]: the share of soft constraints met; None without any


def dense(full: np.ndarray, short: np.ndarray, short_weight: float) -> np.ndarray:
    scores = np.asarray(full, dtype=np.float32)
    if short_weight > 0:
        scores = (1.0 - short_weight) * scores + short_weight * np.asarray(short, dtype=np.float32)
    return np.asarray(scores, dtype=np.float32)


def fuse(scores: CandidateScores, fusion: Fusion) -> np.ndarray:
    fused = dense(scores.full, scores.short, fusion.short_weight)
    if scores.lexical is not None:
        fused = (1.0 - fusion.lexical_weight) * fused + fusion.lexical_weight * scores.lexical
    if scores.intent is not None:
        fused = fused + fusion.intent_weight * scores.intent
    return np.asarray(fused, dtype=np.float32)


def breakdown(scores: CandidateScores, fusion: Fusion, i: int) -> dict[str, float | None]:
    """Why candidate ``i`` scored what it did: each piece of evidence and what it added (explain=true)."""
    full, short = float(scores.full[i]), float(scores.short[i])
    dense_score = float(dense(scores.full[i : i + 1], scores.short[i : i + 1], fusion.short_weight)[0])
    lexical = None if scores.lexical is None else float(scores.lexical[i])
    intent = None if scores.intent is None else float(scores.intent[i])
    dense_part = dense_score if lexical is None else (1.0 - fusion.lexical_weight) * dense_score
    lexical_part = 0.0 if lexical is None else fusion.lexical_weight * lexical
    intent_part = 0.0 if intent is None else fusion.intent_weight * intent
    return {
        "cosine_full": round(full, 6),
        "cosine_short": round(short, 6),
        "dense": round(dense_score, 6),
        "lexical": None if lexical is None else round(lexical, 6),
        "intent": None if intent is None else round(intent, 6),
        "dense_part": round(dense_part, 6),
        "lexical_part": round(lexical_part, 6),
        "intent_part": round(intent_part, 6),
        "score": round(dense_part + lexical_part + intent_part, 6),
    }
