"""``recsys eval-similar`` end to end (the CLI loads the real model from its settings), and the
evaluation commands' usage errors, which are refused before any model loads."""

from __future__ import annotations

import json
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


def test_usage_errors_exit_2(
    env: Settings, small_catalogue: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval-similar", "--catalogue", str(small_catalogue)]
    assert main([*argv, "--same", ","]) == 2
    assert "--same needs at least one field" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--catalogue", "c", "--queries", "q", "--qrels", "r", "--mode", "bm25"])
    assert exited.value.code == 2
    assert not (env.data_dir / "eval").exists()


@pytest.mark.model  # the CLI loads the real model from its settings
def test_eval_similar_prints_its_scores_and_writes_a_report(
    env: Settings, small_catalogue: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval-similar", "--catalogue", str(small_catalogue), "--same", "category", "--grade2", "colour"]
    assert main([*argv, "--sample", "40", "--json", "--report", str(tmp_path / "report")]) == 0
    captured = capsys.readouterr()
    scores = json.loads(captured.out)
    assert set(scores) == {"precision@10", "ndcg@10", "products", "ineligible"}
    assert scores["products"] == 40 and scores["precision@10"] > 0.5  # the model groups a category
    assert "report.md" in captured.err
    assert (tmp_path / "report" / "similar.png").read_bytes().startswith(b"\x89PNG")
    assert main([*argv, "--sample", "40"]) == 0  # the index is reused: same figures as text
    assert capsys.readouterr().out.startswith(f"precision@10 {scores['precision@10']}  ndcg@10 ")
    assert len(list((env.data_dir / "eval").glob("*/index/versions/*"))) == 1
    assert not (env.data_dir / "index").exists()  # the served index is never touched
