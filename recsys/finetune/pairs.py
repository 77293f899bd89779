"""Training pairs from what a shop has: judged (or logged) queries, generated queries, similar items.

An :class:`Example` is one query with one positive product, its hard negatives and every product known
to be relevant to it (those are never used as its negatives, in-batch or mined). Products are indexes
into the catalogue; their texts are the template's renderings, looked up when a batch is encoded.

* judged: the qrels format of docs/DATA.md (a click log in the same three columns works the same way):
  a top grade is a positive, the lowest grade a hard negative, every grade above the lowest "known";
* generated: :mod:`recsys.finetune.queries`, true of every product sharing the recipe's fields;
* similar: two products that share the ``--similar-same`` fields (e.g. article type and gender), for
  the *similar* template, whose vectors serve "similar items".

A held-out slice of the training queries (whole queries, never single pairs) is kept for validation.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from recsys.catalogue import Product
from recsys.finetune.queries import Generated, generate, value

Kind = Literal["search", "similar"]


@dataclass(frozen=True)
class Example:
    """A query (rendered, or the anchor product for similar items) with a positive product."""

    kind: Kind
    source: str  # "judged", "generated" or "similar"
    group: str  # the query it comes from: validation holds out whole groups
    query: str  # the raw query text (search) or "" (similar: the anchor's rendering is the query)
    anchor: int  # similar items: the anchor product; -1 for search
    positive: int
    negatives: tuple[int, ...] = ()
    known: frozenset[int] = frozenset()  # relevant to the query: never a negative for it


@dataclass(frozen=True)
class Group:
    """A validation query: its text (or anchor) and the graded products relevant to it."""

    kind: Kind
    source: str
    query: str
    anchor: int
    grades: Mapping[int, float]  # gain per relevant product (grade minus the lowest grade)
    negatives: tuple[int, ...] = ()


@dataclass
class PairSet:
    """The examples per source, and the held-out validation groups."""

    train: dict[str, list[Example]] = field(default_factory=dict)
    validation: list[Group] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {source: len(examples) for source, examples in self.train.items()}


class FieldIndex:
    """Products by their values of some fields: who shares all of them, and who all but one."""

    def __init__(self, products: Sequence[Product], bands: Mapping[str, int]) -> None:
        self.products = products
        self.bands = bands
        self._by: dict[tuple[str, ...], dict[tuple[str, ...], list[int]]] = {}

    def key(self, i: int, fields: Sequence[str]) -> tuple[str, ...] | None:
        values = [value(self.products[i], name, self.bands) for name in fields]
        return None if None in values else tuple(v for v in values if v is not None)

    def sharing(self, i: int, fields: Sequence[str]) -> list[int]:
        """Products with ``i``'s values on every one of ``fields`` (``i`` included)."""
        key = self.key(i, fields)
        return [i] if key is None else self._table(tuple(fields)).get(key, [i])

    def near_misses(self, i: int, fields: Sequence[str]) -> list[int]:
        """Products that share all of ``fields`` with ``i`` but one (and differ on that one)."""
        if len(fields) < 2:
            return []
        own = self.key(i, fields)
        found: list[int] = []
        for drop in range(len(fields)):
            rest = [f for j, f in enumerate(fields) if j != drop]
            found += [j for j in self.sharing(i, rest) if j != i and self.key(j, fields) != own]
        return found

    def _table(self, fields: tuple[str, ...]) -> dict[tuple[str, ...], list[int]]:
        if fields not in self._by:
            table: dict[tuple[str, ...], list[int]] = defaultdict(list)
            for j in range(len(self.products)):
                key = self.key(j, fields)
                if key is not None:
                    table[key].append(j)
            self._by[fields] = dict(table)
        return self._by[fields]


def judged_examples(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, float]],
    position: Mapping[str, int],
    positives: Literal["top", "top-third"] = "top",
) -> tuple[list[Example], dict[str, Group]]:
    """One example per (query, positive product); and every query as a validation group, by query id."""
    grades = [g for judged in qrels.values() for g in judged.values()]
    if not grades:
        return [], {}
    low, high = min(grades), max(grades)
    threshold = high if positives == "top" else high - (high - low) / 3
    examples: list[Example] = []
    groups: dict[str, Group] = {}
    for qid in sorted(queries):
        judged = {position[p]: g for p, g in qrels.get(qid, {}).items() if p in position}
        if not judged:
            continue
        good = sorted(i for i, g in judged.items() if g >= threshold)
        bad = tuple(sorted(i for i, g in judged.items() if g <= low))
        known = frozenset(i for i, g in judged.items() if g > low)
        text = queries[qid]
        gains = {i: g - low for i, g in judged.items() if g > low}
        if gains:
            groups[qid] = Group("search", "judged", text, -1, gains, bad)
        examples += [Example("search", "judged", qid, text, -1, i, bad, known) for i in good]
    return examples, groups


def generated_examples(
    products: Sequence[Product],
    bands: Mapping[str, int],
    fields: FieldIndex,
    indexes: Sequence[int],
    rng: random.Random,
) -> list[Example]:
    """One generated query per product of ``indexes``, true of every product sharing its fields."""
    out = []
    for n, item in enumerate(generate(products, bands, indexes, rng)):
        known = frozenset(_relevant(fields, item))
        near = tuple(sorted(set(fields.near_misses(item.product, item.fields)) - known))
        picked = tuple(rng.sample(near, min(len(near), 4))) if near else ()
        out.append(
            Example("search", "generated", f"g{n}:{item.recipe}", item.text, -1, item.product, picked, known)
        )
    return out


def similar_examples(
    fields: FieldIndex, same: Sequence[str], indexes: Sequence[int], rng: random.Random
) -> list[Example]:
    """For each anchor of ``indexes``, a product sharing the ``same`` fields, with its near misses."""
    out = []
    for anchor in indexes:
        sharing = fields.sharing(anchor, same)
        if fields.key(anchor, same) is None or len(sharing) < 2:
            continue
        positive = anchor
        while positive == anchor:
            positive = sharing[rng.randrange(len(sharing))]
        known = frozenset(sharing)
        near = [j for j in fields.near_misses(anchor, same) if j not in known]
        picked = tuple(rng.sample(near, min(len(near), 4))) if near else ()
        out.append(Example("similar", "similar", f"s{anchor}", "", anchor, positive, picked, known))
    return out


def hold_out(
    examples: Iterable[Example], fraction: float, most: int, rng: random.Random
) -> tuple[list[Example], set[str]]:
    """Examples of the groups kept for training, and the ids of the held-out groups (seeded)."""
    examples = list(examples)
    ids = sorted({e.group for e in examples})
    count = min(most, round(len(ids) * fraction))
    held = set(rng.sample(ids, count)) if count and len(ids) > 1 else set()
    return [e for e in examples if e.group not in held], held


def as_groups(examples: Iterable[Example]) -> list[Group]:
    """Validation groups of generated or similar examples: each group's known products count 1."""
    seen: dict[str, Group] = {}
    for e in examples:
        if e.group not in seen:
            grades = dict.fromkeys(e.known or {e.positive}, 1.0)
            if e.kind == "similar":
                grades.pop(e.anchor, None)
            seen[e.group] = Group(e.kind, e.source, e.query, e.anchor, grades, e.negatives)
    return list(seen.values())


def _relevant(fields: FieldIndex, item: Generated) -> list[int]:
    if item.fields == ("title",):
        title = fields.products[item.product].title.lower()
        twins = fields.sharing(item.product, ("title",))
        return [j for j in twins if fields.products[j].title.lower() == title] or [item.product]
    return fields.sharing(item.product, item.fields)
