"""Facet counts for filter menus: how many of a query's matching products have each brand, category
(every level of the path), price bucket, stock status and attribute value.

**The matching set.** With a query, it is the search's candidate pool after filters
(:meth:`~recsys.query.engine.Engine.pool`): the rows that hybrid search fuses and ranks, i.e. the top
``POOL`` (100) rows of each vector space and of BM25 among the products that pass the filters (the
price bounds that query understanding read from the query included), plus the live-delta products
that pass them. Those are the products the first pages of that search can show, and no others. Without
a query, it is every served product (base and delta) that passes the filters. Counts are taken with
every filter applied, so a chosen brand counts only itself: a menu shows the chosen value with a way to
clear it.

Counting runs over the filter columns' CSR postings (one gather and one cumulative sum for all keys),
so it costs the same for a pool of 300 rows as for a whole catalogue; only the values shown are read
back from their products, for their spelling. Everything here is pure but :func:`facets_for`, which
asks the engine for the pool.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.query.engine import Engine
from recsys.query.filters import FilterColumns, Filters
from recsys.query.live import LiveIndex

MAX_VALUES = 20  # values listed per brand or attribute facet (the most frequent; ``more`` counts the rest)
MAX_ATTRIBUTES = 12  # attribute facets listed, those the most matching products mention first
PRICE_BUCKETS = 5
NICE_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 10.0)

Key = tuple[str, ...]
Products = Callable[[int], Mapping[str, Any]]


@dataclass(frozen=True)
class Part:
    """One numbered set of products (the version's base rows, or the live delta's) and which match."""

    columns: FilterColumns
    selected: np.ndarray  # bool per row of ``columns``
    product: Products  # a row's product, to spell a value as the catalogue does


def key_counts(columns: FilterColumns, selected: np.ndarray) -> np.ndarray:
    """For every posting key (``columns.keys`` numbering), how many ``selected`` rows it holds."""
    if not columns.keys:
        return np.zeros(0, dtype=np.int64)
    hits = np.asarray(selected, dtype=bool)[np.asarray(columns.rows)]
    cumulative = np.concatenate([[0], np.cumsum(hits, dtype=np.int64)])
    indptr = np.asarray(columns.indptr)
    counts: np.ndarray = cumulative[indptr[1:]] - cumulative[indptr[:-1]]
    return counts


def nice(value: float) -> float:
    """``value`` rounded to a round price (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5 times a power of ten)."""
    if value <= 0 or not math.isfinite(value):
        return 0.0
    power = 10.0 ** math.floor(math.log10(value))
    step = min(NICE_STEPS, key=lambda s: abs(s * power - value))
    return round(step * power, 10)


def price_facet(prices: np.ndarray, buckets: int = PRICE_BUCKETS) -> dict[str, Any]:
    """Round-priced buckets of about equal size: ``min <= price < max`` (``max`` None: no upper bound).
    A product priced exactly at an edge counts in the upper bucket."""
    prices = np.asarray(prices, dtype=np.float64)
    priced = prices[np.isfinite(prices)]
    out: dict[str, Any] = {
        "min": None,
        "max": None,
        "unpriced": int(len(prices) - len(priced)),
        "buckets": [],
    }
    if not len(priced):
        return out
    quantiles = np.quantile(priced, np.linspace(0, 1, buckets + 1)[1:-1])
    edges = sorted({e for e in (nice(float(q)) for q in quantiles) if e > 0})
    bounds: list[float | None] = [0.0, *edges, None]
    for low, high in itertools.pairwise(bounds):
        inside = priced >= float(low or 0.0)
        if high is not None:
            inside &= priced < high
        count = int(inside.sum())
        if count:
            out["buckets"].append({"min": low, "max": high, "count": count})
    out["min"], out["max"] = round(float(priced.min()), 2), round(float(priced.max()), 2)
    return out


def count_facets(parts: list[Part]) -> dict[str, Any]:
    """The facets of the products ``parts`` select (see the module docstring for the answer's shape)."""
    counts: dict[Key, int] = {}
    first: dict[Key, tuple[Part, np.ndarray]] = {}
    for part in parts:
        found = key_counts(part.columns, part.selected)
        names = list(part.columns.keys)
        for n in np.flatnonzero(found):
            key = names[int(n)]
            counts[key] = counts.get(key, 0) + int(found[n])
            if key not in first:
                postings = part.columns.postings(key)
                first[key] = (part, np.empty(0, dtype=np.int64) if postings is None else postings)

    def spelt(key: Key) -> str:
        part, rows = first[key]
        row = int(rows[np.asarray(part.selected, dtype=bool)[rows]][0])
        return _spelling(part.product(row), key)

    total = sum(int(np.count_nonzero(p.selected)) for p in parts)
    prices = np.concatenate([np.asarray(p.columns.price)[p.selected] for p in parts] or [np.empty(0)])
    stock = np.concatenate(
        [np.asarray(p.columns.stock)[p.selected] for p in parts] or [np.empty(0, dtype=np.int8)]
    )
    return {
        "total": total,
        "category": _category_tree(counts, spelt),
        "brand": _values([(k, n) for k, n in counts.items() if k[0] == "brand"], spelt),
        "price": price_facet(prices),
        "in_stock": {
            "true": int((stock == 1).sum()),
            "false": int((stock == 0).sum()),
            "unknown": int((stock == -1).sum()),
        },
        "attributes": _attributes(counts, spelt),
    }


def live_parts(live: LiveIndex, rows: np.ndarray | None, filters: Filters | None) -> list[Part]:
    """The base and delta parts of ``live`` holding ``rows`` (a pool, base rows then delta rows), or
    with ``rows`` None every served product that passes ``filters``."""
    base_size = live.base_size
    index, delta = live.index, live.delta
    if rows is None:
        mask = live.mask(filters)
        base = np.ones(base_size, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        local = live.delta_rows(filters) - base_size
    else:
        rows = np.asarray(rows, dtype=np.int64)
        base = np.zeros(base_size, dtype=bool)
        base[rows[rows < base_size]] = True
        local = rows[rows >= base_size] - base_size
    parts = [Part(index.columns, base, index.products.__getitem__)]
    if delta.columns is not None and len(delta):
        chosen = np.zeros(len(delta), dtype=bool)
        chosen[local] = True
        parts.append(Part(delta.columns, chosen, delta.products.__getitem__))
    return parts


def facets_for(
    engine: Engine,
    query: str | None,
    filters: Filters | None,
    *,
    understand: bool = True,
    vectorise: Callable[[str], np.ndarray] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The served version and the facets of ``query``'s matching set (every product passing
    ``filters`` when ``query`` is None): ``{"facets", "filters", "intent"?, "matching"}``.

    ``understand``: read the query first, as search does (its price bounds filter the pool);
    ``vectorise`` embeds the searched text (the service's cached embedding), else the engine does.
    """
    if not query:
        live = engine.live()
        body: dict[str, Any] = {"matching": "filtered", "filters": (filters or Filters()).to_dict()}
        body["facets"] = count_facets(live_parts(live, None, filters))
        return live.version, body
    intent = engine.understand(query) if understand else None
    text = query if intent is None else intent.text
    vector = vectorise(text) if vectorise is not None else None
    pool = engine.pool(query, filters=filters, query_vector=vector, intent=intent)
    body = {"matching": "pool", "filters": (pool.filters or Filters()).to_dict()}
    if intent is not None:
        body["intent"] = intent.to_dict()
    body["facets"] = count_facets(live_parts(pool.live, pool.rows, pool.filters))
    return pool.live.version, body


def _spelling(product: Mapping[str, Any], key: Key) -> str:
    """The value of ``key`` as ``product`` spells it (keys are lower-cased)."""
    kind, rest = key[0], key[1:]
    if kind == "category":
        path = list(product.get("category") or ())
        return str(path[len(rest) - 1]) if len(path) >= len(rest) else rest[-1]
    if kind == "brand":
        return str(product.get("brand") or rest[-1])
    attributes = {str(k).lower(): v for k, v in (product.get("attributes") or {}).items()}
    value = attributes.get(rest[0])
    for item in value if isinstance(value, list) else [value]:
        text = _text(item)
        if text.strip().lower() == rest[1]:
            return text.strip()
    return rest[1]


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _values(found: list[tuple[Key, int]], spelt: Callable[[Key], str]) -> dict[str, Any]:
    ranked = sorted(found, key=lambda kv: (-kv[1], kv[0]))
    shown = [{"value": spelt(key), "count": n} for key, n in ranked[:MAX_VALUES]]
    return {"values": shown, "more": max(0, len(ranked) - MAX_VALUES)}


def _category_tree(counts: dict[Key, int], spelt: Callable[[Key], str]) -> list[dict[str, Any]]:
    """Every category level, depth first: a parent, then its children by count (then name)."""
    children: dict[Key, list[Key]] = {}
    for key in counts:
        if key[0] == "category":
            children.setdefault(key[:-1], []).append(key)
    out: list[dict[str, Any]] = []

    def walk(parent: Key, path: list[str]) -> None:
        for key in sorted(children.get(parent, []), key=lambda k: (-counts[k], k)):
            name = spelt(key)
            out.append({"path": [*path, name], "value": name, "depth": len(key) - 2, "count": counts[key]})
            walk(key, [*path, name])

    walk(("category",), [])
    return out


def _attributes(counts: dict[Key, int], spelt: Callable[[Key], str]) -> list[dict[str, Any]]:
    """Attribute facets, the most mentioned first (a list-valued attribute counts each value)."""
    grouped: dict[str, list[tuple[Key, int]]] = {}
    for key, n in counts.items():
        if key[0] == "attr":
            grouped.setdefault(key[1], []).append((key, n))
    ranked = sorted(grouped.items(), key=lambda kv: (-sum(n for _, n in kv[1]), kv[0]))
    return [{"name": name, **_values(found, spelt)} for name, found in ranked[:MAX_ATTRIBUTES]]
