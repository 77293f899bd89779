"""The ``recsys`` command line, run in-process with settings from the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli import main
from recsys.settings import Settings


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("RECSYS_BROKER_URL", "RECSYS_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RECSYS_EMBEDDINGS_DIR", str(settings.resolved_embeddings_dir))
    monkeypatch.setenv("RECSYS_ANNOY_TREES", "8")
    return settings


@pytest.mark.model  # the CLI loads the real model from its settings
def test_build_list_search_similar_rollback(
    env: Settings, small_catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", "build", "--catalogue", str(small_catalogue)]) == 0
    first = capsys.readouterr().out
    assert "published" in first and "300 products indexed" in first
    assert main(["index", "build", "--catalogue", str(small_catalogue)]) == 0
    capsys.readouterr()

    assert main(["index", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert len(listing["versions"]) == 2 and listing["current"] == listing["versions"][-1]["version"]

    assert main(["search", "wireless headphones", "--k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["index_version"] == listing["current"]
    assert len(out["results"]) == 3 and {"id", "score", "title"} <= set(out["results"][0])

    pid = out["results"][0]["id"]
    assert main(["similar", pid, "--k", "4", "--json", "--filter", "in_stock=true"]) == 0
    similar = json.loads(capsys.readouterr().out)["results"]
    assert pid not in {r["id"] for r in similar} and all(r["in_stock"] for r in similar)

    assert main(["search", "headphones under $50", "--json"]) == 0
    understood = json.loads(capsys.readouterr().out)
    assert understood["intent"]["price_max"] == 50 and all(r["price"] <= 50 for r in understood["results"])

    assert main(["search", "boots", "--k", "2"]) == 0
    assert capsys.readouterr().out.startswith("  1. ")

    assert main(["index", "rollback"]) == 0
    assert listing["versions"][0]["version"] in capsys.readouterr().out
    assert main(["search", "boots", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index_version"] == listing["versions"][0]["version"]


@pytest.mark.model  # the CLI loads the real model from its settings
def test_errors_are_one_line_on_stderr(
    env: Settings, small_catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "shoes"]) == 1
    assert "no index has been published" in capsys.readouterr().err
    assert main(["index", "build", "--catalogue", str(small_catalogue)]) == 0
    capsys.readouterr()
    assert main(["search", "shoes", "--k", "0"]) == 2
    assert "k must be an integer in 1..100" in capsys.readouterr().err
    assert main(["search", "shoes", "--filter", "colour"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["similar", "no-such-product"]) == 1
    assert "no-such-product" in capsys.readouterr().err


def test_bad_setting_is_reported(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RECSYS_ANNOY_TREES", "lots")
    assert main(["index", "list"]) == 2
    assert "RECSYS_ANNOY_TREES='lots' is not valid" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recsys", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "index" in result.stdout


@pytest.mark.model  # the CLI loads the real model from its settings
def test_eval_prints_the_metrics_and_reuses_its_index(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    argv = [
        "eval",
        "--catalogue",
        str(fixtures / "catalogue.jsonl"),
        "--queries",
        str(fixtures / "queries.tsv"),
        "--qrels",
        str(fixtures / "qrels.tsv"),
        "--json",
    ]
    assert main(argv) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"ndcg@10", "recall@100", "mrr@10", "judged@10", "ndcg@10_condensed", "queries"}
    assert scores["queries"] == len((fixtures / "queries.tsv").read_text().splitlines()) - 1
    assert scores["ndcg@10"] > 0.6
    eval_root = env.data_dir / "eval"
    built = list(eval_root.glob("*/index/versions/*"))
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == scores
    assert list(eval_root.glob("*/index/versions/*")) == built  # reused, not rebuilt
    assert not (env.data_dir / "index").exists()  # the served index is never touched
