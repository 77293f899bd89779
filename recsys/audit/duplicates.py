"""Near-duplicates: products very likely to be the same item listed twice.

Candidates are pairs of products in the same leaf category whose similar vectors nearly agree (exact
neighbours inside blocks of the same gender and colour). A candidate is a duplicate when nothing tells
the two apart: no attribute (brand, colour, size, gender or any other) has two different values, and
the titles differ only in case, punctuation, word order or a few dropped words. Variants are not
duplicates: a pair whose titles swap a colour, size, gender or material word, name a colour that is not
the products' own, or differ in a number, is two products. Pairs join into groups; a group listed under
one generic title by many products scores lower (it may be many items that were named alike).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

from recsys.audit.data import CHECKED, AuditData
from recsys.audit.findings import DUPLICATE, Finding
from recsys.audit.neighbours import blocked_pairs
from recsys.audit.thresholds import Thresholds

GENERIC = 3  # a title shared by more products than this is treated as generic
Edge = tuple[float, dict[str, Any]]  # a pair's score and evidence
SHOWN_PAIRS = 10


def find_duplicates(data: AuditData, thresholds: Thresholds) -> list[Finding]:
    variant = _variant_words(data)
    edges: dict[tuple[int, int], Edge] = {}
    for a, b in _same_listing(data):
        edge = _compare(data, a, b, float(data.vectors[a] @ data.vectors[b]), variant, thresholds)
        if edge is not None:
            edges[(a, b)] = edge
    pairs = blocked_pairs(
        data.vectors, _blocks(data), thresholds.duplicate_neighbours, thresholds.duplicate_cosine
    )
    for a, b, cosine in zip(*pairs, strict=True):
        key = (int(a), int(b))
        if key not in edges:
            edge = _compare(data, key[0], key[1], float(cosine), variant, thresholds)
            if edge is not None:
                edges[key] = edge
    title_count = Counter(data.title_words)
    findings = []
    for group, inside in _groups(len(data), edges):
        best = max(score for _, (score, _) in inside)
        shared = max(title_count[data.title_words[r]] for r in group)
        generic = max(len(group), shared)
        score = best * (1.0 if generic <= GENERIC else (GENERIC / generic) ** 0.5)
        rows = sorted(group, key=lambda r: data.ids[r])
        shown = sorted(inside, key=lambda e: -e[1][0])[:SHOWN_PAIRS]
        findings.append(
            Finding(
                kind=DUPLICATE,
                ids=tuple(data.ids[r] for r in rows),
                score=score,
                evidence={
                    "products": [data.describe(r) for r in rows[:SHOWN_PAIRS]],
                    "pairs": [
                        {"ids": [data.ids[a], data.ids[b]], "score": round(pair, 4), **evidence}
                        for (a, b), (pair, evidence) in shown
                    ],
                    "pair_score": round(best, 4),
                    "listings_with_this_title": shared,
                    "category": " > ".join(data.categories[rows[0]]),
                },
            )
        )
    return findings


def _same_listing(data: AuditData) -> Iterator[tuple[int, int]]:
    """Products whose category, title words, brand and attributes are all the same: linked to the first
    of them directly, so a large group of identical listings is one group however neighbours tie."""
    first: dict[tuple[object, ...], int] = {}
    for row in range(len(data)):
        key = (
            data.categories[row],
            data.title_words[row],
            data.brands[row],
            tuple(sorted(data.attributes[row].items())),
        )
        seen = first.setdefault(key, row)
        if seen != row:
            yield seen, row


def _blocks(data: AuditData) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per leaf category: products with a gender and a colour against the same gender and colour;
    products lacking either against the whole leaf."""
    _, leaf_of = data.leaves
    gender, colour = data.fields["gender"], data.fields["colour"]
    by_leaf: dict[int, list[int]] = defaultdict(list)
    for row, leaf in enumerate(leaf_of):
        by_leaf[int(leaf)].append(row)
    for rows in by_leaf.values():
        if len(rows) < 2:
            continue
        whole = np.array(rows, dtype=np.int64)
        full: dict[tuple[str, str], list[int]] = defaultdict(list)
        partial = []
        for row in rows:
            if gender[row] and colour[row]:
                full[(gender[row], colour[row])].append(row)
            else:
                partial.append(row)
        for members in full.values():
            if len(members) > 1:
                block = np.array(members, dtype=np.int64)
                yield block, block
        if partial:
            yield np.array(partial, dtype=np.int64), whole


