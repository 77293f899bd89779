"""Shopper-like queries generated from a product's own attributes and title (the self-supervised pairs).

Each recipe names the fields it uses, so the products it is true of are known (every product with the
same values on those fields: never a negative for it) and its near misses too (the products that
share all of those fields but one). Recipes, as shoppers type them:

* ``colour+type+gender``: "black boots for men", "women navy blue shirts";
* ``brand+type``: "nike shoes";
* ``size+type``: "boots size 10";
* ``band+type``: "cheap headphones", "premium watches" (a band word for the product's price band in its
  own category, which the search template renders as words; prices themselves are not in the text);
* ``title``: the title with words dropped ("accent pillow heart red"), for catalogues with nothing else.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recsys.catalogue import Product
from recsys.evaluation.similar import field_value
from recsys.model.templates import ALIASES

LOW_WORDS = ("cheap", "affordable", "budget", "inexpensive")
HIGH_WORDS = ("premium", "luxury", "high-end", "expensive")
_WORD = re.compile(r"[\w][\w'./-]*")
_STOP = {"a", "an", "the", "and", "or", "of", "for", "with", "in", "on", "by", "to", "-", "&", "|"}


@dataclass(frozen=True)
class Generated:
    """A generated query for ``product`` (an index into the catalogue), and the fields it names."""

    product: int
    text: str
    recipe: str
    fields: tuple[str, ...]  # compared to find the products it is true of ("title": only exact twins)


def value(product: Product, name: str, bands: Mapping[str, int] | None = None) -> str | None:
    """A field as a lower-case phrase: ``type`` or ``category`` (the leaf category), ``category[i]`` (a
    level, as ``recsys eval-similar`` names it), ``brand``, ``title``, ``band``, or an attribute (colour
    and size under their usual aliases); None when missing."""
    raw: object
    if name in ("type", "category"):
        raw = product.category[-1] if product.category else None
    elif name.startswith("category["):
        raw = field_value(product, name)
    elif name in ("brand", "title"):
        raw = getattr(product, name)
    elif name == "band":
        raw = None if bands is None else bands.get(product.id)
    else:
        lowered = {k.lower(): v for k, v in product.attributes.items()}
        raw = next((lowered[a] for a in ALIASES.get(name, (name,)) if a in lowered), None)
    if raw is None:
        return None
    if isinstance(raw, list):
        raw = ", ".join(str(v) for v in raw)
    text = " ".join(str(raw).split()).lower()
    return text or None


def generate(
    products: Sequence[Product], bands: Mapping[str, int], indexes: Sequence[int], rng: random.Random
) -> list[Generated]:
    """One query per product of ``indexes``, by a recipe the product has the fields for (seeded)."""
    out = []
    for i in indexes:
        options = _recipes(products[i], bands)
        recipe = options[rng.randrange(len(options))]
        text = _phrase(products[i], bands, recipe, rng)
        if text:
            out.append(Generated(i, text, recipe, RECIPE_FIELDS[recipe]))
    return out


RECIPE_FIELDS: dict[str, tuple[str, ...]] = {
    "colour+type+gender": ("colour", "type", "gender"),
    "colour+type": ("colour", "type"),
    "brand+type": ("brand", "type"),
    "size+type": ("size", "type"),
    "band+type": ("band", "type"),
    "title": ("title",),
}


def _recipes(product: Product, bands: Mapping[str, int]) -> list[str]:
    have = {name for name in ("colour", "type", "gender", "brand", "size") if value(product, name)}
    options = []
    if {"colour", "type", "gender"} <= have:
        options.append("colour+type+gender")
    elif {"colour", "type"} <= have:
        options.append("colour+type")
    if {"brand", "type"} <= have:
        options.append("brand+type")
    if {"size", "type"} <= have:
        options.append("size+type")
    if "type" in have and bands.get(product.id) in (0, 2):
        options.append("band+type")
    options.append("title")  # always possible; half the draws when attributes give other recipes
    return options + ["title"] * max(0, len(options) - 2)


def _phrase(product: Product, bands: Mapping[str, int], recipe: str, rng: random.Random) -> str:
    def v(name: str) -> str:
        return value(product, name, bands) or ""

    kind = v("type")
    if recipe == "colour+type+gender":
        gender = v("gender")
        return rng.choice((f"{v('colour')} {kind} for {gender}", f"{gender} {v('colour')} {kind}"))
    if recipe == "colour+type":
        return f"{v('colour')} {kind}"
    if recipe == "brand+type":
        return f"{v('brand')} {kind}"
    if recipe == "size+type":
        return rng.choice((f"{kind} size {v('size')}", f"size {v('size')} {kind}"))
    if recipe == "band+type":
        words = LOW_WORDS if bands.get(product.id) == 0 else HIGH_WORDS
        return f"{rng.choice(words)} {kind}"
    return drop_words(product.title, rng)


def drop_words(title: str, rng: random.Random, keep: float = 0.6, most: int = 6) -> str:
    """The title in lower case with about ``1 - keep`` of its words dropped, order kept (at least two
    words when it has them, at most ``most``)."""
    words = [w for w in _WORD.findall(title.lower()) if w not in _STOP]
    if len(words) <= 2:
        return " ".join(words)
    kept = [w for w in words if rng.random() < keep]
    while len(kept) < 2:
        kept = [w for w in words if rng.random() < keep]
    if len(kept) > most:
        start = rng.randrange(len(kept) - most + 1)
        kept = kept[start : start + most]
    return " ".join(kept)
