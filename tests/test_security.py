"""Security: admin auth, catalogue paths from requests confined to a root, ids as data, namespaced Redis keys,
and secrets that never reach a log or a repr."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from recsys.api import create_app
from recsys.build.assemble import BuildResult
from recsys.build.jobs import JobRecord, RedisControl
from recsys.query.cache import InProcessCache, RedisCache
from recsys.query.engine import Engine
from recsys.settings import Settings

TOKEN = "correct-horse-battery-staple"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Starts:
    """Records what the core was asked to reindex; the reindex itself is beside the point here."""

    def __init__(self) -> None:
        self.catalogues: list[Any] = []

    def launch(self, job_id: str) -> None:
        self.catalogues.append(job_id)

    def revoke(self, job: JobRecord) -> None:
        return None

    name = "recording"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "catalogues"
    folder.mkdir()
    (folder / "shop.jsonl").write_text('{"id": "1", "title": "Lamp"}\n')
    (tmp_path / "secret.jsonl").write_text('{"id": "1", "title": "Not yours"}\n')
    return folder


@pytest.fixture
def client(
    full_build: tuple[Settings, BuildResult], full_engine: Engine, root: Path, tmp_path: Path
) -> FlaskClient:
    settings = full_build[0].replace(admin_token=TOKEN, catalogue_root=root, data_dir=tmp_path / "data")
    return create_app(settings, engine=full_engine, cache=InProcessCache(), runner=Starts()).test_client()


def test_admin_needs_the_right_token(client: FlaskClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": "Basic x"},
    ):
        response = client.post("/v1/cache/purge", headers=headers)
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorised"
    assert client.post("/v1/cache/purge", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "catalogue",
    ["../secret.jsonl", "/etc/passwd", "shop.jsonl/../../secret.jsonl", "missing.jsonl", "\x00shop.jsonl"],
)
def test_reindex_reads_only_catalogues_under_the_root(client: FlaskClient, catalogue: str) -> None:
    response = client.post("/v1/reindex", json={"catalogue": catalogue}, headers=AUTH)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["param"] == "catalogue"


def test_a_catalogue_under_the_root_is_accepted(client: FlaskClient, root: Path) -> None:
    response = client.post("/v1/reindex", json={"catalogue": "shop.jsonl"}, headers=AUTH)
    assert response.status_code == 202 and response.get_json()["catalogue"] == str(
        (root / "shop.jsonl").resolve()
    )


def test_without_a_root_no_path_is_read_from_a_request(
    full_build: tuple[Settings, BuildResult], full_engine: Engine
) -> None:
    settings = full_build[0].replace(admin_token=TOKEN)
    app = create_app(settings, engine=full_engine, cache=InProcessCache(), runner=Starts())
    response = app.test_client().post("/v1/reindex", json={"catalogue": "/etc/passwd"}, headers=AUTH)
    assert response.status_code == 400 and "RECSYS_CATALOGUE_ROOT" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    "product_id", ["a/../../etc/passwd", "..", "%00", "x" * 10_000, "a%2Fb", "p-00001%00"]
)
def test_product_ids_are_data(client: FlaskClient, product_id: str) -> None:
    for url in (f"/v1/products/{product_id}", f"/v1/products/{product_id}/similar"):
        response = client.get(url)
        assert response.status_code in (400, 404), (url, response.status_code)
        assert "error" in response.get_json()


def test_two_namespaces_on_one_redis_never_meet(redis_url: str) -> None:
    shop_a = RedisCache.from_url(redis_url, namespace="shop-a")
    shop_b = RedisCache.from_url(redis_url, namespace="shop-b")
    shop_a.set("res:v1:search:x", b"a's page", 60)
    assert shop_b.get("res:v1:search:x") is None and shop_a.get("res:v1:search:x") == b"a's page"
    assert shop_b.purge() == 0 and shop_a.get("res:v1:search:x") == b"a's page"
    control_a = RedisControl.from_url(redis_url, namespace="shop-a")
    control_b = RedisControl.from_url(redis_url, namespace="shop-b")
    assert control_a.acquire("reindex-catalogue", "job-a", 60) is None
    assert control_b.acquire("reindex-catalogue", "job-b", 60) is None  # its own lock, not a's
    control_a.create_job(JobRecord(id="job-a", catalogue="c", shard_size=1, created_at=0, updated_at=0))
    assert control_b.job("job-a") is None and control_b.latest_job() is None


def test_a_bad_namespace_is_refused() -> None:
    from recsys.errors import SettingsError

    with pytest.raises(SettingsError, match="RECSYS_NAMESPACE"):
        Settings.from_env({"RECSYS_NAMESPACE": "shop a:*"})


def test_the_admin_token_never_reaches_a_repr_or_the_log(
    full_build: tuple[Settings, BuildResult], full_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = full_build[0].replace(admin_token=TOKEN)
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    caplog.set_level(logging.DEBUG)
    client = create_app(settings, engine=full_engine, cache=InProcessCache(), runner=Starts()).test_client()
    client.post("/v1/cache/purge", headers={"Authorization": "Bearer wrong-" + TOKEN})
    client.post("/v1/reindex", json={"catalogue": "x"}, headers=AUTH)
    assert TOKEN not in caplog.text


def test_a_dead_broker_is_a_503_with_retry_after_and_search_goes_on(
    full_build: tuple[Settings, BuildResult], full_engine: Engine, root: Path, tmp_path: Path
) -> None:
    from workers.runner import CeleryRunner

    settings = full_build[0].replace(
        admin_token=TOKEN,
        catalogue_root=root,
        data_dir=tmp_path / "data",
        broker_url="amqp://guest:hunter2@127.0.0.1:1//",
        result_backend="redis://127.0.0.1:6379/4",
    )
    runner = CeleryRunner.from_settings(settings)
    client = create_app(settings, engine=full_engine, cache=InProcessCache(), runner=runner).test_client()
    response = client.post("/v1/reindex", json={"catalogue": "shop.jsonl"}, headers=AUTH)
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    error = response.get_json()["error"]
    assert error["code"] == "queue_unavailable" and "start the broker" in error["message"]
    assert "hunter2" not in error["message"]
    assert client.get("/v1/search?q=boots").status_code == 200
    again = client.post("/v1/reindex", json={"catalogue": "shop.jsonl"}, headers=AUTH)
    assert again.status_code == 503  # the failed attempt freed its lock: not a 409


def test_an_oversized_body_is_a_413_and_long_parameters_a_400(client: FlaskClient) -> None:
    huge = b'{"products": [' + b'{"id": "x", "title": "' + b"a" * (17 * 2**20) + b'"}]}'
    response = client.put("/v1/products", data=huge, content_type="application/json", headers=AUTH)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "request_entity_too_large"
    long_query = client.get("/v1/search", query_string={"q": "boots " * 1000})
    assert long_query.status_code == 400 and long_query.get_json()["error"]["param"] == "q"
