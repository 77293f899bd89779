"""The Flask API through its test client: every endpoint, every error path, caching, publishes, Redis down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from recsys.api import create_app
from recsys.build.assemble import BuildResult
from recsys.build.pipeline import build_index
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.cache import InProcessCache, NullCache, RedisCache
from recsys.query.engine import Engine
from recsys.settings import Settings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RecordingAdmin:
    """Stands in for the reindex/delta core functions, which are beside the point of these tests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def start_reindex(self, catalogue: str | None) -> dict[str, Any]:
        self.calls.append(("reindex", catalogue))
        return {"task_id": "job-1"}

    def reindex_status(self, task_id: str) -> dict[str, Any] | None:
        return {"status": "running", "done": "3", "total": "10"} if task_id == "job-1" else None

    def upsert(self, products: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(("upsert", products))
        return {"upserted": len(products)}

    def delete(self, product_id: str) -> dict[str, Any]:
        self.calls.append(("delete", product_id))
        return {"deleted": [product_id]}


@pytest.fixture
def full_settings(full_build: tuple[Settings, BuildResult]) -> Settings:
    return full_build[0].replace(admin_token=TOKEN)


@pytest.fixture
def admin() -> RecordingAdmin:
    return RecordingAdmin()


@pytest.fixture
def app(full_settings: Settings, full_engine: Engine, admin: RecordingAdmin) -> Flask:
    return create_app(full_settings, engine=full_engine, cache=InProcessCache(), admin=admin)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def first_id(full_engine: Engine) -> str:
    return str(full_engine.index.products[0]["id"])


def error_of(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body["error"]) >= {"code", "message"}
    assert "took_ms" in body and "index_version" in body
    if param is not None:
        assert body["error"]["param"] == param
    return dict(body["error"])


# -- reads ----------------------------------------------------------------------------------------


def test_search_returns_ranked_products_with_version_and_timing(
    client: FlaskClient, full_engine: Engine
) -> None:
    response = client.get("/v1/search?q=running+shoes&k=5")
    assert response.status_code == 200
    body = response.get_json()
    assert body["index_version"] == full_engine.index.version == response.headers["X-Index-Version"]
    assert body["took_ms"] >= 0 and float(response.headers["X-Took-Ms"]) >= 0
    assert body["count"] == len(body["results"]) == 5
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all({"id", "score", "title"} <= set(r) for r in body["results"])
    assert any("shoe" in r["title"].lower() for r in body["results"])


def test_search_filters_and_pages(client: FlaskClient) -> None:
    everything = client.get("/v1/search?q=shoes&k=10").get_json()["results"]
    second = client.get("/v1/search?q=shoes&k=5&offset=5").get_json()["results"]
    assert [r["id"] for r in second] == [r["id"] for r in everything[5:10]]
    cheap = client.get("/v1/search?q=shoes&k=10&price_max=50&in_stock=true").get_json()["results"]
    assert cheap and all(r["price"] <= 50 and r["in_stock"] is True for r in cheap)
    brand = everything[0]["brand"]
    by_brand = client.get("/v1/search", query_string={"q": "shoes", "brand": brand}).get_json()["results"]
    assert by_brand and all(r["brand"] == brand for r in by_brand)
    colour = client.get("/v1/search?q=shoes&attr.colour=black").get_json()["results"]
    assert colour and all(r["attributes"]["colour"] == "black" for r in colour)


def test_search_understands_prices_and_says_what_it_understood(client: FlaskClient) -> None:
    body = client.get("/v1/search", query_string={"q": "wireless headphones under $50", "k": 10}).get_json()
    assert body["intent"]["price_max"] == 50 and body["intent"]["text"] == "wireless headphones"
    assert body["results"] and all(r["price"] <= 50 for r in body["results"])
    plain = client.get("/v1/search", query_string={"q": "wireless headphones under $50", "intent": "off"})
    assert "intent" not in plain.get_json()
    cheap = client.get("/v1/search", query_string={"q": "cheap running shoes"}).get_json()
    assert cheap["intent"]["price_band"] == "low"
    contradiction = client.get("/v1/search", query_string={"q": "boots under $10 over $500"})
    assert contradiction.status_code == 200
    assert "contradict" in contradiction.get_json()["intent"]["note"]
    error_of(client.get("/v1/search?q=boots&intent=maybe"), 400, "intent")


def test_the_api_reports_corrections_in_the_intent_and_its_schema(client: FlaskClient) -> None:
    first = client.get("/v1/search?q=shoes&k=1").get_json()["results"][0]
    word = next(w for w in first["title"].lower().split() if w.isalpha() and len(w) >= 7)
    typo = word[:2] + word[3] + word[2] + word[4:]  # two letters swapped: one edit
    body = client.get("/v1/search", query_string={"q": typo, "k": 3}).get_json()
    assert body["intent"]["corrections"] == {typo: word} and body["intent"]["text"] == word
    assert "intent" not in client.get("/v1/search", query_string={"q": typo, "intent": "off"}).get_json()
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"].values()
    intent = next(s for s in schemas if "price_band" in s.get("properties", {}))
    assert "corrections" in intent["properties"]


def test_similar_recommend_and_product(client: FlaskClient, first_id: str) -> None:
    similar = client.get(f"/v1/products/{first_id}/similar?k=4").get_json()
    assert len(similar["results"]) == 4 and first_id not in {r["id"] for r in similar["results"]}
    liked = [r["id"] for r in similar["results"][:2]]
    recommended = client.post(
        "/v1/recommend",
        json={"positive": liked, "negative": [first_id], "k": 3, "filters": {"in_stock": True}},
    ).get_json()
    ids = {r["id"] for r in recommended["results"]}
    assert len(ids) == 3 and not ids & {*liked, first_id}
    assert all(r["in_stock"] for r in recommended["results"])
    product = client.get(f"/v1/products/{first_id}").get_json()
    assert product["product"]["id"] == first_id


def test_index_health_readiness_metrics_and_openapi(client: FlaskClient, full_engine: Engine) -> None:
    info = client.get("/v1/index").get_json()
    assert info["version"] == full_engine.index.version
    assert info["counts"]["products"] == len(full_engine.index) and info["built_at"]
    assert info["model"]["identity"] and info["delta"]["size"] in (0, None)
    assert client.get("/healthz").get_json()["status"] == "ok"
    assert client.get("/readyz").get_json()["status"] == "ready"
    client.get("/v1/search?q=boots")
    client.get("/v1/search?q=boots")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'recsys_request_seconds_count{endpoint="/v1/search",status="200"} 2.0' in text
    assert 'recsys_cache_requests_total{cache="result",result="hit"} 1.0' in text
    assert f'recsys_index_info{{version="{full_engine.index.version}"}} 1.0' in text
    assert f"recsys_index_products {float(len(full_engine.index))}" in text
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.")


def test_openapi_documents_exactly_the_url_map(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    routes: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "openapi.spec"):  # the document itself
            continue
        if rule.endpoint.startswith("playground."):  # the playground page is a page, not the API
            continue
        path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == documented
    search = document["paths"]["/v1/search"]["get"]
    k = next(p for p in search["parameters"] if p["name"] == "k")["schema"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, 100, 10)
    assert {"q", "offset", "category", "brand", "price_min", "price_max", "in_stock", "attr"} <= {
        p["name"] for p in search["parameters"]
    }
    assert set(search["responses"]) >= {"200", "400"}
    assert search["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ValidationError"
    )
    assert {"error", "took_ms"} <= set(document["components"]["schemas"]["ValidationError"]["properties"])
    page = document["components"]["schemas"]["ResultPage"]["properties"]
    assert "intent" in page and any(p["name"] == "intent" for p in search["parameters"])
    admin = document["paths"]["/v1/reindex"]["post"]
    assert admin["security"] == [{"bearer": []}] and "409" in admin["responses"]


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "param", "needle"),
    [
        ("/v1/search?q=shoes&k=abc", "k", "1..100"),
        ("/v1/search?q=shoes&k=0", "k", "1..100"),
        ("/v1/search?q=shoes&k=101", "k", "1..100"),
        ("/v1/search?q=shoes&k=1.5", "k", "1..100"),
        ("/v1/search?q=shoes&offset=-1", "offset", "0..1000"),
        ("/v1/search?q=shoes&offset=1001", "offset", "0..1000"),
        ("/v1/search?q=", "q", "non-empty"),
        ("/v1/search?q=%20%20", "q", "non-empty"),
        ("/v1/search", "q", "non-empty"),
        ("/v1/search?q=" + "a" * 513, "q", "512"),
        ("/v1/search?q=shoes&colour=red", "colour", "attr.<name>"),
        ("/v1/search?q=shoes&k=1&k=2", "k", "once"),
        ("/v1/search?q=shoes&price_min=cheap", "price_min", ">= 0"),
        ("/v1/search?q=shoes&price_min=10&price_max=5", "price_min", "exceed"),
        ("/v1/search?q=shoes&in_stock=maybe", "in_stock", "true or false"),
        ("/v1/search?q=shoes&brand=%20", "brand", "non-empty"),
        ("/v1/products/p-00001/similar?k=500", "k", "1..100"),
        ("/v1/products/p-00001/similar?q=x", "q", "allowed"),
        ("/v1/products/p-00001?k=1", "k", "allowed"),
        ("/v1/index?verbose=1", "verbose", "allowed"),
    ],
)
def test_bad_query_parameters_are_400s_naming_the_parameter(
    client: FlaskClient, url: str, param: str, needle: str
) -> None:
    error = error_of(client.get(url), 400, param)
    assert error["code"] == "invalid_request" and needle in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("{not json", "body"),
        ("[1, 2]", "body"),
        ('{"positive": []}', "positive"),
        ('{"negative": ["p-00001"]}', "positive"),
        ('{"positive": "p-00001"}', "positive"),
        ('{"positive": [1]}', "positive"),
        ('{"positive": ["p-00001"], "k": "3"}', "k"),  # in JSON, a string is not an integer
        ('{"positive": ["p-00001"], "k": 3.5}', "k"),
        ('{"positive": ["p-00001"], "k": true}', "k"),
        ('{"positive": ["p-00001"], "offset": 5000}', "offset"),
        ('{"positive": ["p-00001"], "filters": []}', "filters"),
        ('{"positive": ["p-00001"], "filters": {"size": "9"}}', "filters.size"),
        ('{"positive": ["p-00001"], "extra": 1}', "extra"),
        ('{"positive": ["p-00001"], "negative": ["p-00001"]}', "negative"),
    ],
)
def test_bad_recommend_bodies_are_400s(client: FlaskClient, body: str, param: str) -> None:
    error_of(client.post("/v1/recommend", data=body, content_type="application/json"), 400, param)


