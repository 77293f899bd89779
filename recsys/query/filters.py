"""Structured filters (category prefix, brand, price range, stock, attribute equality) and their masks.

Requests are validated into :class:`Filters` at the edge (:mod:`recsys.query.requests`).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ATTR_PREFIX = "attr."
COLUMNS = ("price", "stock", "indptr", "rows")


@dataclass(frozen=True)
class Filters:
    """All conditions must hold. Text comparisons ignore case; ``category`` is a path prefix."""

    category: tuple[str, ...] = ()
    brand: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return self == Filters()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.category:
            out["category"] = " > ".join(self.category)
        for key in ("brand", "price_min", "price_max", "in_stock"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for name, value in sorted(self.attributes.items()):
            out[ATTR_PREFIX + name] = value
        return out


class FilterColumns:
    """Per-product columns and inverted lists, so a filter's mask costs a few vector operations.

    The inverted lists are one CSR structure (keys → ``indptr`` → ``rows``); a build saves it with the
    version and servers load it memory-mapped, shared by every worker.
    """

    def __init__(
        self,
        price: np.ndarray,
        stock: np.ndarray,
        keys: dict[tuple[str, ...], int],
        indptr: np.ndarray,
        rows: np.ndarray,
    ) -> None:
        self.size = len(price)
        self.price = price  # NaN: no price
        self.stock = stock  # 1 in stock, 0 out of stock, -1 unknown
        self.keys = keys
        self.indptr = indptr
        self.rows = rows

    @classmethod
    def of(cls, products: Sequence[Mapping[str, Any]]) -> FilterColumns:
        price = np.array(
            [p.get("price", math.nan) if p.get("price") is not None else math.nan for p in products],
            dtype=np.float64,
        )
        stock = np.array([_stock(p.get("in_stock")) for p in products], dtype=np.int8)
        postings: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for row, product in enumerate(products):
            category = tuple(c.lower() for c in product.get("category") or ())
            for depth in range(1, len(category) + 1):
                postings[("category", *category[:depth])].append(row)
            if product.get("brand"):
                postings[("brand", str(product["brand"]).lower())].append(row)
            for name, value in (product.get("attributes") or {}).items():
                for item in value if isinstance(value, list) else [value]:
                    postings[("attr", name.lower(), _norm_value(item))].append(row)
        keys = {key: n for n, key in enumerate(postings)}
        lengths = [len(rows) for rows in postings.values()]
        indptr = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        rows = np.fromiter(
            (r for found in postings.values() for r in found), dtype=np.int64, count=indptr[-1]
        )
        return cls(price, stock, keys, indptr, rows)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in COLUMNS:
            np.save(folder / f"{name}.npy", getattr(self, name))
        keys = [list(key) for key in self.keys]
        (folder / "keys.json").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> FilterColumns:
        arrays = {
            name: np.load(folder / f"{name}.npy", mmap_mode="r")
            for name in ("price", "stock", "indptr", "rows")
        }
        keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
        return cls(keys={tuple(key): n for n, key in enumerate(keys)}, **arrays)

    def postings(self, key: tuple[str, ...]) -> np.ndarray | None:
        n = self.keys.get(key)
        return None if n is None else self.rows[self.indptr[n] : self.indptr[n + 1]]

    def mask(self, filters: Filters) -> np.ndarray:
        mask = np.ones(self.size, dtype=bool)
        keys: list[tuple[str, ...]] = []
        if filters.category:
            keys.append(("category", *(c.lower() for c in filters.category)))
        if filters.brand is not None:
            keys.append(("brand", filters.brand.lower()))
        for name, value in filters.attributes.items():
            keys.append(("attr", name, _norm_value(value)))
        for key in keys:
            rows = self.postings(key)
            if rows is None:
                return np.zeros(self.size, dtype=bool)
            selected = np.zeros(self.size, dtype=bool)
            selected[rows] = True
            mask &= selected
        if filters.price_min is not None:
            mask &= self.price >= filters.price_min  # NaN (no price) never matches a price bound
        if filters.price_max is not None:
            mask &= self.price <= filters.price_max
        if filters.in_stock is not None:
            mask &= self.stock == (1 if filters.in_stock else 0)
        return mask


def _stock(value: Any) -> int:
    return 1 if value is True else (0 if value is False else -1)


def _norm_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()
