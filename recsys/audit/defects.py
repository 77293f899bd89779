"""Known defects injected into a copy of a catalogue, seeded, to measure the audit (``bench/audit.py``)
and to test it: duplicates with perturbed titles and new ids, products moved to a leaf category of
another parent, colours changed while the title keeps the true one, prices ×100, ÷100 or with a digit
lost. Every product carries at most one defect; the originals are left as they were."""

from __future__ import annotations

import copy
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from recsys.audit.findings import CONTRADICTION, DUPLICATE, MISFILED, PRICE_OUTLIER
from recsys.catalogue.vocabulary import FIELDS, words

Row = dict[str, Any]
PRICE_ERRORS = ("x100", "/100", "digit_lost")


@dataclass(frozen=True)
class Injected:
    kind: str
    id: str  # the product that carries the defect (a duplicate: the new copy)
    detail: dict[str, Any] = field(default_factory=dict)  # a duplicate's "original", the old value, ...


def inject(
    rows: list[Row],
    seed: int,
    duplicates: int = 0,
    misfiled: int = 0,
    contradictions: int = 0,
    prices: int = 0,
    min_category: int = 20,
) -> tuple[list[Row], list[Injected]]:
    """A copy of ``rows`` with the defects, and what was injected where."""
    rng = random.Random(seed)
    out = copy.deepcopy(rows)
    used: set[int] = set()
    injected: list[Injected] = []
    injected += _misfile(out, rng, misfiled, used, min_category)
    injected += _contradict(out, rng, contradictions, used)
    injected += _misprice(out, rng, prices, used)
    copies, made = _duplicate(out, rng, duplicates, used)
    for row in copies:
        out.insert(rng.randrange(len(out) + 1), row)
    return out, injected + made


def _pick(rng: random.Random, candidates: list[int], n: int, used: set[int]) -> list[int]:
    free = [i for i in candidates if i not in used]
    chosen = rng.sample(free, min(n, len(free)))
    used.update(chosen)
    return chosen


def perturb_title(title: str, rng: random.Random) -> str:
    """Case, punctuation and a dropped word: one to three of them, at least one."""
    ops = rng.sample(["case", "punctuation", "drop"], rng.randint(1, 3))
    text = title
    if "drop" in ops:
        tokens = text.split()
        if len(tokens) >= 4:
            del tokens[rng.randrange(len(tokens))]
            text = " ".join(tokens)
    if "punctuation" in ops:
        choice = rng.choice(["strip", "comma", "dash", "period"])
        if choice == "strip":
            text = re.sub(r"[^\w\s]", " ", text)
        elif choice == "comma":
            tokens = text.split()
            at = rng.randrange(1, len(tokens)) if len(tokens) > 1 else 1
            text = " ".join(tokens[:at]) + ", " + " ".join(tokens[at:])
        elif choice == "dash":
            text = text.replace(" ", " - ", 1)
        else:
            text = text.rstrip(".") + "."
    if "case" in ops:
        text = rng.choice([str.lower, str.upper, str.swapcase])(text)
    text = " ".join(text.split()).strip(" ,")
    return text if text != title else title.lower() if title.lower() != title else title.upper()


def _duplicate(
    rows: list[Row], rng: random.Random, n: int, used: set[int]
) -> tuple[list[Row], list[Injected]]:
    copies, made = [], []
    for number, i in enumerate(_pick(rng, list(range(len(rows))), n, used), start=1):
        row = copy.deepcopy(rows[i])
        row["title"] = perturb_title(str(rows[i]["title"]), rng)
        row["id"] = f"dup-{number:05d}-{rng.randrange(16**6):06x}"
        copies.append(row)
        made.append(Injected(DUPLICATE, row["id"], {"original": rows[i]["id"], "title": row["title"]}))
    return copies, made


def _misfile(
    rows: list[Row], rng: random.Random, n: int, used: set[int], min_category: int
) -> list[Injected]:
    sizes = Counter(tuple(r.get("category") or ()) for r in rows)
    leaves = sorted(c for c, size in sizes.items() if size >= min_category and len(c) >= 2)
    candidates = [i for i, r in enumerate(rows) if tuple(r.get("category") or ()) in set(leaves)]
    made = []
    for i in _pick(rng, candidates, n, used):
        old = tuple(rows[i]["category"])
        targets = [c for c in leaves if c[:-1] != old[:-1]]
        if not targets:
            continue
        new = rng.choice(targets)
        rows[i]["category"] = list(new)
        made.append(Injected(MISFILED, rows[i]["id"], {"from": list(old), "to": list(new)}))
    return made


def _colour_key(row: Row) -> str | None:
    attributes = row.get("attributes") or {}
    return next((k for k in FIELDS["colour"] if isinstance(attributes.get(k), str)), None)


def _contradict(rows: list[Row], rng: random.Random, n: int, used: set[int]) -> list[Injected]:
    """Change the colour of products whose title names their colour; the title keeps the true one."""
    colours = Counter(
        words(row["attributes"][key])
        for row in rows
        if (key := _colour_key(row)) and words(row["attributes"][key])
    )
    shown = {words(row["attributes"][k]): row["attributes"][k] for row in rows if (k := _colour_key(row))}
    candidates = []
    for i, row in enumerate(rows):
        key = _colour_key(row)
        if key is not None and _contains(words(str(row["title"])), words(row["attributes"][key])):
            candidates.append(i)
    made = []
    palette = sorted(colours)
    for i in _pick(rng, candidates, n, used):
        key = _colour_key(rows[i])
        assert key is not None
        old = words(rows[i]["attributes"][key])
        others = [c for c in palette if c and not set(c) & set(old)]
        new = rng.choices(others, weights=[colours[c] for c in others])[0]
        rows[i]["attributes"][key] = shown[new]
        made.append(
            Injected(
                CONTRADICTION, rows[i]["id"], {"field": "colour", "from": " ".join(old), "to": shown[new]}
            )
        )
    return made


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    return bool(needle) and any(haystack[i : i + len(needle)] == needle for i in range(len(haystack)))


def _misprice(rows: list[Row], rng: random.Random, n: int, used: set[int]) -> list[Injected]:
    candidates = [
        i for i, r in enumerate(rows) if isinstance(r.get("price"), int | float) and r["price"] >= 10
    ]
    made = []
    for k, i in enumerate(_pick(rng, candidates, n, used)):
        error = PRICE_ERRORS[k % len(PRICE_ERRORS)]
        old = float(rows[i]["price"])
        if error == "x100":
            new = round(old * 100, 2)
        elif error == "/100":
            new = round(old / 100, 2)
        else:
            whole, _, cents = f"{old:.2f}".partition(".")
            drop = rng.randrange(len(whole))
            new = float((whole[:drop] + whole[drop + 1 :] or "0") + "." + cents)
        rows[i]["price"] = new
        made.append(Injected(PRICE_OUTLIER, rows[i]["id"], {"error": error, "from": old, "to": new}))
    return made