def test_unknown_products_routes_and_methods(client: FlaskClient) -> None:
    assert error_of(client.get("/v1/products/nope"), 404)["code"] == "product_not_found"
    assert error_of(client.get("/v1/products/nope/similar"), 404)["code"] == "product_not_found"
    error_of(client.post("/v1/recommend", json={"positive": ["nope"]}), 404)
    assert error_of(client.get("/v2/search?q=x"), 404)["code"] == "not_found"
    response = client.delete("/v1/search?q=x")
    assert error_of(response, 405)["code"] == "method_not_allowed" and "GET" in response.headers["Allow"]


def test_no_index_is_a_503(settings: Settings, encoder: Encoder, template: Template) -> None:
    client = create_app(settings, engine=Engine(settings, encoder, template), cache=NullCache()).test_client()
    assert error_of(client.get("/v1/search?q=shoes"), 503)["code"] == "no_index"
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


# -- admin ----------------------------------------------------------------------------------------


def test_admin_endpoints_need_the_token(client: FlaskClient, admin: RecordingAdmin) -> None:
    assert error_of(client.post("/v1/cache/purge"), 401)["code"] == "unauthorised"
    error_of(client.post("/v1/cache/purge", headers={"Authorization": "Bearer wrong"}), 401)
    error_of(client.delete("/v1/products/p-1", headers={"Authorization": TOKEN}), 401)
    assert admin.calls == []


