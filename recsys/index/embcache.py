"""A content-addressed store of document vectors, shared by every build and worker through the data dir.

A vector is keyed by the hash of (model identity, rendered text): the text already carries the
template's rendering of every attribute, so an unchanged product is never embedded twice, and a
product whose rendering changed (new price band, new template) is. Writers never modify a file:
each batch lands as a new immutable segment (``<uuid>.keys.npy`` + ``<uuid>.vecs.npy``, renamed
into place), so any number of workers on any number of machines can add concurrently.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

KEY_BYTES = 16


class EmbeddingCache:
    def __init__(self, root: Path, model_identity: str, dim: int) -> None:
        self.dir = Path(root) / model_identity
        self.model = model_identity
        self.dim = dim
        self._index: dict[bytes, tuple[str, int]] = {}
        self._segments: dict[str, np.ndarray] = {}

    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.model}\x00{text}".encode()).digest()[:KEY_BYTES]

    def get(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Vectors for ``texts`` (rows of misses are zero) and the positions of the misses."""
        self._scan()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            where = self._index.get(self.key(text))
            if where is None:
                missing.append(i)
            else:
                out[i] = self._segment(where[0])[where[1]]
        return out, missing

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if not len(texts):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        keys = np.frombuffer(b"".join(self.key(t) for t in texts), dtype=np.uint8).reshape(-1, KEY_BYTES)
        for suffix, array in ((".vecs.npy", np.asarray(vectors, dtype=np.float32)), (".keys.npy", keys)):
            tmp = self.dir / f".{name}{suffix}"
            with tmp.open("wb") as fh:
                np.save(fh, array)
            os.replace(tmp, self.dir / f"{name}{suffix}")  # keys last: a segment is visible once whole

    def _scan(self) -> None:
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*.keys.npy")):
            name = path.name[: -len(".keys.npy")]
            if name in self._segments:
                continue
            keys = np.load(path)
            self._segments[name] = np.load(self.dir / f"{name}.vecs.npy", mmap_mode="r")
            for row, key in enumerate(keys):
                self._index.setdefault(key.tobytes(), (name, row))

    def _segment(self, name: str) -> np.ndarray:
        return self._segments[name]
