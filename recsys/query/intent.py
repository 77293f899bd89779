"""Query understanding: what a shopper's words ask for beyond their text, read with the catalogue's
own vocabulary.

* Price constraints the shopper typed ("under $50", "below 50", "less than 50 dollars", "between 20
  and 40", "$20-$40", "over 200", "not more than $40", "$50 or less", "$300+", "under $1k") become
  hard bounds; "around $50" is within a fifth of it either way. A number followed by a unit ("under
  50 inch") is not a price.
* Price intent ("cheap", "affordable", "budget", "inexpensive"; "premium", "luxury", "high-end")
  becomes a price band: the low or high third of each product's own category, as the build fitted it.
* Attribute mentions that match the catalogue's values (colour, brand, gender, size, material; "rose
  gold" as one colour) are kept only where the rest of the query agrees: some product with that value
  matches the other words (so "apple iphone case" names the brand and "apple juice" does not), or
  nothing else was typed. Category names are noted, for the price band's reference and the report.

* Misspelt words are corrected first, from the catalogue's own words (:mod:`recsys.catalogue.spelling`):
  "refrigirator" searches "refrigerator"; :attr:`Intent.corrections` says what was replaced.

Price phrases and price-intent words are taken out of the text the model and BM25 see; attribute
words stay in it. A contradictory query ("under $10 over $500", "cheap luxury watch") keeps its text,
drops the contradiction and says so in :attr:`Intent.note`; nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recsys.catalogue.spelling import Known, Spelling
from recsys.catalogue.vocabulary import Vocabulary, words

LOW, HIGH = "low", "high"
BAND_WORDS: dict[str, tuple[str, ...]] = {
    LOW: (
        "cheap",
        "cheapest",
        "cheaper",
        "affordable",
        "budget",
        "inexpensive",
        "low cost",
        "low priced",
        "low price",
        "budget friendly",
        "economical",
        "bargain",
        "value for money",
    ),
    HIGH: (
        "premium",
        "luxury",
        "luxurious",
        "high end",
        "upscale",
        "expensive",
        "top of the line",
        "top end",
        "high quality",
    ),
}
# fields matched against the vocabulary, in the order they claim words
ATTRIBUTES = ("colour", "brand", "gender", "material", "size")
GENDER_FORMS = {"ladies": "women", "lady": "women", "womans": "women", "mans": "men", "kids": "kids"}
UNITS = (
    "inch|inches|in|ft|feet|foot|cm|mm|m|meter|meters|metre|metres|gb|tb|mb|mah|w|watt|watts|v|volt|volts|"
    "hz|khz|mhz|lb|lbs|kg|g|oz|ml|l|litre|litres|liter|liters|gal|gallon|gallons|qt|pack|pk|pcs|pc|"
    "piece|pieces|count|ct|x|amp|amps|a|btu|mp|k|p|mph|psi|sq|cu|yd|yards|degree|degrees|gauge|ga|"
    "series|year|years|yr|yrs|month|months|week|weeks|day|days|hour|hours|min|mins|minute|minutes|"
    "mile|miles|km|person|people|seat|seater|lumens"
)
AROUND = 0.2  # "around $50": $40 to $60
_NUM = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
_K = r"(?:k\b)?"  # thousands: "$1k", "1.5k dollars"
_CUR = r"(?:\s*(?:dollars?|usd|bucks|\$))"
_NOT_UNIT = rf"(?!\s*(?:-\s*)?(?:{UNITS})\b)(?![\d/x])"
_PRICE = rf"\$\s*{_NUM}{_K}{_CUR}?|{_NUM}{_K}{_CUR}"  # a currency said: "$50", "50 dollars", "$1.5k"
_MONEY = rf"{_PRICE}|{_NUM}k\b|{_NUM}{_NOT_UNIT}"  # after a comparison, a bare number too ("under 1k")
_LEAD = r"(?:\b(?:priced|costing|costs?|prices?|for|at)\s+)?"  # "priced under $50": taken out with it
_SPAN = r"(?:\bin\s+the\s+)?"  # "in the $20-$40 range"
_RANGE = r"(?:\s+(?:price\s+)?range\b)?"


def _comparison(words: str, symbols: str = "", amount: str = _MONEY) -> re.Pattern[str]:
    """An ``amount`` after a comparison: "under $50", "not more than 40", "< 50"."""
    either = rf"\b(?:{words})|{symbols}" if symbols else rf"\b(?:{words})"
    return re.compile(rf"{_LEAD}(?:{either})\s*(?P<a>{amount})")


# In order: each match is taken out of the text before the next pattern looks, so the negated forms
# ("not less than $50": a minimum) go before the plain ones ("less than $50": a maximum).
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "between",
        re.compile(
            rf"{_LEAD}\b(?:between|from)\s+(?P<a>{_MONEY})\s*(?:and|to|-|–)\s*(?P<b>{_MONEY}){_RANGE}"
        ),
    ),
    (
        "range",
        re.compile(
            rf"{_SPAN}{_LEAD}(?:(?P<a>\$\s*{_NUM}{_K}{_CUR}?)\s*(?:-|–|to)\s*(?P<b>\$?\s*{_NUM}{_K}{_CUR}?)"
            rf"|(?P<c>{_NUM}\$?)\s*(?:-|–|to)\s*(?P<d>{_NUM}{_K}{_CUR})){_RANGE}"
        ),
    ),
    # "around $50": a currency said, for "a book about 1984" is no price
    ("around", _comparison(r"around|about|approx(?:imately)?|roughly|close\s+to", "~", _PRICE)),
    ("max", _comparison(r"(?:not|no)\s+(?:more|higher|greater|over|above)(?:\s+than)?|not\s+to\s+exceed")),
    ("min", _comparison(r"(?:not|no)\s+(?:less|lower|cheaper|under|below)(?:\s+than)?")),
    (
        "max",
        _comparison(
            r"under|below|sub|less\s+than(?:\s+or\s+equal\s+to)?|cheaper\s+than|up\s+to|upto|at\s+most|"
            r"max(?:imum)?|within|lower\s+than|at\s+or\s+(?:below|under)",
            r"<=?|≤",
        ),
    ),
    (
        "min",
        _comparison(
            r"over|above|more\s+than|greater\s+than|at\s+least|starting\s+at|min(?:imum)?|higher\s+than",
            r">=?|≥",
        ),
    ),
    # a price then its bound: "$50 or less", "40 bucks max", "$300+", "$300 and up"
    (
        "max",
        re.compile(
            rf"(?P<a>{_PRICE})\s*(?:or\s+(?:less|under|below|lower|cheaper)|"
            r"and\s+(?:under|below|less|lower)|max(?:imum)?|at\s+most|tops)\b"
        ),
    ),
    (
        "min",
        re.compile(
            rf"(?P<a>{_PRICE})\s*(?:\+|(?:or\s+(?:more|over|above|higher)|and\s+(?:up|over|above|more|higher)|"
            r"minimum|at\s+least)\b)"
        ),
    ),
)

Agrees = Callable[[str, str, str], bool]  # (field, catalogue value, the rest of the query) -> agree?
# the words the parser itself reads ("under", "dollars", "cheap", "inches"): never spelling mistakes
GRAMMAR = frozenset(
    re.findall(
        r"[a-z]{4,}",
        " ".join(
            [
                UNITS,
                *(p.pattern for _, p in PATTERNS),
                *(w for ws in BAND_WORDS.values() for w in ws),
                *GENDER_FORMS,
            ]
        ),
    )
)


@dataclass(frozen=True)
class Intent:
    """What was understood. ``text`` is the query left for the model and BM25."""

    text: str
    price_min: float | None = None
    price_max: float | None = None
    price_band: str | None = None  # "low" or "high": the third of each product's own category
    attributes: dict[str, str] = field(default_factory=dict)  # field -> the catalogue's value
    category: str | None = None  # a category name the query mentions
    only_attribute: str | None = None  # the query is just this attribute and a category ("black boots")
    note: str | None = None  # what was not applied, and why
    corrections: dict[str, str] = field(default_factory=dict)  # a word as typed -> what was searched

    @property
    def empty(self) -> bool:
        return (
            self.price_min is None
            and self.price_max is None
            and self.price_band is None
            and not self.attributes
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        for name in ("price_min", "price_max", "price_band"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(self.attributes)
        if self.category:
            out["category"] = self.category
        if self.note:
            out["note"] = self.note
        if self.corrections:
            out["corrections"] = dict(self.corrections)
        return out


def understand(
    query: str,
    vocabulary: Vocabulary,
    agrees: Agrees,
    *,
    prices: bool = True,
    spelling: Spelling | None = None,
    known: Known | None = None,
) -> Intent:
    """Parse ``query``. ``prices``: whether the catalogue has prices (without them, price words stay
    ordinary words). ``agrees`` confirms an attribute mention against the catalogue. ``spelling``
    corrects the words that neither it, the model nor ``known`` knows, before anything else is read."""
    text = " ".join(query.lower().split())
    corrections: dict[str, str] = {}
    if spelling is not None:
        text, corrections = spelling.correct(text, lambda w: w in GRAMMAR or (known is not None and known(w)))
    notes: list[str] = []
    low = high = None
    if prices:
        low, high, text = _price_bounds(text)
        if low is not None and high is not None and low > high:
            notes.append(f"the price bounds contradict each other ({low:g} > {high:g}); both ignored")
            low = high = None
    band = None
    if prices:
        bands, text = _bands(text)
        if len(bands) > 1:
            notes.append("both cheap and premium were asked for; no price band applied")
        elif bands:
            band = bands.pop()
    tokens = list(words(text))
    claimed = [False] * len(tokens)
    attributes: dict[str, str] = {}
    spans: dict[str, tuple[int, int]] = {}
    for name in ATTRIBUTES:
        found = _mention(tokens, claimed, vocabulary, name)
        if found is None:
            continue
        start, stop, value = found
        rest = " ".join(t for i, t in enumerate(tokens) if not start <= i < stop)
        rest = " ".join(w for w in rest.split() if w not in ("size", "for", "in", "by"))
        if agrees(name, value, rest):
            attributes[name] = value
            spans[name] = (start, stop)
            for i in range(start, stop):
                claimed[i] = True
    category_span = _mention(tokens, claimed, vocabulary, "category")
    category = category_span[2] if category_span else None
    only = None
    if len(attributes) == 1 and category_span is not None:
        (name, (start, stop)), (c_start, c_stop, _) = next(iter(spans.items())), category_span
        content = [i for i, t in enumerate(tokens) if t not in ("for", "in", "size", "the", "a")]
        if all(start <= i < stop or c_start <= i < c_stop for i in content):
            only = name
    left = " ".join(text.split()).strip(" -,")
    if not left:
        left = " ".join(query.split())  # nothing but a price phrase: search the words as typed
    return Intent(
        text=left,
        price_min=low,
        price_max=high,
        price_band=band,
        attributes=attributes,
        category=category,
        only_attribute=only,
        note="; ".join(notes) or None,
        corrections=corrections,
    )


def plain(query: str, note: str | None = None) -> Intent:
    """No understanding: the query as typed."""
    return Intent(text=" ".join(query.split()), note=note)


def _amount(match: str) -> float:
    number = re.search(rf"{_NUM}(k\b)?", match)
    assert number is not None
    whole, cents, thousands = number.group(1).replace(",", ""), number.group(2), number.group(3)
    value = float(f"{whole}.{cents}" if cents else whole)
    return value * 1000 if thousands else value


def _price_bounds(text: str) -> tuple[float | None, float | None, str]:
    low: float | None = None
    high: float | None = None
    for kind, pattern in PATTERNS:
        while (match := pattern.search(text)) is not None:
            x, y = _bounds(kind, {k: v for k, v in match.groupdict().items() if v})
            if x is not None:
                low = x if low is None else max(low, x)
            if y is not None:
                high = y if high is None else min(high, y)
            text = (text[: match.start()] + " " + text[match.end() :]).strip()
    return low, high, " ".join(text.split())


def _bounds(kind: str, groups: dict[str, str]) -> tuple[float | None, float | None]:
    """The (low, high) price bounds one match of a ``kind`` of pattern sets."""
    if kind in ("between", "range"):
        a, b = (groups.get("a") or groups["c"]), (groups.get("b") or groups["d"])
        x, y = sorted((_amount(a), _amount(b)))
        return x, y
    value = _amount(groups["a"])
    if kind == "around":  # within a fifth of it either way
        return round(value * (1 - AROUND), 2), round(value * (1 + AROUND), 2)
    return (None, value) if kind == "max" else (value, None)


def _bands(text: str) -> tuple[set[str], str]:
    found: set[str] = set()
    for band, phrases in BAND_WORDS.items():
        for phrase in sorted(phrases, key=len, reverse=True):
            pattern = re.compile(r"\b" + r"[\s-]+".join(map(re.escape, phrase.split())) + r"\b")
            if pattern.search(text):
                found.add(band)
                text = pattern.sub(" ", text)
    return found, " ".join(text.split())


def _forms(token: str, name: str) -> tuple[str, ...]:
    """Spellings of ``token`` to look up: as typed, without a possessive or a plural s."""
    forms = [token]
    if token.endswith("'s"):
        forms.append(token[:-2])
    if name in ("gender", "category") and token.endswith("s") and len(token) > 3:
        forms.append(token[:-1])
    if name == "category":
        forms.append(token + "s")
        if token.endswith("es"):
            forms.append(token[:-2])
    if name == "gender" and token in GENDER_FORMS:
        forms.append(GENDER_FORMS[token])
    return tuple(dict.fromkeys(forms))


def _mention(
    tokens: list[str], claimed: list[bool], vocabulary: Vocabulary, name: str
) -> tuple[int, int, str] | None:
    """The longest unclaimed run of ``tokens`` that is a ``name`` value of the vocabulary."""
    longest = min(vocabulary.longest(name), len(tokens))
    for size in range(longest, 0, -1):
        for start in range(len(tokens) - size + 1):
            if any(claimed[start : start + size]):
                continue
            run = tokens[start : start + size]
            last = run[-1]
            for form in _forms(last, name):
                key = (*run[:-1], form)
                if vocabulary.count(name, key) and _plausible(name, key, tokens, start):
                    return start, start + size, vocabulary.shown(name, key)
    return None


def _plausible(name: str, value: tuple[str, ...], tokens: list[str], start: int) -> bool:
    """Sizes that are bare numbers or single letters count only right after the word "size"."""
    if name != "size":
        return True
    text = " ".join(value)
    if len(text) >= 2 and not any(ch.isdigit() for ch in text):
        return True
    return start > 0 and tokens[start - 1] == "size"
