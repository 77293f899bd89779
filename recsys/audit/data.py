"""What an audit reads from a published version: its products, its *similar* vectors (memory-mapped:
category, gender, brand, colour, material and title, embedded once by the build) and the catalogue's
attribute vocabulary, with the per-product columns every check shares. Nothing is embedded again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from recsys.catalogue import Vocabulary
from recsys.catalogue.vocabulary import FIELDS, words
from recsys.errors import IndexMismatchError
from recsys.index.ann import load_vectors
from recsys.index.manifest import Manifest

Category = tuple[str, ...]
CHECKED = ("colour", "gender", "material", "size")  # the vocabulary's attribute fields


@dataclass
class AuditData:
    version: str
    products: list[dict[str, Any]]
    vectors: np.ndarray  # (n, dim) float32 unit rows, row-aligned with products
    vocabulary: Vocabulary

    @classmethod
    def load(cls, path: Path) -> AuditData:
        """A version directory (``IndexStore.path(version)``)."""
        path = Path(path)
        manifest = Manifest.load(path)
        with (path / "products.jsonl").open(encoding="utf-8") as fh:
            products = [json.loads(line) for line in fh]
        vectors = load_vectors(path / "similar.npy")
        if len(vectors) != len(products):
            raise IndexMismatchError(
                f"{path}: similar.npy has {len(vectors)} rows for {len(products)} products; rebuild it"
            )
        vocabulary = Vocabulary.load(path / "vocabulary.json")
        return cls(manifest.version or path.name, products, vectors, vocabulary)

    def __len__(self) -> int:
        return len(self.products)

    @cached_property
    def ids(self) -> list[str]:
        return [str(p["id"]) for p in self.products]

    @cached_property
    def titles(self) -> list[str]:
        return [str(p.get("title") or "") for p in self.products]

    @cached_property
    def title_words(self) -> list[tuple[str, ...]]:
        return [words(t) for t in self.titles]

    @cached_property
    def categories(self) -> list[Category]:
        return [tuple(p.get("category") or ()) for p in self.products]

    @cached_property
    def leaves(self) -> tuple[list[Category], np.ndarray]:
        """The distinct full category paths and each product's index into them."""
        names: dict[Category, int] = {}
        rows = np.array([names.setdefault(c, len(names)) for c in self.categories], dtype=np.int64)
        return list(names), rows

    @cached_property
    def prices(self) -> np.ndarray:
        out = np.full(len(self.products), np.nan)
        for row, p in enumerate(self.products):
            price = p.get("price")
            if isinstance(price, int | float) and not isinstance(price, bool):
                out[row] = float(price)
        return out

    @cached_property
    def brands(self) -> list[str]:
        return [" ".join(words(str(p.get("brand") or ""))) for p in self.products]

    @cached_property
    def attributes(self) -> list[dict[str, str]]:
        """Every attribute as normalised text (lists joined), by lowercase name."""
        return [{k.lower(): _text(v) for k, v in (p.get("attributes") or {}).items()} for p in self.products]

    def field_names(self, name: str) -> tuple[str, ...]:
        """The attribute names that hold ``name`` (colour, gender, ...) in this catalogue."""
        return tuple(self.vocabulary.sources.get(name) or FIELDS.get(name, (name,)))

    @cached_property
    def fields(self) -> dict[str, list[str]]:
        """``fields[name][row]``: the product's value of each checked field, normalised ('' when absent)."""
        out: dict[str, list[str]] = {}
        for name in CHECKED:
            aliases = self.field_names(name)
            out[name] = [next((a[k] for k in aliases if k in a), "") for a in self.attributes]
        return out

    def describe(self, row: int) -> dict[str, Any]:
        """A product as evidence shows it."""
        p = self.products[row]
        out: dict[str, Any] = {"id": self.ids[row], "title": self.titles[row]}
        if p.get("brand"):
            out["brand"] = p["brand"]
        if self.categories[row]:
            out["category"] = " > ".join(self.categories[row])
        if p.get("price") is not None:
            out["price"] = p["price"]
        return out


def _text(value: object) -> str:
    items = value if isinstance(value, list) else [value]
    return ", ".join(" ".join(words(str(v))) for v in items)