def test_admin_is_disabled_without_a_token(
    full_build: tuple[Settings, BuildResult], full_engine: Engine
) -> None:
    client = create_app(full_build[0], engine=full_engine, cache=NullCache()).test_client()
    error = error_of(client.post("/v1/reindex", headers=AUTH), 403)
    assert error["code"] == "admin_disabled" and "RECSYS_ADMIN_TOKEN" in error["message"]


def test_admin_endpoints_call_the_core(client: FlaskClient, admin: RecordingAdmin) -> None:
    started = client.post("/v1/reindex", json={"catalogue": "/data/cat.jsonl"}, headers=AUTH)
    assert started.status_code == 202 and started.get_json()["task_id"] == "job-1"
    assert client.post("/v1/reindex", headers=AUTH).status_code == 202
    assert client.get("/v1/reindex/job-1", headers=AUTH).get_json()["task"]["status"] == "running"
    error_of(client.get("/v1/reindex/job-2", headers=AUTH), 404, "task_id")
    product = {"id": "new-1", "title": "Quokka plush toy"}
    assert client.put("/v1/products", json={"products": [product]}, headers=AUTH).get_json()["upserted"] == 1
    error_of(client.put("/v1/products", json={"products": []}, headers=AUTH), 400, "products")
    error_of(client.put("/v1/products", json={"products": ["x"]}, headers=AUTH), 400, "products")
    error_of(client.put("/v1/products", data="nope", headers=AUTH), 400, "body")
    error_of(client.post("/v1/reindex", json={"catalogue": 3}, headers=AUTH), 400, "catalogue")
    assert client.delete("/v1/products/p-9", headers=AUTH).get_json()["deleted"] == ["p-9"]
    assert admin.calls == [
        ("reindex", "/data/cat.jsonl"),
        ("reindex", None),
        ("upsert", [product]),
        ("delete", "p-9"),
    ]
    client.get("/v1/search?q=shoes")
    assert client.post("/v1/cache/purge", headers=AUTH).get_json()["purged"] >= 1


