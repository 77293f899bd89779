"""The lexical half of hybrid search: BM25 indexes (bm25s) over each product's text, one of words (k1
0.9, b 0.75) and one of character 3-grams (k1 1.5, b 0.75) of the lexical text, and one of word
bigrams (k1 1.2, b 0.75) of the title; see :mod:`recsys.index.tokens`.

A query's lexical score is ``Σ weight · part/max(part)`` over the parts (words 1, 3-grams 0.5, title
bigrams 0.25; a part whose query has no known term adds nothing), on the same scale for every query
once fusion divides it by its own maximum. Measured on crowdflower and homedepot: words with units
normalised, the title counted twice, a lower k1 and the 3-grams (which catch misspellings) each
helped; together BM25 alone went from 0.790 to 0.815 (crowdflower) and from 0.357 to 0.398
(homedepot) nDCG@10. The title bigrams, which reward the query's words in the query's order, took
the hybrid from 0.826 to 0.835 (crowdflower) and from 0.413 to 0.419 (homedepot).

A part no product has a term for, or that an index built before it existed lacks, is not written
or loaded: the lexical score is the sum of the parts there are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.index.tokens import bigrams, trigrams, words


@dataclass(frozen=True)
class Part:
    tokenise: Callable[[str], list[str]]
    k1: float
    b: float
    weight: float  # of the part's max-normalised score in the lexical score
    title_only: bool = False  # indexes the title, not the whole lexical text


PARTS: dict[str, Part] = {
    "words": Part(words, 0.9, 0.75, 1.0),
    "trigrams": Part(trigrams, 1.5, 0.75, 0.5),
    "bigrams": Part(bigrams, 1.2, 0.75, 0.25, title_only=True),
}


class Lexical:
    def __init__(self, retrievers: dict[str, Any]) -> None:
        self._retrievers = retrievers
        self._vocab: dict[str, dict[str, int]] = {name: r.vocab_dict for name, r in retrievers.items()}

    @classmethod
    def build(cls, texts: Sequence[str], titles: Sequence[str], path: Path) -> None:
        """Index ``texts`` (each product's lexical text) and ``titles``, aligned by row."""
        import bm25s

        for name, part in PARTS.items():
            source = titles if part.title_only else texts
            tokens = [part.tokenise(text) for text in source]
            if not any(tokens):  # no term anywhere (one-word titles): the part is left out
                continue
            retriever = bm25s.BM25(k1=part.k1, b=part.b, method="lucene")
            retriever.index(tokens, show_progress=False)
            retriever.save(str(path / name), show_progress=False)

    @classmethod
    def load(cls, path: Path) -> Lexical:
        import bm25s

        return cls(
            {
                name: bm25s.BM25.load(str(path / name), mmap=True, show_progress=False)
                for name in PARTS
                if (path / name).is_dir()
            }
        )

    def tokens(self, text: str) -> set[str]:
        """The word terms of ``text``."""
        return set(words(text))

    def overlap(self, query: str, documents: Sequence[frozenset[str]]) -> np.ndarray:
        """Share of the query's word terms each document's term set holds: a [0, 1] lexical score for
        documents outside the immutable BM25 index (live upserts), on the scale of the normalised score."""
        terms = self.tokens(query)
        if not terms:
            return np.zeros(len(documents), dtype=np.float32)
        return np.array([len(terms & doc) / len(terms) for doc in documents], dtype=np.float32)

    def scores(self, query: str) -> np.ndarray | None:
        """The lexical score of every document, or None when no query term is in any part's vocabulary."""
        total: np.ndarray | None = None
        for name, scores in self.parts(query).items():
            scores = scores * PARTS[name].weight
            total = scores if total is None else total + scores
        return total

    def parts(self, query: str) -> dict[str, np.ndarray]:
        """Each part's BM25 score of every document over its own maximum (on [0, 1]), for the parts
        that have a query term and a document scoring above 0."""
        out: dict[str, np.ndarray] = {}
        for name, vocab in self._vocab.items():
            ids = [vocab[t] for t in PARTS[name].tokenise(query) if t in vocab]
            if not ids:
                continue
            scores = np.asarray(self._retrievers[name].get_scores_from_ids(ids), dtype=np.float32)
            top = float(scores.max())
            if top > 0:
                out[name] = scores / top
        return out
