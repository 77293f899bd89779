"""Catalogue reading: every row validated, bad rows reported with their line and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.catalogue import Product, catalogue_hash, load_catalogue
from recsys.errors import CatalogueError


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_fixture_catalogue_loads_cleanly(fixture_catalogue: Path) -> None:
    loaded = load_catalogue(fixture_catalogue)
    assert len(loaded.products) >= 1000
    assert loaded.errors == []
    departments = {p.category[0] for p in loaded.products if p.category}
    assert len(departments) >= 5


def test_bad_rows_are_reported_with_line_and_reason_and_skipped(tmp_path: Path) -> None:
    good = {
        "id": "a",
        "title": "Red Shoe",
        "price": 10,
        "category": ["Shoes"],
        "attributes": {"colour": "red"},
    }
    path = write(
        tmp_path / "c.jsonl",
        [
            json.dumps(good),  # 1 ok
            json.dumps({"title": "no id"}),  # 2 missing id
            json.dumps({"id": "b", "title": "x", "price": "cheap"}),  # 3 wrong type
            json.dumps({"id": "a", "title": "dupe"}),  # 4 duplicate
            "{not json",  # 5 unparsable
            "",  # 6 blank: ignored
            json.dumps({"id": "c", "title": "Blue Shoe", "in_stock": "yes"}),  # 7 wrong type
            json.dumps({"id": "d", "title": "Green Shoe", "attributes": {"sizes": ["8", 9]}}),  # 8 bad list
            json.dumps({"id": "e", "title": "Ok Shoe", "image_url": "http://x/e.jpg"}),  # 9 ok, extra kept
            json.dumps(["not", "an", "object"]),  # 10 not an object
        ],
    )
    loaded = load_catalogue(path)
    assert [p.id for p in loaded.products] == ["a", "e"]
    assert loaded.products[1].attributes == {"image_url": "http://x/e.jpg"}
    reasons = {e.line: e.reason for e in loaded.errors}
    assert set(reasons) == {2, 3, 4, 5, 7, 8, 10}
    assert "id" in reasons[2]
    assert "price" in reasons[3]
    assert "duplicate" in reasons[4] and "line 1" in reasons[4]
    assert "JSON" in reasons[5]
    assert "in_stock" in reasons[7]
    assert "sizes" in reasons[8]
    assert "line 4 (id 'a')" in str(next(e for e in loaded.errors if e.line == 4))


def test_csv_catalogue(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        [
            "id,title,brand,category,price,in_stock,colour",
            "1,Trail Shoe,Acme,Footwear > Running,59.5,true,blue",
            "2,,Acme,Footwear,10,true,red",
            "3,Road Shoe,Acme,Footwear > Running,abc,false,",
            '4,"Sock, wool",Knit,Clothing,5,no,grey',
        ],
    )
    loaded = load_catalogue(path)
    assert [p.id for p in loaded.products] == ["1", "4"]
    first = loaded.products[0]
    assert first.category == ("Footwear", "Running")
    assert first.price == 59.5 and first.in_stock is True
    assert first.attributes == {"colour": "blue"}
    assert loaded.products[1].title == "Sock, wool" and loaded.products[1].in_stock is False
    assert {e.line for e in loaded.errors} == {3, 4}


def test_unreadable_catalogue_raises(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "missing.jsonl")
    with pytest.raises(CatalogueError, match="unsupported"):
        load_catalogue(write(tmp_path / "c.xml", ["<x/>"]))


def test_catalogue_hash_tracks_content() -> None:
    a = [Product(id="1", title="A"), Product(id="2", title="B")]
    b = [Product(id="1", title="A"), Product(id="2", title="B", price=3.0)]
    assert catalogue_hash(a) != catalogue_hash(b)
