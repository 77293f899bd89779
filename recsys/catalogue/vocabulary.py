"""The catalogue's own vocabulary: the brands, colours, materials, sizes, genders and category names its
products carry, with counts. A build collects it into the version (``vocabulary.json``); query
understanding (:mod:`recsys.query.intent`) matches shoppers' words against it, so "rose gold" is a
colour and "samsung" a brand only where this catalogue says so.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from recsys.catalogue.products import Product

# attribute names that carry each field (the templates' aliases, plus the common spellings)
FIELDS: dict[str, tuple[str, ...]] = {
    "colour": ("colour", "color", "base_colour", "basecolour"),
    "material": ("material", "materials", "fabric"),
    "size": ("size", "sizes"),
    "gender": ("gender",),
}
MAX_WORDS = 4  # longer values are descriptions, not words a shopper types
_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")


def words(text: str) -> tuple[str, ...]:
    """The normalised words of ``text``: lowercase, split on anything but letters, digits, ``.`` and ``'``."""
    return tuple(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class Vocabulary:
    """``terms[field][value words] = count``; fields: brand, category, colour, material, size, gender."""

    terms: dict[str, dict[tuple[str, ...], int]] = field(default_factory=dict)
    display: dict[str, dict[tuple[str, ...], str]] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)  # field -> the attribute names holding it

    @classmethod
    def fit(cls, products: Iterable[Product]) -> Vocabulary:
        counts: dict[str, Counter[tuple[str, ...]]] = {}
        shown: dict[str, dict[tuple[str, ...], str]] = {}
        sources: dict[str, Counter[str]] = {}

        def add(name: str, value: object) -> None:
            for item in value if isinstance(value, list) else [value]:
                text = str(item).strip()
                key = words(text)
                if key and len(key) <= MAX_WORDS:
                    counts.setdefault(name, Counter())[key] += 1
                    shown.setdefault(name, {}).setdefault(key, text)

        for product in products:
            if product.brand:
                add("brand", product.brand)
            for part in product.category:
                add("category", part)
            attributes = {k.lower(): v for k, v in product.attributes.items()}
            for name, aliases in FIELDS.items():
                for alias in aliases:
                    if alias in attributes:
                        add(name, attributes[alias])
                        sources.setdefault(name, Counter())[alias] += 1
                        break
        return cls(
            {k: dict(v) for k, v in counts.items()},
            shown,
            {k: [name for name, _ in v.most_common()] for k, v in sources.items()},
        )

    def count(self, name: str, value: tuple[str, ...]) -> int:
        return self.terms.get(name, {}).get(value, 0)

    def shown(self, name: str, value: tuple[str, ...]) -> str:
        """The value as the catalogue spells it."""
        return self.display.get(name, {}).get(value, " ".join(value))

    def longest(self, name: str) -> int:
        return max((len(v) for v in self.terms.get(name, {})), default=0)

    def save(self, path: Path) -> None:
        values = {
            name: [
                [self.display[name][value], n] for value, n in sorted(found.items(), key=lambda kv: -kv[1])
            ]
            for name, found in self.terms.items()
        }
        data = {"values": values, "sources": self.sources}
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        data = json.loads(path.read_text(encoding="utf-8"))
        terms: dict[str, dict[tuple[str, ...], int]] = {}
        shown: dict[str, dict[tuple[str, ...], str]] = {}
        for name, rows in data["values"].items():
            for text, n in rows:
                key = words(text)
                terms.setdefault(name, {})[key] = terms.get(name, {}).get(key, 0) + int(n)
                shown.setdefault(name, {}).setdefault(key, text)
        return cls(terms, shown, {k: list(v) for k, v in data["sources"].items()})
