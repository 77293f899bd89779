"""``recsys eval`` and ``recsys eval-similar`` as the CLI runs them, on the fixture catalogue and the
hash encoder: a subset of the judged queries, every mode on one evaluation index, and the reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recsys.build.pipeline import build_index
from recsys.errors import InvalidRequestError
from recsys.evaluation.commands import (
    SearchEval,
    SimilarEval,
    evaluate_search,
    evaluate_similar_items,
    score_lines,
    scores_json,
)
from recsys.evaluation.evalindex import Build
from recsys.evaluation.metrics import read_queries
from recsys.evaluation.modes import MODES
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "fixtures"
PNG = b"\x89PNG\r\n\x1a\n"
ASKED = 20  # the first judged queries of the fixture set; the other judged ones are not asked


@pytest.fixture(scope="module")
def data(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One data directory for the module: the evaluation index is built once, then reused."""
    return base_settings.replace(data_dir=tmp_path_factory.mktemp("evaldata"))


@pytest.fixture(scope="module")
def build(encoder: Encoder, template: Template) -> Build:
    def run(path: Path, here: Settings) -> object:
        return build_index(path, settings=here, encoder=encoder, template=template)

    return run


@pytest.fixture(scope="module")
def searched(
    data: Settings,
    encoder: Encoder,
    template: Template,
    build: Build,
    tmp_path_factory: pytest.TempPathFactory,
) -> SearchEval:
    folder = tmp_path_factory.mktemp("subset")
    queries = list(read_queries(FIXTURES / "queries.tsv").items())[:ASKED]
    rows = [f"{qid}\t{text}" for qid, text in queries] + ["zz-unjudged\tglow in the dark socks"]
    (folder / "queries.tsv").write_text("query_id\tquery\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return evaluate_search(
        FIXTURES / "catalogue.jsonl",
        folder / "queries.tsv",
        FIXTURES / "qrels.tsv",
        settings=data,
        encoder=encoder,
        template=template,
        build=build,
        modes=MODES,
        report_dir=folder / "report",
    )


def test_only_the_asked_queries_are_scored(searched: SearchEval) -> None:
    assert searched.index.built
    assert (searched.coverage.asked, searched.coverage.scored) == (ASKED + 1, ASKED)
    assert searched.coverage.unjudged == 1  # zz-unjudged: asked, never judged, never run
    assert searched.coverage.unasked == 46 - ASKED
    for mode in MODES:
        assert set(searched.runs[mode]) == set(searched.scores[mode].ndcg_per_query) != set()
        assert searched.scores[mode].queries == ASKED
    assert searched.scores["hybrid"] != searched.scores["dense"]


def test_the_eval_report(searched: SearchEval) -> None:
    folder = searched.report[0].parent
    assert {p.name for p in searched.report} == {
        "report.md",
        "metrics.png",
        "ndcg_distribution.png",
        "per_query.tsv",
    }
    for name in ("metrics.png", "ndcg_distribution.png"):
        image = (folder / name).read_bytes()
        assert image.startswith(PNG) and len(image) > 1024
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    per_query = searched.scores["hybrid+intent"].ndcg_per_query
    worst = sorted(per_query.items(), key=lambda item: (item[1], item[0]))[:10]
    queries = read_queries(FIXTURES / "queries.tsv")
    for rank, (qid, value) in enumerate(worst, start=1):
        assert f"### {rank}. {queries[qid]} ({qid}): nDCG@10 {value:.3f}" in markdown
    assert "| hybrid+intent |" in markdown and "nDCG@10 vs lexical" in markdown
    assert "unjudged" in markdown and "Judged most relevant" in markdown
    assert "1 asked queries have no judgement" in markdown
    assert "query understanding changed the top 100 of" in markdown
    lines = (folder / "per_query.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[2:] == [f"ndcg@10 {m}" for m in MODES] and len(lines) == ASKED + 1


def test_output_shapes(searched: SearchEval) -> None:
    several = scores_json(searched.scores)
    assert set(several) == {"modes"} and list(several["modes"]) == list(MODES)
    one = scores_json({"hybrid": searched.scores["hybrid"]})
    assert set(one) == {"ndcg@10", "recall@100", "mrr@10", "judged@10", "ndcg@10_condensed", "queries"}
    lines = score_lines(searched.scores)
    assert len(lines) == 4 and lines[3].startswith("hybrid+intent ") and "ndcg@10 " in lines[3]
    assert score_lines({"dense": searched.scores["dense"]})[0].startswith("ndcg@10 ")


def test_eval_similar_reuses_the_index_and_writes_its_report(
    searched: SearchEval, data: Settings, encoder: Encoder, template: Template, build: Build, tmp_path: Path
) -> None:
    said: list[str] = []
    result: SimilarEval = evaluate_similar_items(
        FIXTURES / "catalogue.jsonl",
        settings=data,
        encoder=encoder,
        template=template,
        build=build,
        same=("category", "gender"),
        grade2="colour",
        sample=50,
        seed=3,
        report_dir=tmp_path / "similar",
        say=said.append,
    )
    assert not result.index.built and result.index.store.root == searched.index.store.root
    assert result.scores.products == 50
    assert 0.0 < result.scores.ndcg_at_10 <= 1.0 and 0.0 < result.scores.precision_at_10 <= 1.0
    assert result.scores.ineligible > 0 and any("never sampled" in line for line in said)
    image = (tmp_path / "similar" / "similar.png").read_bytes()
    assert image.startswith(PNG) and len(image) > 1024
    markdown = (tmp_path / "similar" / "report.md").read_text(encoding="utf-8")
    assert f"| {result.scores.precision_at_10:.4f} | {result.scores.ndcg_at_10:.4f} | 50 |" in markdown
    assert "lowest nDCG@10" in markdown

    again = evaluate_similar_items(
        FIXTURES / "catalogue.jsonl",
        settings=data,
        encoder=encoder,
        template=template,
        build=build,
        same=("category", "gender"),
        grade2="colour",
        sample=50,
        seed=3,
    )
    assert again.scores == result.scores and again.report == []
    with pytest.raises(InvalidRequestError, match="no product of the catalogue has a 'shoe_size'"):
        evaluate_similar_items(
            FIXTURES / "catalogue.jsonl",
            settings=data,
            encoder=encoder,
            template=template,
            build=build,
            same=("shoe_size",),
        )


def test_the_core_does_not_import_matplotlib() -> None:
    code = (
        "import sys, recsys.cli, recsys.evaluation.commands, recsys.evaluation.report; "
        "recsys.cli._parser(); print('matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
