"""Contradictions: an attribute that the product's own title (or, failing that, its description) denies.

Mentions are found with the catalogue's own vocabulary (:class:`~recsys.catalogue.Vocabulary`: the
colours, genders, materials and sizes its products carry), longest phrase first, so "navy blue" is one
colour. A mention that agrees with no value of the attribute is a contradiction only if such mentions
are trustworthy *in this catalogue*: how often the same word in the same place (with the same word
before it, or after it) agrees with the attribute on the other products. "Red" in "Red Tape Men Brown
Shoes" names a brand, and the catalogue says so: titles with "red tape" rarely have colour red.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from recsys.audit.data import CHECKED, AuditData
from recsys.audit.findings import CONTRADICTION, Finding
from recsys.audit.thresholds import Thresholds
from recsys.catalogue.vocabulary import words

SOURCES = ("title", "description")
Phrase = tuple[str, ...]
# attribute values that agree with any mention: a unisex product may be titled for men or for women, a
# multicoloured one by its main colour (a title that says "multi" or "unisex" is not so lenient)
COMPATIBLE_WITH_ALL: dict[str, set[Phrase]] = {
    "gender": {("unisex",)},
    "colour": {("multi",), ("multicolour",), ("multicolor",), ("multi", "colour"), ("multi", "color")},
}


@dataclass(frozen=True)
class Mention:
    field: str
    value: Phrase  # as the vocabulary has it
    before: str  # the word before the mention ("^": the text's start)
    after: str  # the word after it ("$": the text's end)
    source: str


def find_contradictions(data: AuditData, thresholds: Thresholds) -> list[Finding]:
    lexicon = _lexicon(data)
    if not lexicon:
        return []
    longest = max(len(p) for p in lexicon)
    parsed: dict[str, list[Phrase]] = {}
    values = {
        name: [parsed[v] if v in parsed else parsed.setdefault(v, _values(v)) for v in data.fields[name]]
        for name in CHECKED
    }
    spelled: dict[str, str] = {}
    per_row: list[list[tuple[Mention, bool]]] = []
    stats: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0])  # key -> [agree, seen]
    for row in range(len(data)):
        found: list[tuple[Mention, bool]] = []
        for mention in _mentions(data, row, lexicon, longest, spelled):
            have = values[mention.field][row]
            if not have:
                continue
            agrees = any(_compatible(mention.field, mention.value, v) for v in have)
            found.append((mention, agrees))
            for key in _keys(mention):
                counts = stats[key]
                counts[0] += agrees
                counts[1] += 1
        per_row.append(found)
    prior = {
        (name, source): _rate(stats, ("field", name, source), 0.5, 1)
        for name in CHECKED
        for source in SOURCES
    }
    findings = []
    support = thresholds.contradiction_min_support
    for row, found in enumerate(per_row):
        by_field: dict[str, list[tuple[Mention, bool]]] = defaultdict(list)
        for mention, agrees in found:
            by_field[mention.field].append((mention, agrees))
        for name, mentions in by_field.items():
            sources = {m.source for m, _ in mentions}
            source = "title" if "title" in sources else "description"
            used = [(m, a) for m, a in mentions if m.source == source]
            if any(agrees for _, agrees in used):
                continue  # "black & white" on a black product agrees
            best: tuple[float, Mention, int] | None = None
            for mention, _ in used:
                trust, seen = _trust(stats, mention, prior[(name, source)], support)
                if best is None or trust > best[0]:
                    best = (trust, mention, seen)
            if best is None or best[0] < thresholds.contradiction_score:
                continue
            trust, mention, seen = best
            findings.append(
                Finding(
                    kind=CONTRADICTION,
                    ids=(data.ids[row],),
                    score=trust,
                    field=name,
                    evidence={
                        **data.describe(row),
                        "attribute": data.fields[name][row],
                        f"{source}_says": data.vocabulary.shown(name, mention.value),
                        "source": source,
                        "agreement_elsewhere": round(trust, 4),
                        "mentions_like_it": seen,
                    },
                )
            )
    return findings


def _lexicon(data: AuditData) -> dict[Phrase, list[str]]:
    """Every vocabulary phrase of the checked fields, with the fields it names."""
    out: dict[Phrase, list[str]] = defaultdict(list)
    for name in CHECKED:
        for phrase in data.vocabulary.terms.get(name, {}):
            if phrase:
                out[phrase].append(name)
    return dict(out)


def _mentions(
    data: AuditData, row: int, lexicon: dict[Phrase, list[str]], longest: int, spelled: dict[str, str]
) -> Iterator[Mention]:
    description = data.products[row].get("description")
    texts = (
        ("title", data.title_words[row]),
        ("description", words(str(description)) if description else ()),
    )
    for source, text in texts:
        tokens = [spelled[t] if t in spelled else spelled.setdefault(t, _token(t, lexicon)) for t in text]
        i = 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                phrase = tuple(tokens[i : i + n])
                if phrase in lexicon:
                    before = tokens[i - 1] if i > 0 else "^"
                    after = tokens[i + n] if i + n < len(tokens) else "$"
                    for name in lexicon[phrase]:
                        yield Mention(name, phrase, before, after, source)
                    i += n - 1
                    break
            i += 1


def _token(token: str, lexicon: dict[Phrase, list[str]]) -> str:
    """Possessives and plurals as the vocabulary spells them: "men's" and "mens" are "men"."""
    if (token,) in lexicon:
        return token
    for candidate in (token.removesuffix("'s"), token.removesuffix("s"), token + "s"):
        if (candidate,) in lexicon:
            return candidate
    return token


def _values(text: str) -> list[Phrase]:
    return [phrase for part in text.split(",") if (phrase := words(part))]


def _compatible(name: str, said: Phrase, value: Phrase) -> bool:
    if said == value or set(said) <= set(value) or set(value) <= set(said):
        return True  # "blue" and "navy blue"; "off white" and "white"
    return value in COMPATIBLE_WITH_ALL.get(name, set())  # the attribute says unisex, or multicoloured


def _keys(m: Mention) -> list[tuple[object, ...]]:
    return [
        ("field", m.field, m.source),
        ("value", m.field, m.source, m.value),
        ("before", m.field, m.source, m.value, m.before),
        ("after", m.field, m.source, m.value, m.after),
    ]


def _rate(
    stats: dict[tuple[object, ...], list[int]],
    key: tuple[object, ...],
    prior: float,
    weight: int,
    own: int = 0,
) -> float:
    """Agreement rate under ``key``, shrunk towards ``prior`` with ``weight``; ``own`` disagreeing mentions
    (the product's own) are left out."""
    agree, seen = stats.get(key, (0, 0))
    return (agree + prior * weight) / (max(0, seen - own) + weight)


def _trust(
    stats: dict[tuple[object, ...], list[int]], m: Mention, prior: float, support: int
) -> tuple[float, int]:
    """How often a mention like ``m`` agrees with the attribute on the *other* products: the word's own
    rate, shrunk towards the field's, then the least of its rates with the same word before and after,
    each shrunk towards the word's."""
    value_key = ("value", m.field, m.source, m.value)
    word = _rate(stats, value_key, prior, support, own=1)
    trust = word
    for key in _keys(m)[2:]:
        trust = min(trust, _rate(stats, key, word, support, own=1))
    return trust, max(0, stats.get(value_key, [0, 0])[1] - 1)
