"""The audit's admin endpoints and its command line, over a small index audited once (hash encoder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from recsys.api import create_app
from recsys.audit import AuditResult, run_audit
from recsys.build.pipeline import build_index
from recsys.cli import main
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.cache import NullCache
from recsys.query.engine import Engine
from recsys.settings import Settings

TOKEN = "audit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory,
    base_settings: Settings,
    encoder: Encoder,
    template: Template,
    small_catalogue: Path,
) -> tuple[Settings, AuditResult]:
    # a few defects, so that every page has findings of more than one kind
    rows = [json.loads(line) for line in small_catalogue.read_text(encoding="utf-8").splitlines()]
    for row in rows[:3]:
        rows.append(row | {"id": row["id"] + "-again", "title": row["title"].upper()})
    for row in rows[3:5]:
        row["price"] = round(row["price"] * 100, 2)
    catalogue = tmp_path_factory.mktemp("audit-api") / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = base_settings.replace(data_dir=catalogue.parent / "data", admin_token=TOKEN)
    build_index(catalogue, settings=settings, encoder=encoder, template=template)
    result, _ = run_audit(settings, report=False)
    return settings, result


def _client(settings: Settings, encoder: Encoder, template: Template) -> FlaskClient:
    engine = Engine(settings, encoder, template)
    return create_app(settings, engine=engine, cache=NullCache()).test_client()


@pytest.fixture(scope="module")
def client(audited: tuple[Settings, AuditResult], encoder: Encoder, template: Template) -> FlaskClient:
    return _client(audited[0], encoder, template)


def error(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()["error"]
    assert body["code"] and body["message"]
    if param is not None:
        assert body["param"] == param
    return body


def test_summary_of_the_published_version(client: FlaskClient, audited: tuple[Settings, AuditResult]) -> None:
    _, result = audited
    body = client.get("/v1/audit", headers=AUTH).get_json()
    assert body["version"] == result.version and body["counts"] == result.counts
    assert body["counts"]["duplicate"] == 3 and body["counts"]["price_outlier"] >= 2
    assert body["products"] == 303 and "total" in body["seconds"] and body["thresholds"]
    assert (
        client.get(f"/v1/audit?version={result.version}", headers=AUTH).get_json()["version"]
        == result.version
    )


def test_findings_paged_by_kind(client: FlaskClient, audited: tuple[Settings, AuditResult]) -> None:
    _, result = audited
    everything = client.get("/v1/audit/findings?per_page=500", headers=AUTH).get_json()
    assert everything["total"] == len(result.findings) and everything["pages"] == 1
    scores = [f["score"] for f in everything["findings"]]
    assert scores == sorted(scores, reverse=True)
    first = client.get("/v1/audit/findings?kind=duplicate&per_page=2", headers=AUTH).get_json()
    assert (first["total"], first["pages"], first["page"], len(first["findings"])) == (3, 2, 1, 2)
    second = client.get("/v1/audit/findings?kind=duplicate&per_page=2&page=2", headers=AUTH).get_json()
    assert len(second["findings"]) == 1
    ids = [tuple(f["ids"]) for f in first["findings"] + second["findings"]]
    assert len(set(ids)) == 3 and all(len(i) == 2 for i in ids)
    duplicate = first["findings"][0]
    assert duplicate["kind"] == "duplicate" and {"ids", "score", "evidence"} <= set(duplicate)
    prices = client.get("/v1/audit/findings?kind=price_outlier", headers=AUTH).get_json()["findings"]
    assert prices and all(f["kind"] == "price_outlier" and f["evidence"]["off_by"] for f in prices)
    clusters = client.get("/v1/audit/findings?kind=cluster", headers=AUTH).get_json()
    assert clusters["total"] == 0 and clusters["findings"] == []  # no leaf of 300 products is that large


def test_admin_token_is_required(client: FlaskClient, audited: tuple[Settings, AuditResult]) -> None:
    for path in ("/v1/audit", "/v1/audit/findings"):
        assert error(client.get(path), 401)["code"] == "unauthorised"
        error(client.get(path, headers={"Authorization": "Bearer wrong"}), 401)
        error(client.get(path, headers={"Authorization": f"Basic {TOKEN}"}), 401)


def test_bad_kind_page_or_parameter_is_a_400_that_says_the_range(client: FlaskClient) -> None:
    assert (
        "duplicate" in error(client.get("/v1/audit/findings?kind=typo", headers=AUTH), 400, "kind")["message"]
    )
    for page in ("0", "-1", "abc", "1.5", "3"):
        message = error(client.get(f"/v1/audit/findings?page={page}", headers=AUTH), 400, "page")["message"]
        assert "page must be an integer" in message
    assert "1..1" in error(client.get("/v1/audit/findings?page=2&per_page=500", headers=AUTH), 400)["message"]
    error(client.get("/v1/audit/findings?per_page=501", headers=AUTH), 400, "per_page")
    error(client.get("/v1/audit/findings?pages=2", headers=AUTH), 400, "pages")
    error(client.get("/v1/audit/findings?page=1&page=2", headers=AUTH), 400, "page")


def test_404_when_no_audit_is_stored(
    client: FlaskClient,
    audited: tuple[Settings, AuditResult],
    encoder: Encoder,
    template: Template,
    tmp_path: Path,
) -> None:
    body = error(client.get("/v1/audit?version=20000101T000000000000-abcdef", headers=AUTH), 404)
    assert body["code"] == "audit_not_found"
    error(client.get("/v1/audit/findings?version=nope", headers=AUTH), 404)
    settings, _ = audited
    unaudited = settings.replace(data_dir=tmp_path / "data")
    unaudited.data_dir.mkdir()
    (unaudited.data_dir / "index").symlink_to(settings.index_dir)  # the same published index, no audit
    other = _client(unaudited, encoder, template)
    assert "recsys audit" in error(other.get("/v1/audit", headers=AUTH), 404)["message"]
    error(other.get("/v1/audit/findings?kind=misfiled", headers=AUTH), 404)


def test_cli_audit_json_and_report(
    audited: tuple[Settings, AuditResult],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    settings, _ = audited
    for name in ("RECSYS_BROKER_URL", "RECSYS_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(settings.data_dir))
    assert main(["audit", "--json", "--report", str(tmp_path / "report")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"version", "findings", "counts", "clusters"}
    assert out["counts"]["duplicate"] == 3 and len(out["findings"]) == sum(out["counts"].values())
    assert {"kind", "ids", "score", "evidence"} <= set(out["findings"][0])
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        "report.md",
        "findings.csv",
        "map.png",
        "prices.png",
    }
    assert main(["audit"]) == 0
    assert capsys.readouterr().out.startswith(f"audited {out['version']}: 303 products")
    assert main(["audit", "--version", "nope"]) == 1