def test_default_admin_reads_job_records(
    full_settings: Settings, full_engine: Engine, redis_url: str
) -> None:
    from recsys.build.jobs import JobRecord, make_control

    settings = full_settings.replace(redis_url=redis_url)
    record = JobRecord(id="job-7", catalogue="c.jsonl", shard_size=5, created_at=1.0, updated_at=2.0)
    make_control(settings).create_job(record.model_copy(update={"status": "succeeded", "version": "v1"}))
    client = create_app(settings, engine=full_engine).test_client()
    task = client.get("/v1/reindex/job-7", headers=AUTH).get_json()["task"]
    assert (task["status"], task["version"], task["shards_total"], task["cancel"]) == (
        "succeeded",
        "v1",
        0,
        False,
    )
    error_of(client.get("/v1/reindex/job-8", headers=AUTH), 404)


# -- caching --------------------------------------------------------------------------------------


def test_redis_cache_hits_on_repeat_and_purges(
    full_settings: Settings, full_engine: Engine, redis_url: str
) -> None:
    settings = full_settings.replace(redis_url=redis_url)
    app = create_app(settings, engine=full_engine)
    client = app.test_client()
    first = client.get("/v1/search?q=Running  Shoes&k=3")
    again = client.get("/v1/search?q=running shoes&k=3")  # the same normalised query
    assert first.get_json()["cached"] is False and again.get_json()["cached"] is True
    assert again.headers["X-Cache"] == "hit"
    assert first.get_json()["results"] == again.get_json()["results"]
    other_page = client.get("/v1/search?q=running shoes&k=3&offset=3").get_json()
    assert other_page["cached"] is False  # a new page: the embedding is reused, the page computed
    assert 'cache="embedding",result="hit"' in client.get("/metrics").get_data(as_text=True)
    assert client.post("/v1/cache/purge", headers=AUTH).get_json()["purged"] >= 3
    assert client.get("/v1/search?q=running shoes&k=3").get_json()["cached"] is False
    assert client.get("/v1/index").get_json()["cache"] == "redis"


def test_cache_off_never_hits(full_settings: Settings, full_engine: Engine) -> None:
    client = create_app(full_settings.replace(cache=False), engine=full_engine).test_client()
    client.get("/v1/search?q=boots")
    assert client.get("/v1/search?q=boots").get_json()["cached"] is False


def test_redis_down_answers_uncached_and_degraded(full_settings: Settings, full_engine: Engine) -> None:
    cache = RedisCache.from_url("redis://127.0.0.1:1/0", timeout_s=0.05)
    client = create_app(full_settings, engine=full_engine, cache=cache).test_client()
    for _ in range(3):
        response = client.get("/v1/search?q=boots&k=2")
        assert response.status_code == 200 and response.get_json()["cached"] is False
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "degraded"


