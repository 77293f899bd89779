"""What ``recsys eval`` and ``recsys eval-similar`` do, with the encoder and the build passed in: the
CLI and the relevance benchmark call these, and the tests call them on the hashing stand-in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.evaluation.evalindex import Build, EvalIndex, open_eval_index
from recsys.evaluation.metrics import Coverage, Scores
from recsys.evaluation.modes import DEFAULT_MODE, HYBRID, INTENT, Runs
from recsys.evaluation.similar import K, SimilarScores
from recsys.settings import Settings

if TYPE_CHECKING:
    from recsys.model.encoder import Encoder
    from recsys.model.templates import Template

Progress = Callable[[int, int], None]  # (done, total)
Say = Callable[[str], None]  # a line for the person running it (stderr at the CLI)


def _quiet(text: str) -> None:
    return None


@dataclass(frozen=True)
class SearchEval:
    scores: dict[str, Scores]  # per mode, in the order they ran
    runs: Runs
    coverage: Coverage
    index: EvalIndex
    report: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class SimilarEval:
    scores: SimilarScores
    index: EvalIndex
    report: list[Path] = field(default_factory=list)


def evaluate_search(
    catalogue: Path,
    queries_path: Path,
    qrels_path: Path,
    *,
    settings: Settings,
    encoder: Encoder,
    template: Template,
    build: Build,
    modes: Sequence[str] = (DEFAULT_MODE,),
    rebuild: bool = False,
    report_dir: Path | None = None,
    progress: Progress | None = None,
    say: Say = _quiet,
) -> SearchEval:
    """Score exactly the queries of ``queries_path`` in each of ``modes`` on one evaluation index."""
    from recsys.evaluation.metrics import coverage, read_qrels, read_queries
    from recsys.evaluation.modes import default_of, run_modes, score_modes

    queries = read_queries(queries_path)
    qrels = read_qrels(qrels_path)
    covered = coverage(queries, qrels)
    say(covered.message())
    index = open_eval_index(catalogue, settings, encoder, template, build, rebuild)
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(judged))

    runs = run_modes(index.settings, encoder, template, index.store, judged, modes, progress=tick)
    scores = score_modes(runs, qrels)
    written: list[Path] = []
    if report_dir is not None:
        from recsys.evaluation.report import EvalReport, worst_queries, write_eval_report

        default = default_of(modes)
        titles = {p.id: p.title for p in index.products}
        report = EvalReport(
            name=_set_name(catalogue),
            scores=scores,
            default_mode=default,
            coverage=covered,
            worst=worst_queries(scores[default], runs[default], qrels, queries, titles),
            queries=queries,
            details=[
                *_details(index, catalogue),
                f"queries `{queries_path}`, qrels `{qrels_path}`",
                *_intent_effect(runs),
            ],
        )
        written = write_eval_report(report_dir, report)
        say(f"wrote {', '.join(str(p) for p in written)}")
    return SearchEval(scores, runs, covered, index, written)


def evaluate_similar_items(
    catalogue: Path,
    *,
    settings: Settings,
    encoder: Encoder,
    template: Template,
    build: Build,
    same: Sequence[str],
    grade2: str | None = None,
    sample: int = 1000,
    seed: int = 0,
    rebuild: bool = False,
    report_dir: Path | None = None,
    progress: Progress | None = None,
    say: Say = _quiet,
) -> SimilarEval:
    """Similar items of a seeded sample of ``catalogue``'s products, scored by shared attributes."""
    from recsys.catalogue import load_catalogue
    from recsys.errors import InvalidRequestError
    from recsys.evaluation.similar import Grader, evaluate_similar
    from recsys.query.engine import Engine

    if sample < 1:
        raise InvalidRequestError(f"sample must be at least 1; got {sample}", param="sample")
    products = load_catalogue(catalogue).products
    grader = Grader(products, same, grade2)  # an unknown field is refused before anything is built
    index = open_eval_index(catalogue, settings, encoder, template, build, rebuild, products)
    engine = Engine(index.settings, encoder, template, index.store)
    indexed = engine.index.rows
    ids = [p.id for p in index.products if p.id in indexed]
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], min(sample, len(ids)))

    scores = evaluate_similar(
        lambda pid: [str(r["id"]) for r in engine.similar(pid, k=K).to_list()],
        grader,
        ids,
        sample=sample,
        seed=seed,
        progress=tick,
    )
    if scores.ineligible:
        say(f"{scores.ineligible} products share {','.join(same)} with no other product: never sampled")
    written: list[Path] = []
    if report_dir is not None:
        from recsys.evaluation.report import SimilarReport, write_similar_report

        report = SimilarReport(
            name=_set_name(catalogue),
            scores=scores,
            same=same,
            grade2=grade2,
            titles={p.id: p.title for p in index.products},
            details=[*_details(index, catalogue), f"sample {sample}, seed {seed}"],
        )
        written = write_similar_report(report_dir, report)
        say(f"wrote {', '.join(str(p) for p in written)}")
    return SimilarEval(scores, index, written)


def scores_json(scores: Mapping[str, Scores]) -> dict[str, Any]:
    """One mode: its scores; several: ``{"modes": {mode: scores}}``."""
    out = {mode: s.to_dict() for mode, s in scores.items()}
    return next(iter(out.values())) if len(out) == 1 else {"modes": out}


def score_lines(scores: Mapping[str, Scores]) -> list[str]:
    """One line per mode (without the mode's name when only one ran)."""
    lines = []
    for mode, mode_scores in scores.items():
        line = "  ".join(f"{name} {value}" for name, value in mode_scores.to_dict().items())
        lines.append(line if len(scores) == 1 else f"{mode:<14} {line}")
    return lines


def _intent_effect(runs: Runs) -> list[str]:
    """How many rankings query understanding changed, when both hybrid modes ran."""
    if HYBRID not in runs or INTENT not in runs:
        return []
    changed = sum(1 for q, ranking in runs[INTENT].items() if runs[HYBRID].get(q) != ranking)
    return [f"query understanding changed the top 100 of {changed} of {len(runs[INTENT])} queries"]


def _set_name(catalogue: Path) -> str:
    """The folder a catalogue of docs/DATA.md's layout sits in names its set."""
    return Path(catalogue).resolve().parent.name


def _details(index: EvalIndex, catalogue: Path) -> list[str]:
    current = index.store.current()
    if current is None:
        return [f"catalogue `{catalogue}`"]
    manifest = index.store.manifest(current)
    return [
        f"catalogue `{catalogue}`: {manifest.counts.products} products indexed",
        f"index `{current}` under `{index.store.root}`, model `{manifest.model_name}`",
    ]
