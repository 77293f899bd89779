"""BM25 over the rendered product text (bm25s, stemmed), the lexical half of hybrid search."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

STOPWORDS = "en"


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


class Lexical:
    def __init__(self, retriever: Any) -> None:
        self._retriever = retriever
        self._stemmer = _stemmer()
        self._vocab: dict[str, int] = retriever.vocab_dict

    @classmethod
    def build(cls, texts: Sequence[str], path: Path) -> None:
        import bm25s

        tokens = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer(), show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        retriever.save(str(path), show_progress=False)

    @classmethod
    def load(cls, path: Path) -> Lexical:
        import bm25s

        return cls(bm25s.BM25.load(str(path), mmap=True, show_progress=False))

    def tokens(self, text: str) -> set[str]:
        import bm25s

        return set(
            bm25s.tokenize(
                text, stopwords=STOPWORDS, stemmer=self._stemmer, return_ids=False, show_progress=False
            )[0]
        )

    def overlap(self, query: str, documents: Sequence[frozenset[str]]) -> np.ndarray:
        """Share of the query's terms each document's term set holds: a [0, 1] lexical score for
        documents outside the immutable BM25 index (live upserts), on the scale of max-normalised BM25."""
        terms = self.tokens(query)
        if not terms:
            return np.zeros(len(documents), dtype=np.float32)
        return np.array([len(terms & doc) / len(terms) for doc in documents], dtype=np.float32)

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 score of every document, or None when no query term is in the vocabulary."""
        import bm25s

        tokens = bm25s.tokenize(
            query, stopwords=STOPWORDS, stemmer=self._stemmer, return_ids=False, show_progress=False
        )[0]
        ids = [self._vocab[t] for t in tokens if t in self._vocab]
        if not ids:
            return None
        return np.asarray(self._retriever.get_scores_from_ids(ids), dtype=np.float32)