def test_redis_stopped_mid_test(full_settings: Settings, full_engine: Engine, tmp_path: Path) -> None:
    import shutil
    import socket
    import subprocess
    import time

    import redis

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)
        cache = RedisCache.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.05)
        client = create_app(full_settings, engine=full_engine, cache=cache).test_client()
        client.get("/v1/search?q=sandals")
        assert client.get("/v1/search?q=sandals").get_json()["cached"] is True
        server.terminate()
        server.wait(20)
        for query in ("sandals", "sandals", "laptop"):
            response = client.get("/v1/search", query_string={"q": query})
            assert response.status_code == 200 and response.get_json()["cached"] is False
        assert client.get("/readyz").get_json()["status"] == "degraded"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(20)


# -- publishes ------------------------------------------------------------------------------------


def test_no_stale_result_after_a_publish(
    small_build: Settings,
    encoder: Encoder,
    template: Template,
    small_catalogue: Path,
    tmp_path: Path,
    redis_url: str,
) -> None:
    settings = small_build.replace(redis_url=redis_url)
    engine = Engine(settings, encoder, template, IndexStore(settings.index_dir))
    client = create_app(settings, engine=engine, refresh_every_s=0).test_client()
    query = "/v1/search?q=quokka plush toy&k=1"
    before = client.get(query).get_json()
    assert client.get(query).get_json()["cached"] is True
    lines = small_catalogue.read_text(encoding="utf-8").splitlines()
    product = json.loads(lines[0])
    product.update(title="Quokka plush toy", description="A soft quokka plush toy")
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join([json.dumps(product), *lines[1:]]) + "\n", encoding="utf-8")
    published = build_index(changed, settings=settings, encoder=encoder, template=template)
    after = client.get(query).get_json()
    assert after["index_version"] == published.version != before["index_version"]
    assert after["cached"] is False
    assert after["results"][0]["id"] == product["id"]
    assert after["results"][0]["title"] == "Quokka plush toy"


def test_no_stale_result_after_an_upsert_or_a_delete(
    small_build: Settings, encoder: Encoder, template: Template, redis_url: str
) -> None:
    settings = small_build.replace(redis_url=redis_url, admin_token=TOKEN)
    engine = Engine(settings, encoder, template, IndexStore(settings.index_dir))
    client = create_app(settings, engine=engine).test_client()  # the default admin: recsys.build.delta
    query = "/v1/search?q=quokka plush toy&k=1"
    before = client.get(query).get_json()
    assert client.get(query).get_json()["cached"] is True
    product = {
        "id": "quokka-1",
        "title": "Quokka plush toy",
        "description": "A soft quokka plush toy",
        "brand": "Wobbleworks",
        "category": ["Toys", "Plush"],
        "price": 12.5,
        "in_stock": True,
    }
    upserted = client.put("/v1/products", json={"products": [product]}, headers=AUTH)
    assert upserted.status_code == 200, upserted.get_data(as_text=True)
    after = client.get(query).get_json()
    assert after["cached"] is False and after["results"][0]["id"] == "quokka-1"
    assert client.get("/v1/products/quokka-1").get_json()["product"]["title"] == "Quokka plush toy"
    info = client.get("/v1/index").get_json()
    assert info["delta"]["size"] == 1 and info["state_key"] != before["index_version"]
    assert client.delete("/v1/products/quokka-1", headers=AUTH).status_code == 200
    gone = client.get(query).get_json()
    assert gone["cached"] is False and "quokka-1" not in {r["id"] for r in gone["results"]}
    error_of(client.get("/v1/products/quokka-1"), 404)


def test_explain_says_why_a_result_ranks_where_it_does(client: FlaskClient) -> None:
    body = client.get(
        "/v1/search", query_string={"q": "cheap running shoes", "k": 3, "explain": "true"}
    ).get_json()
    first = body["results"][0]["explain"]
    assert {"cosine_full", "cosine_short", "dense", "lexical", "intent", "filters"} <= set(first)
    parts = first["dense_part"] + first["lexical_part"] + first["intent_part"]
    assert parts == pytest.approx(body["results"][0]["score"], abs=1e-5)
    filtered = client.get("/v1/search", query_string={"q": "shoes under $50", "explain": "true"}).get_json()
    assert filtered["results"][0]["explain"]["filters"]["price_max"] == 50
    assert "explain" not in client.get("/v1/search?q=shoes").get_json()["results"][0]
