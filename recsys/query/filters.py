"""Structured filters (category prefix, brand, price range, stock, attribute equality) and their masks.

Requests are validated into :class:`Filters` at the edge (:mod:`recsys.query.requests`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ATTR_PREFIX = "attr."


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
    """Per-product columns and inverted lists, so a filter's mask costs a few vector operations."""

    def __init__(self, products: Sequence[Mapping[str, Any]]) -> None:
        self.size = len(products)
        self.price = np.array(
            [p.get("price", math.nan) if p.get("price") is not None else math.nan for p in products],
            dtype=np.float64,
        )
        stock = [p.get("in_stock") for p in products]
        self.in_stock = np.array([s is True for s in stock], dtype=bool)
        self.out_of_stock = np.array([s is False for s in stock], dtype=bool)
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
        self._postings = {key: np.array(rows, dtype=np.int64) for key, rows in postings.items()}

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
            rows = self._postings.get(key)
            if rows is None:
                return np.zeros(self.size, dtype=bool)
            selected = np.zeros(self.size, dtype=bool)
            selected[rows] = True
            mask &= selected
        if filters.price_min is not None:
            mask &= self.price >= filters.price_min  # NaN (no price) never matches a price bound
        if filters.price_max is not None:
            mask &= self.price <= filters.price_max
        if filters.in_stock is True:
            mask &= self.in_stock
        elif filters.in_stock is False:
            mask &= self.out_of_stock
        return mask


def _norm_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()
