"""Hostile catalogue input, generated: every bad row is reported with its line and reason, every good row is
loaded, the counts add up, and a build publishes exactly the good rows (or nothing, when none is good)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.build.pipeline import build_index
from recsys.catalogue import load_catalogue
from recsys.errors import BuildError
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import Settings

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
good_rows = st.fixed_dictionaries(
    {"title": words.filter(str.strip)},
    optional={
        "description": st.text(max_size=200),
        "brand": words.filter(str.strip),
        "category": st.lists(words.filter(str.strip), max_size=3),
        "price": st.floats(min_value=0, max_value=1e6, allow_nan=False),
        "in_stock": st.booleans(),
        "attributes": st.dictionaries(
            words, st.one_of(words, st.integers(-5, 500), st.lists(words, max_size=3))
        ),
    },
)

# each hostile kind: (the line as bytes, given a good row and its id) -> bytes, and whether it is still good
BadLine = tuple[bytes, bool]


def encode(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


HOSTILE = {
    "good": lambda row: (encode(row), True),
    "crlf": lambda row: (encode(row) + b"\r", True),
    "truncated": lambda row: (encode(row)[: max(1, len(encode(row)) // 2)], False),
    "invalid utf-8": lambda row: (encode({**row, "title": "x"})[:-2] + b"\xff\xfe" + b'"}', False),
    "title not a string": lambda row: (encode({**row, "title": 42}), False),
    "no title": lambda row: (encode({k: v for k, v in row.items() if k != "title"}), False),
    "price NaN": lambda row: (encode(row)[:-1] + b', "price": NaN}', False),
    "price negative": lambda row: (encode({**row, "price": -3}), False),
    "price huge": lambda row: (encode({**row, "price": 1e300}), False),
    "price a string": lambda row: (encode({**row, "price": "9.99"}), False),
    "nested attributes": lambda row: (encode({**row, "attributes": {"size": {"eu": 42}}}), False),
    "in_stock a string": lambda row: (encode({**row, "in_stock": "yes"}), False),
    "not an object": lambda row: (b"[1, 2, 3]", False),
    "id too long": lambda row: (encode({**row, "id": "x" * 300}), False),
}


@st.composite
def catalogues(draw: st.DrawFn) -> tuple[bytes, dict[int, str], set[int], bool]:
    """A catalogue file, the line of every good product (line -> id), the bad lines, and a BOM flag."""
    rows = draw(st.lists(st.tuples(good_rows, st.sampled_from(sorted(HOSTILE))), max_size=25))
    duplicate = draw(st.booleans())
    bom = draw(st.booleans())
    lines: list[bytes] = []
    good: dict[int, str] = {}
    bad: set[int] = set()
    for number, (row, kind) in enumerate(rows, start=1):
        pid = f"p/{number}/../\u00e9"  # ids are data: slashes, dots and non-ASCII must not matter
        line, ok = HOSTILE[kind]({"id": pid, **row})
        lines.append(line)
        (good.__setitem__(number, pid) if ok else bad.add(number))
    if duplicate and good:
        first = min(good)
        lines.append(lines[first - 1])
        bad.add(len(lines))
    data = b"\n".join(lines) + (b"\n" if lines and draw(st.booleans()) else b"")
    return (b"\xef\xbb\xbf" if bom else b"") + data, good, bad, bom


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogues())
def test_every_bad_row_is_reported_and_every_good_row_loaded(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[bytes, dict[int, str], set[int], bool]
) -> None:
    data, good, bad, _ = case
    path = tmp_path_factory.mktemp("hostile") / "catalogue.jsonl"
    path.write_bytes(data)
    loaded = load_catalogue(path)
    assert {p.id for p in loaded.products} == set(good.values())
    assert {e.line for e in loaded.errors} == bad
    assert all(e.reason for e in loaded.errors)
    assert loaded.adds_up and loaded.rows == len(good) + len(bad)


def test_a_ten_megabyte_description_is_cut_and_memory_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as fh:
        for i in range(5):
            fh.write(encode({"id": f"big-{i}", "title": "Huge", "description": "word " * 2_000_000}) + b"\n")
    tracemalloc.start()
    loaded = load_catalogue(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(loaded.products) == 5 and not loaded.errors
    assert all(len(p.description or "") <= 20_000 for p in loaded.products)
    assert peak < 80 * 2**20  # the file is 50 MB: lines are read one at a time


def test_a_build_publishes_exactly_the_good_rows_or_nothing(
    settings: Settings, encoder: Encoder, template: Template, tmp_path: Path
) -> None:
    lines = [
        encode({"id": "a", "title": "Good lamp", "price": 20.0}),
        b'{"id": "b", "title": "Truncated',
        encode({"id": "c", "title": "Bad price", "price": -1}),
        b"\xff\xfe not utf-8",
        encode({"id": "d", "title": "Good desk", "price": 120.0}),
        encode({"id": "a", "title": "Duplicate of a"}),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    result = build_index(path, settings=settings, encoder=encoder, template=template)
    counts = result.manifest.counts
    assert (counts.products, counts.rejected) == (2, 4)
    assert sorted(e.line for e in result.errors) == [2, 3, 4, 6]
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(BuildError, match="no valid product"):
        build_index(empty, settings=settings, encoder=encoder, template=template)
    assert IndexStore(settings.index_dir).current() == result.version
