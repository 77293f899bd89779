"""Price bands: low, middle or high *for the product's own category*, by terciles of its prices.

"Affordable" means cheap for headphones, not cheap overall: each product is banded against the
deepest category prefix with at least ``MIN_BAND_GROUP`` priced products (the whole catalogue when
no prefix has that many). A build fits the cuts once and stores them with the version, so live
upserts and query understanding band a price the way the build did without re-reading the catalogue.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recsys.catalogue.products import Product

MIN_BAND_GROUP = 8
LOW, MIDDLE, HIGH = 0, 1, 2

Category = tuple[str, ...]


@dataclass(frozen=True)
class PriceBands:
    """Tercile cuts ``(low, high)`` per category prefix; ``()`` is the whole catalogue."""

    cuts: dict[Category, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, products: Iterable[Product]) -> PriceBands:
        groups: dict[Category, list[float]] = defaultdict(list)
        for p in products:
            if p.price is None:
                continue
            for depth in range(len(p.category) + 1):
                groups[p.category[:depth]].append(p.price)
        cuts: dict[Category, tuple[float, float]] = {}
        for key, prices in groups.items():
            if len(prices) >= MIN_BAND_GROUP or key == ():
                ordered = sorted(prices)
                cuts[key] = (ordered[len(ordered) // 3], ordered[(2 * len(ordered)) // 3])
        return cls(cuts)

    def reference(self, category: Sequence[str]) -> Category | None:
        """The deepest prefix of ``category`` that has cuts (None before any priced product)."""
        path = tuple(category)
        return next((path[:d] for d in range(len(path), -1, -1) if path[:d] in self.cuts), None)

    def band(self, category: Sequence[str], price: float | None) -> int | None:
        """0 (low), 1 (middle) or 2 (high); None without a price."""
        key = self.reference(category)
        if price is None or key is None:
            return None
        low, high = self.cuts[key]
        return LOW if price < low else (HIGH if price >= high else MIDDLE)

    def assign(self, products: Iterable[Product]) -> dict[str, int]:
        """The band of every priced product, by id."""
        out = {}
        for p in products:
            band = self.band(p.category, p.price)
            if band is not None:
                out[p.id] = band
        return out

    def save(self, path: Path) -> None:
        rows = [{"category": list(k), "low": lo, "high": hi} for k, (lo, hi) in sorted(self.cuts.items())]
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> PriceBands:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return cls({tuple(r["category"]): (float(r["low"]), float(r["high"])) for r in rows})


def price_bands(products: Sequence[Product]) -> dict[str, int]:
    """Every priced product's band within ``products`` (fit and assign in one step)."""
    return PriceBands.fit(products).assign(products)
