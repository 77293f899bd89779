"""Attribute-focused instructions: what the model sees for a product and for a query.

Templates are data (``fixtures/templates.json`` by default, ``RECSYS_TEMPLATES_PATH`` to override). A
template's hash is part of an index's identity, so changing a template forces a rebuild.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.catalogue import Product
from recsys.errors import TemplateError

PRODUCT_FIELDS = {
    "title",
    "description",
    "brand",
    "category",
    "department",
    "leaf",
    "price",
    "price_band",
    "in_stock",
    "other_attributes",
}
ALIASES = {"colour": ("colour", "color", "base_colour", "basecolour"), "size": ("size", "sizes")}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Template:
    """A parsed template file. ``render_*`` are pure functions of their arguments."""

    name: str
    query: str
    search_parts: tuple[str, ...]
    similar_parts: tuple[str, ...]
    price_bands: tuple[str, ...]
    hash: str

    @classmethod
    def load(cls, path: Path) -> Template:
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except FileNotFoundError:
            raise TemplateError(f"template file not found: {path} (set RECSYS_TEMPLATES_PATH)") from None
        except json.JSONDecodeError as exc:
            raise TemplateError(f"template file {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Template:
        try:
            query = data["search"]["query"]
            search_parts = tuple(data["search"]["document"])
            similar_parts = tuple(data["similar"]["document"])
            bands = tuple(data.get("price_bands", ("budget", "mid-range", "premium")))
        except (KeyError, TypeError) as exc:
            raise TemplateError(
                f"{source}: missing key {exc} (need search.query, search.document, similar.document)"
            ) from None
        if "{query}" not in query:
            raise TemplateError(f"{source}: search.query must contain {{query}}")
        for part in (*search_parts, *similar_parts):
            _check_fields(part, source)
        if len(bands) != 3:
            raise TemplateError(f"{source}: price_bands must list 3 labels (low, middle, high)")
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return cls(
            name=str(data.get("name", "unnamed")),
            query=query,
            search_parts=search_parts,
            similar_parts=similar_parts,
            price_bands=bands,
            hash=hashlib.sha256(canonical).hexdigest()[:16],
        )

    def render_query(self, query: str) -> str:
        return self.query.format(query=normalise_query(query))

    def render_document(self, product: Product, band: int | None = None) -> str:
        return self._render(self.search_parts, product, band)

    def render_similar(self, product: Product, band: int | None = None) -> str:
        return self._render(self.similar_parts, product, band)

    def _render(self, parts: Sequence[str], product: Product, band: int | None) -> str:
        fields = _fields(product, None if band is None else self.price_bands[band], parts)
        rendered = []
        for part in parts:
            names = [name for _, name, _, _ in string.Formatter().parse(part) if name]
            if names and all(not fields.get(n) for n in names):
                continue
            rendered.append(part.format_map(defaultdict(str, fields)).strip())
        return " | ".join(p for p in rendered if p)


def normalise_query(query: str) -> str:
    """The canonical form of a query: what caches key on and what the model sees."""
    return _SPACE.sub(" ", query).strip().lower()


def _check_fields(part: str, source: str) -> None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(part) if name]
    except ValueError as exc:
        raise TemplateError(f"{source}: bad template part {part!r}: {exc}") from None
    if not names:
        raise TemplateError(f"{source}: template part {part!r} names no field")


def _clean(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fields(product: Product, band_label: str | None, parts: Sequence[str]) -> dict[str, str]:
    attributes = {k.lower(): v for k, v in product.attributes.items()}
    fields: dict[str, str] = {
        "title": product.title,
        "description": _clean(product.description or ""),
        "brand": product.brand or "",
        "category": " > ".join(product.category),
        "department": product.category[0] if product.category else "",
        "leaf": product.category[-1] if product.category else "",
        "price": f"{product.price:.2f}" if product.price is not None else "",
        "price_band": band_label or "",
        "in_stock": "" if product.in_stock is None else ("in stock" if product.in_stock else "out of stock"),
    }
    used: set[str] = set()
    referenced = {name for part in parts for _, name, _, _ in string.Formatter().parse(part) if name}
    for name in referenced - PRODUCT_FIELDS:
        for alias in ALIASES.get(name, (name,)):
            if alias in attributes:
                fields[name] = _format_value(attributes[alias])
                used.add(alias)
                break
        else:
            fields[name] = ""
    fields["other_attributes"] = "; ".join(
        f"{k}: {_format_value(v)}" for k, v in attributes.items() if k not in used and not _is_noise(k)
    )
    return fields


def _is_noise(name: str) -> bool:
    """Attributes that say nothing a shopper searches by (URLs, ids, years)."""
    return name.endswith(("url", "_id", "sku")) or name in {"year", "image", "images"}
