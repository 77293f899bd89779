"""A loaded, read-only index version: memory-mapped Annoy files and vectors, products, filter columns."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from recsys.errors import IndexMismatchError
from recsys.filters import FilterColumns, Filters
from recsys.lexical import Lexical
from recsys.store import MANIFEST
from recsys.vectors import annoy_top, exact_top, load_annoy, load_vectors

WIDEN = 4


@dataclass
class Space:
    """One vector space of an index (``search`` or ``similar``): Annoy plus the exact vectors."""

    annoy: AnnoyIndex
    vectors: np.ndarray
    search_k: int

    def top(
        self, query: np.ndarray, n: int, mask: np.ndarray | None = None, exact_fraction: float = 0.25
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` rows by cosine, restricted to ``mask``.

        Unfiltered: Annoy with the tuned ``search_k``, scaled to ``n``, unless that would inspect as
        many nodes as there are rows: then one exact matrix product is cheaper. Selective filter: exact
        scoring of the matching rows. Broad filter: over-fetch from Annoy by the inverse selectivity and widen
        until ``n`` matches are found, falling back to exact scoring.
        """
        size = len(self.vectors)
        if mask is None:
            if self.search_k < 0 or self._search_k(n) >= size:
                return exact_top(self.vectors, query, n)
            return annoy_top(self.annoy, query, n, self._search_k(n))
        matching = int(mask.sum())
        if matching == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if self.search_k < 0 or matching <= exact_fraction * size:
            return exact_top(self.vectors, query, n, np.flatnonzero(mask))
        fetch = math.ceil(n * size / matching * 1.5)
        while fetch < size:
            rows, scores = annoy_top(self.annoy, query, fetch, self._search_k(fetch))
            keep = mask[rows]
            if keep.sum() >= min(n, matching):
                return rows[keep][:n], scores[keep][:n]
            fetch *= WIDEN
        return exact_top(self.vectors, query, n, np.flatnonzero(mask))

    def _search_k(self, n: int) -> int:
        return max(self.search_k, self.search_k * n // 10)


class LoadedIndex:
    def __init__(self, path: Path, expected: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        if expected is not None:
            check_compatible(self.manifest, expected, self.path)
        self.version: str = self.manifest["version"]
        dim = int(self.manifest["dim"])
        self.spaces = {
            name: Space(
                load_annoy(self.path / f"{name}.annoy", dim),
                load_vectors(self.path / f"{name}.npy"),
                int(self.manifest["tuning"][name]["search_k"]),
            )
            for name in ("search", "similar")
        }
        with (self.path / "products.jsonl").open(encoding="utf-8") as fh:
            self.products: list[dict[str, Any]] = [json.loads(line) for line in fh]
        self.rows = {p["id"]: row for row, p in enumerate(self.products)}
        self.columns = FilterColumns(self.products)
        self.lexical = Lexical.load(self.path / "lexical")

    def __len__(self) -> int:
        return len(self.products)

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        return None if filters is None or filters.is_empty() else self.columns.mask(filters)


def check_compatible(manifest: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    """Refuse an index built with another model, template or geometry than the running encoder."""
    for key in ("model", "template", "dim", "metric"):
        if manifest.get(key) != expected.get(key):
            raise IndexMismatchError(
                f"index {path.name} was built with {key}={manifest.get(key)!r} but this process runs "
                f"{key}={expected.get(key)!r}; rebuild it (`recsys index build`) or run the matching "
                "model and template (RECSYS_MODEL_DIR, RECSYS_TEMPLATES_PATH)"
            )
