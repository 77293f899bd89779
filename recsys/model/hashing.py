"""A deterministic stand-in encoder: each token hashes to a fixed random unit vector, a text is the
normalised sum of its tokens' vectors.

Texts that share words get a positive cosine, so search, similar items, filters and the delta behave
sensibly, at thousands of texts a second and with no model at all. It is for the fast test tier and
for benchmarks that measure the index rather than the model (the million-product one); it is never
what a shop serves, and its identity says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from recsys.model.encoder import Progress

TOKEN = re.compile(r"[a-z0-9]+")


class HashEncoder:
    def __init__(self, dim: int = 384) -> None:
        self._dim = dim

    @property
    def identity(self) -> str:
        return f"hash-{self._dim}"

    @property
    def query_identity(self) -> str:
        return self.identity

    @property
    def document_identity(self) -> str:
        return self.identity

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def runtime(self) -> str:
        return "hash"

    @property
    def fallback(self) -> str | None:
        return None

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        vectors = self._encode(texts)
        if progress is not None:
            progress(len(texts))
        return vectors

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = TOKEN.findall(text.lower()) or ["<empty>"]
            vector = np.sum([_token_vector(t, self._dim) for t in tokens], axis=0)
            out[row] = vector / max(float(np.linalg.norm(vector)), 1e-9)
        return out


@lru_cache(maxsize=1 << 16)
def _token_vector(token: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)
