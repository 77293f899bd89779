"""Similar items scored where relevance comes from the catalogue's own attributes.

A neighbour is relevant (grade 1) when it shares every ``same`` field with the product, and grade 2
when it also shares the ``grade2`` field (on myntra: same article type and gender, then same colour).
Fields: ``category`` (the leaf), ``category[i]`` (a level of the path, root first; negative counts
from the leaf), ``brand``, ``title``, or an attribute name; values compare case-insensitively.

Over a seeded sample of the products that have at least one other product sharing their ``same``
fields: precision@k (the share of the k neighbours with grade ≥ 1) and nDCG@k (gain = grade; the
ideal is the best grades the whole catalogue holds for that product, itself excluded).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from recsys.catalogue import Product
from recsys.errors import InvalidRequestError

K = 10
_LEVEL = re.compile(r"^category\[(-?\d+)\]$")
Key = tuple[str, ...]


def parse_fields(value: str) -> tuple[str, ...]:
    """``"category,gender"`` -> ``("category", "gender")``."""
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise InvalidRequestError("--same needs at least one field, e.g. category,gender", param="same")
    return names


def field_value(product: Product, name: str) -> str | None:
    """The product's ``name`` value, case-folded (lists as their sorted values); None when missing."""
    raw: object
    level = _LEVEL.match(name)
    if name == "category" or level:
        index = int(level.group(1)) if level else -1
        if not -len(product.category) <= index < len(product.category):
            return None
        raw = product.category[index]
    elif name in ("brand", "title"):
        raw = getattr(product, name)
    else:
        raw = product.attributes.get(name)
        if raw is None:
            folded = name.casefold()
            raw = next((v for k, v in product.attributes.items() if k.casefold() == folded), None)
    if raw is None:
        return None
    if isinstance(raw, list):
        text = "|".join(sorted(str(v).strip().casefold() for v in raw))
    else:
        text = str(raw).strip().casefold()
    return text or None


class Grader:
    """Grades of every pair of the catalogue's products, and the best grades each product could get."""

    def __init__(self, products: Sequence[Product], same: Sequence[str], grade2: str | None = None) -> None:
        self.same = tuple(same)
        self.grade2 = grade2
        self.keys: dict[str, Key | None] = {}
        self.second: dict[str, str | None] = {}
        for product in products:
            values = [field_value(product, name) for name in self.same]
            self.keys[product.id] = None if None in values else tuple(v for v in values if v is not None)
            self.second[product.id] = field_value(product, grade2) if grade2 else None
        for name in (*self.same, *([grade2] if grade2 else [])):
            if not any(field_value(p, name) is not None for p in products):
                raise InvalidRequestError(f"no product of the catalogue has a {name!r} value", param="same")
        self._count = Counter(key for key in self.keys.values() if key is not None)
        self._count2 = Counter(
            (key, self.second[pid])
            for pid, key in self.keys.items()
            if key is not None and self.second[pid] is not None
        )

    def grade(self, product_id: str, other_id: str) -> int:
        key = self.keys.get(product_id)
        if key is None or self.keys.get(other_id) != key:
            return 0
        second = self.second[product_id]
        return 2 if second is not None and self.second.get(other_id) == second else 1

    def ideal(self, product_id: str, k: int = K) -> list[int]:
        """The best ``k`` grades of the catalogue for ``product_id``, itself excluded."""
        key = self.keys.get(product_id)
        if key is None:
            return []
        same = self._count[key] - 1
        second = self.second[product_id]
        best = self._count2[(key, second)] - 1 if second is not None else 0
        return ([2] * best + [1] * (same - best))[:k]

    def eligible(self, product_id: str) -> bool:
        """Some other product shares its ``same`` fields (otherwise no neighbour can be relevant)."""
        key = self.keys.get(product_id)
        return key is not None and self._count[key] > 1


def precision_at(grades: Sequence[int], k: int = K) -> float:
    return sum(1 for g in grades[:k] if g >= 1) / k


def ndcg_at(grades: Sequence[int], ideal: Sequence[int], k: int = K) -> float:
    def dcg(gains: Sequence[int]) -> float:
        return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains[:k]))

    best = dcg(ideal)
    return dcg(grades) / best if best > 0 else 0.0


def sample_ids(ids: Sequence[str], size: int, seed: int) -> list[str]:
    """A fixed sample of ``size`` ids (all of them when there are fewer), in catalogue order."""
    import numpy as np

    if size < 1:
        raise InvalidRequestError(f"sample must be at least 1; got {size}", param="sample")
    picked = np.random.default_rng(seed).choice(len(ids), size=min(size, len(ids)), replace=False)
    return [ids[int(i)] for i in sorted(picked)]


@dataclass(frozen=True)
class Neighbourhood:
    """One sampled product's neighbours, their grades, and its scores."""

    product_id: str
    neighbours: list[str]
    grades: list[int]
    precision: float
    ndcg: float


@dataclass(frozen=True)
class SimilarScores:
    precision_at_10: float
    ndcg_at_10: float
    products: int  # sampled and scored
    ineligible: int  # catalogue products no other product shares the fields with (never sampled)
    per_product: Mapping[str, Neighbourhood] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "precision@10": round(self.precision_at_10, 4),
            "ndcg@10": round(self.ndcg_at_10, 4),
            "products": self.products,
            "ineligible": self.ineligible,
        }


def evaluate_similar(
    neighbours: Callable[[str], list[str]],
    grader: Grader,
    product_ids: Sequence[str],
    sample: int = 1000,
    seed: int = 0,
    k: int = K,
    progress: Callable[[], None] | None = None,
) -> SimilarScores:
    """Score ``neighbours(product_id)`` (its top ``k`` similar ids) over a seeded sample of the eligible
    ``product_ids``."""
    eligible = [pid for pid in product_ids if grader.eligible(pid)]
    if not eligible:
        raise InvalidRequestError(
            f"no product shares {','.join(grader.same)} with another product: nothing to score", param="same"
        )
    scored: dict[str, Neighbourhood] = {}
    for pid in sample_ids(eligible, sample, seed):
        found = neighbours(pid)[:k]
        grades = [grader.grade(pid, other) for other in found]
        scored[pid] = Neighbourhood(
            pid, found, grades, precision_at(grades, k), ndcg_at(grades, grader.ideal(pid, k), k)
        )
        if progress is not None:
            progress()
    count = len(scored)
    return SimilarScores(
        sum(n.precision for n in scored.values()) / count,
        sum(n.ndcg for n in scored.values()) / count,
        count,
        len(product_ids) - len(eligible),
        per_product=scored,
    )