def _variant_words(data: AuditData) -> set[str]:
    """Words that name a variant in this catalogue: the words of its colours, sizes, genders, materials."""
    out: set[str] = set()
    for name in CHECKED:
        for value in data.vocabulary.terms.get(name, {}):
            out.update(value)
    return out


def _compare(
    data: AuditData, a: int, b: int, cosine: float, variant: set[str], thresholds: Thresholds
) -> Edge | None:
    """The score and evidence that ``a`` and ``b`` are one item, or None when something tells them apart."""
    if data.brands[a] and data.brands[b] and data.brands[a] != data.brands[b]:
        return None
    attrs_a, attrs_b = data.attributes[a], data.attributes[b]
    shared = sorted(set(attrs_a) & set(attrs_b))
    if any(attrs_a[k] != attrs_b[k] for k in shared):
        return None
    words_a, words_b = set(data.title_words[a]), set(data.title_words[b])
    only_a, only_b = words_a - words_b, words_b - words_a
    if max(len(only_a), len(only_b)) > thresholds.duplicate_max_extra_words:
        return None
    own = {w for row in (a, b) for name in CHECKED for w in data.fields[name][row].replace(",", " ").split()}
    if _names_variant(only_a | only_b, variant - own, one_sided=not (only_a and only_b)):
        return None  # a colour, size or model number told apart: two variants
    if only_a and only_b and not _respelled(data.title_words[a], data.title_words[b], only_a, only_b):
        return None  # a word swapped for another: two models of a line ("Studio" and "Fresh")
    union = len(words_a | words_b) or 1
    jaccard = len(words_a & words_b) / union
    if jaccard < thresholds.duplicate_title:
        return None
    overlap = len(words_a & words_b) / max(1, min(len(words_a), len(words_b)))
    title = (jaccard + overlap) / 2
    return min(1.0, cosine) * title, {
        "cosine": round(cosine, 4),
        "title_agreement": round(title, 4),
        "title_words_differing": sorted(only_a | only_b),
        "attributes_agreeing": shared + (["brand"] if data.brands[a] and data.brands[b] else []),
    }


def _names_variant(differing: set[str], variant: set[str], one_sided: bool) -> bool:
    """A number told apart, or a variant word (a colour, size, ...) that is not the products' own: "Green
    T-shirt" and "Green & White T-shirt" are two colourways; "Grey T-shirt" and "T-shirt" of colour grey
    only dropped a word. A product code ("A450", "SX04") dropped from one title is a dropped word; a
    bare number ("Flux 2", "Pack of 3") or two different codes are two products."""
    for word in differing:
        if word in variant:
            return True
        if any(c.isdigit() for c in word) and not (one_sided and _code(word)):
            return True
    return False


def _code(word: str) -> bool:
    return len(word) >= 4 and any(c.isalpha() for c in word) and any(c.isdigit() for c in word)


def _respelled(
    title_a: tuple[str, ...], title_b: tuple[str, ...], only_a: set[str], only_b: set[str]
) -> bool:
    """The differing words are one spelling of the same text: "tshirt" and "t shirt", or a one-letter typo."""
    joined_a = "".join(w for w in title_a if w in only_a).replace("'", "")
    joined_b = "".join(w for w in title_b if w in only_b).replace("'", "")
    if joined_a == joined_b:
        return True
    return (
        len(only_a) == len(only_b) == 1
        and min(len(joined_a), len(joined_b)) >= 5
        and _one_edit(joined_a, joined_b)
    )


def _one_edit(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _groups(
    n: int, edges: dict[tuple[int, int], Edge]
) -> list[tuple[set[int], list[tuple[tuple[int, int], Edge]]]]:
    """Connected groups of the pairs, each with its own pairs."""
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, set[int]] = defaultdict(set)
    inside: dict[int, list[tuple[tuple[int, int], Edge]]] = defaultdict(list)
    for (a, b), edge in edges.items():
        members[root(a)].update((a, b))
        inside[root(a)].append(((a, b), edge))
    return [(members[r], inside[r]) for r in sorted(members)]
