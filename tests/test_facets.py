"""Facets (fast tier, hash encoder): the counting core against plain Python counts of the catalogue,
the search pool as the matching set, the live delta, and ``GET /v1/facets`` with its validation and
its place in the OpenAPI document."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from recsys.api import create_app
from recsys.build.assemble import BuildResult
from recsys.build.updates import DeltaWriter
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.cache import InProcessCache
from recsys.query.engine import Engine
from recsys.query.facets import MAX_VALUES, facets_for, key_counts, nice, price_facet
from recsys.query.filters import FilterColumns, Filters
from recsys.settings import Settings


@pytest.fixture(scope="module")
def products(fixture_catalogue: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in fixture_catalogue.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def client(full_build: tuple[Settings, BuildResult], full_engine: Engine) -> FlaskClient:
    return create_app(full_build[0], engine=full_engine, cache=InProcessCache()).test_client()


def values(facet: dict[str, Any]) -> dict[str, int]:
    return {v["value"]: v["count"] for v in facet["values"]}


# -- the pure core ----------------------------------------------------------------------------------


def test_key_counts_count_the_selected_rows_of_every_posting() -> None:
    rows = [
        {"brand": "Acme", "category": ["A", "B"], "attributes": {"colour": "red", "features": ["x", "y"]}},
        {"brand": "acme", "category": ["A"], "attributes": {"colour": "Red"}},
        {"brand": "Other", "category": ["C"], "attributes": {"features": ["x"]}},
    ]
    columns = FilterColumns.of(rows)
    counts = key_counts(columns, np.array([True, True, False]))
    found = {key: int(counts[n]) for key, n in columns.keys.items() if counts[n]}
    assert found == {
        ("category", "a"): 2,
        ("category", "a", "b"): 1,
        ("brand", "acme"): 2,
        ("attr", "colour", "red"): 2,
        ("attr", "features", "x"): 1,
        ("attr", "features", "y"): 1,
    }
    assert not key_counts(columns, np.zeros(3, dtype=bool)).any()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(19.49, 20.0), (42.0, 40.0), (131.49, 150.0), (0.7, 0.75), (880, 1000.0), (0, 0.0)],
)
def test_nice_rounds_to_a_round_price(value: float, expected: float) -> None:
    assert nice(value) == expected


def test_price_buckets_cover_every_priced_product_once() -> None:
    prices = np.array([5.0, 9.99, 12.5, 19.49, 24.0, 42.0, 55.0, 131.49, 900.0, np.nan])
    facet = price_facet(prices)
    buckets = facet["buckets"]
    assert facet["unpriced"] == 1 and facet["min"] == 5.0 and facet["max"] == 900.0
    assert sum(b["count"] for b in buckets) == 9
    assert buckets[0]["min"] == 0.0 and buckets[-1]["max"] is None
    for low, high in itertools.pairwise(buckets):
        assert low["max"] == high["min"]  # contiguous, round edges
    assert price_facet(np.array([np.nan]))["buckets"] == []


# -- over the fixture catalogue ---------------------------------------------------------------------


def test_without_a_query_the_whole_catalogue_is_counted(full_engine: Engine, products: list[dict]) -> None:
    version, body = facets_for(full_engine, None, None)
    facets = body["facets"]
    assert version == full_engine.live().version and body["matching"] == "filtered"
    assert facets["total"] == len(products)
    brands = Counter(p["brand"] for p in products if p.get("brand"))
    shown = values(facets["brand"])
    assert len(shown) == min(MAX_VALUES, len(brands)) and facets["brand"]["more"] == len(brands) - len(shown)
    assert all(brands[name] == n for name, n in shown.items())  # spelt as the catalogue does
    roots = Counter(p["category"][0] for p in products)
    top = {c["value"]: c["count"] for c in facets["category"] if c["depth"] == 0}
    assert top == dict(roots)
    assert facets["in_stock"]["true"] == sum(p.get("in_stock") is True for p in products)
    assert sum(b["count"] for b in facets["price"]["buckets"]) == sum(
        p.get("price") is not None for p in products
    )
    colour = next(a for a in facets["attributes"] if a["name"] == "colour")
    colours = Counter(p["attributes"]["colour"] for p in products if "colour" in p.get("attributes", {}))
    shown = values(colour)
    assert all(colours[name] == n for name, n in shown.items())
    assert min(shown.values()) >= max((n for c, n in colours.items() if c not in shown), default=0)


def test_the_tree_lists_each_parent_before_its_children(full_engine: Engine) -> None:
    tree = facets_for(full_engine, None, None)[1]["facets"]["category"]
    seen: set[tuple[str, ...]] = set()
    for entry in tree:
        path = tuple(entry["path"])
        assert entry["depth"] == len(path) - 1 and entry["value"] == path[-1]
        assert len(path) == 1 or path[:-1] in seen
        seen.add(path)


def test_filters_narrow_the_matching_set(full_engine: Engine, products: list[dict]) -> None:
    brand = products[0]["brand"]
    body = facets_for(full_engine, None, Filters(brand=brand.upper(), in_stock=True))[1]
    expected = sum(p.get("brand") == brand and p.get("in_stock") is True for p in products)
    assert body["facets"]["total"] == expected
    assert values(body["facets"]["brand"]) == {brand: expected}
    assert body["filters"] == {"brand": brand.upper(), "in_stock": True}


def test_with_a_query_the_search_pool_after_filters_is_counted(full_engine: Engine) -> None:
    query, electronics = "wireless headphones under $50", Filters(category=("Electronics",))
    version, body = facets_for(full_engine, query, electronics)
    assert version == full_engine.live().version
    intent = full_engine.understand(query)
    pool = full_engine.pool(query, filters=electronics, intent=intent)
    facets = body["facets"]
    assert body["matching"] == "pool" and facets["total"] == len(pool.rows) > 0
    assert body["intent"]["price_max"] == 50 and body["filters"] == {
        "category": "Electronics",
        "price_max": 50,
    }
    assert facets["price"]["max"] <= 50
    assert [c["value"] for c in facets["category"] if c["depth"] == 0] == ["Electronics"]
    # the products a search shows are all in the matching set
    hits = full_engine.search(query, 10, 0, electronics, intent=intent)
    assert hits.hits and {h.row for h in hits.hits} <= set(pool.rows.tolist())

    off = facets_for(full_engine, query, None, understand=False)[1]
    assert "intent" not in off and off["filters"] == {}


def test_the_live_delta_is_counted(
    small_build: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    engine = Engine(small_build, encoder, template, IndexStore(small_build.index_dir))
    before = facets_for(engine, None, None)[1]["facets"]
    first = json.loads(small_catalogue.read_text(encoding="utf-8").splitlines()[0])
    writer = DeltaWriter(small_build, encoder, template)
    writer.upsert(
        [{"id": "new-1", "title": "Zyxwv Lamp", "brand": "Zyxwv", "category": ["Lighting"], "price": 12}]
    )
    writer.delete([first["id"]])
    engine.refresh()
    after = facets_for(engine, None, None)[1]["facets"]
    assert after["total"] == before["total"]  # one in, one out
    only = facets_for(engine, None, Filters(brand="zyxwv"))[1]["facets"]
    assert only["total"] == 1 and values(only["brand"]) == {"Zyxwv": 1}  # spelt from the delta product
    assert {"value": "Lighting", "path": ["Lighting"], "depth": 0, "count": 1} in after["category"]
    old = {c["value"]: c["count"] for c in before["category"] if c["depth"] == 0}
    new = {c["value"]: c["count"] for c in after["category"] if c["depth"] == 0}
    assert new[first["category"][0]] == old[first["category"][0]] - 1
    pooled = facets_for(engine, "zyxwv lamp", Filters(category=("Lighting",)))[1]["facets"]
    assert pooled["total"] == 1 and values(pooled["brand"]) == {"Zyxwv": 1}


# -- the endpoint -----------------------------------------------------------------------------------


def test_facets_endpoint_answers_and_stamps(client: FlaskClient, full_engine: Engine) -> None:
    response = client.get("/v1/facets?q=black+boots&category=Footwear&attr.colour=black")
    assert response.status_code == 200
    body = response.get_json()
    assert body["index_version"] == full_engine.live().version and "took_ms" in body
    assert response.headers["X-Index-Version"] == body["index_version"]
    assert body["matching"] == "pool" and body["filters"]["attr.colour"] == "black"
    colour = next(a for a in body["facets"]["attributes"] if a["name"] == "colour")
    assert [v["value"].lower() for v in colour["values"]] == ["black"]
    whole = client.get("/v1/facets").get_json()
    assert client.get("/v1/facets?q=").get_json()["facets"] == whole["facets"]
    assert whole["matching"] == "filtered" and whole["facets"]["total"] == len(full_engine.index)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("k=5", "k"),
        ("q=boots&offset=2", "offset"),
        ("price_min=50&price_max=10", "price_min"),
        ("price_min=cheap", "price_min"),
        ("intent=maybe", "intent"),
        ("q=" + "x" * 600, "q"),
        ("brand=a&brand=b", "brand"),
        ("attr=red", "attr"),
    ],
)
def test_facets_refuses_bad_parameters(client: FlaskClient, query: str, param: str) -> None:
    response = client.get(f"/v1/facets?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["param"] == param


def test_facets_is_in_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/v1/facets"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"q", "intent", "category", "brand", "price_min", "price_max", "in_stock"} <= names
    assert "search" in operation["tags"]
    assert "200" in operation["responses"] and "400" in operation["responses"]
    schemas = spec["components"]["schemas"]
    reply = schemas["FacetsReply"]
    assert {"facets", "matching", "filters", "index_version", "took_ms"} <= set(reply["properties"])
