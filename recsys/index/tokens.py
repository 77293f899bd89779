"""How product and query text is cut into terms for BM25: words with units and sizes normalised,
character 3-grams and word bigrams.

* Words: HTML entities decoded, lowercase; ``cu. ft.``/``cubic feet`` → ``cuft``, ``sq. ft.`` → ``sqft``;
  after a number, a unit's spellings become one (``1/2 in.`` = ``1/2"`` = ``1/2 inch``; ft, gal, lb, oz,
  mm, cm, volt, watt, amp, gb, tb, mah); ``2x4`` → ``2 x 4``; letter/digit compounds and hyphenated
  model numbers split (``16gb`` → ``16 gb``, ``sc-141`` → ``sc 141``) while fractions and decimals stay
  whole (``1/2``, ``3.5``); English stopwords and one-letter words go, digits stay; words without a
  digit are stemmed (PyStemmer, English).
* 3-grams: of every word without a digit (not a stopword), padded ``#word#``, unstemmed: they catch
  misspellings and run-together words ("refrigirator", "videogames").
* Bigrams: each pair of adjacent word terms (``wireless_mouse``, ``1/2_inch``), of the title only:
  they rank "wireless mouse" above "mouse pad for a wireless keyboard".

Queries go through the same functions as documents.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from itertools import pairwise
from typing import Any

UNITS = (
    (r"(?:in\.|inch(?:es)?\b|\"|''|in\b)", " inch "),
    (r"(?:ft\.|feet\b|foot\b|ft\b|')", " ft "),
    (r"(?:gal\.|gallons?\b|gal\b)", " gal "),
    (r"(?:lbs?\.|lbs?\b|pounds?\b)", " lb "),
    (r"(?:oz\.|ounces?\b|oz\b)", " oz "),
    (r"(?:mm\b|millimeters?\b)", " mm "),
    (r"(?:cm\b|centimeters?\b)", " cm "),
    (r"(?:volts?\b|v\b)", " volt "),
    (r"(?:watts?\b|w\b)", " watt "),
    (r"(?:amps?\b|amperes?\b|a\b)", " amp "),
    (r"(?:gb\b|gigabytes?\b)", " gb "),
    (r"(?:tb\b|terabytes?\b)", " tb "),
    (r"(?:mah\b)", " mah "),
)
_NUMBER = r"(\d+(?:\.\d+)?(?:/\d+)?)"
_UNIT_RES = tuple((re.compile(_NUMBER + r"\s*-?\s*" + pattern, re.I), unit) for pattern, unit in UNITS)
_CUFT = re.compile(r"\bcu\.?\s*ft\.?|\bcubic\s+f(?:ee|oo)t\b", re.I)
_SQFT = re.compile(r"\bsq\.?\s*ft\.?|\bsquare\s+f(?:ee|oo)t\b", re.I)
_DIMS = re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)", re.I)
_TOKEN = re.compile(r"[a-z0-9]+(?:[./][0-9]+)*")
_PARTS = re.compile(r"[a-z]+|\d+(?:[./]\d+)*")
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[a-z]")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """The word terms of ``text``."""
    t = html.unescape(text).lower()
    t = _CUFT.sub(" cuft ", t)
    t = _SQFT.sub(" sqft ", t)
    for pattern, unit in _UNIT_RES:
        t = pattern.sub(lambda m, unit=unit: m.group(1) + unit, t)  # type: ignore[misc]
    t = _DIMS.sub(" x ", t)
    stop = _stopwords()
    out: list[str] = []
    for token in _TOKEN.findall(t):
        mixed = _DIGIT.search(token) and _LETTER.search(token)
        for part in _PARTS.findall(token) if mixed else (token,):
            if part in stop or (len(part) < 2 and not part.isdigit()):
                continue
            out.append(part)
    stems = stem_words(out)
    return [w if _DIGIT.search(w) else s for w, s in zip(out, stems, strict=True)]


def stem_words(terms: list[str]) -> list[str]:
    """The English stems BM25 indexes (PyStemmer), one per term."""
    stems: list[str] = _stemmer().stemWords(terms)
    return stems


def bigrams(text: str) -> list[str]:
    """Each pair of adjacent word terms of ``text`` (stopwords dropped first, so "mouse for gaming"
    gives ``mous_game``)."""
    terms = words(text)
    return [f"{a}_{b}" for a, b in pairwise(terms)]


def trigrams(text: str) -> list[str]:
    """The character 3-grams of the words of ``text`` that hold no digit."""
    stop = _stopwords()
    out: list[str] = []
    for word in _TOKEN.findall(html.unescape(text).lower()):
        if word in stop or _DIGIT.search(word):
            continue
        padded = f"#{word}#"
        out += [padded[i : i + 3] for i in range(max(1, len(padded) - 2))]
    return out
