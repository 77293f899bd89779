"""Evaluation reports to look at: ``report.md`` with PNG charts (matplotlib, Agg, imported only here and
only when a report is written) and the per-query figures as TSV.

A report directory's files are written in a staging directory beside it and renamed into place one
by one, so a reader never sees half a file and other files in the directory are left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.evaluation.metrics import Coverage, Qrels, Ranking, Scores
from recsys.evaluation.modes import LEXICAL
from recsys.evaluation.similar import SimilarScores

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
SHOWN = 5  # titles shown per worst query
LABELS = {"ndcg@10": "nDCG@10", "recall@100": "Recall@100", "mrr@10": "MRR@10"}
MODE_NOTES = (
    "`dense`: cosine of the query to both vector spaces as served, no BM25",
    "`lexical`: BM25 ordering over the pooled candidates (hybrid weight 1, no short vector); a query with "
    "no term in the BM25 vocabulary falls back to the dense score",
    "`hybrid`: the served fusion of dense and max-normalised BM25, without query understanding",
    "`hybrid+intent`: what serving does: the query is understood first (price bounds and bands, "
    "attributes) and the text left is embedded and searched",
)


@dataclass(frozen=True)
class WorstQuery:
    query_id: str
    query: str
    ndcg: float
    returned: list[tuple[str, float | None]]  # (title, grade; None: unjudged) of the top results
    relevant: list[tuple[str, float]]  # the top-graded judged products


@dataclass(frozen=True)
class EvalReport:
    name: str
    scores: Mapping[str, Scores]  # per mode, in the order they ran
    default_mode: str
    coverage: Coverage
    worst: list[WorstQuery]
    queries: Mapping[str, str] = field(default_factory=dict)
    details: Sequence[str] = ()  # lines about the catalogue and the index


@dataclass(frozen=True)
class SimilarReport:
    name: str
    scores: SimilarScores
    same: Sequence[str]
    grade2: str | None
    titles: Mapping[str, str]
    worst: int = 10  # products shown with their neighbours
    details: Sequence[str] = ()


def worst_queries(
    scores: Scores,
    run: Mapping[str, Ranking],
    qrels: Qrels,
    queries: Mapping[str, str],
    titles: Mapping[str, str],
    n: int = 10,
) -> list[WorstQuery]:
    """The ``n`` queries with the lowest nDCG@10, what they returned and what was judged best."""
    low = min((g for judged in qrels.values() for g in judged.values()), default=0.0)
    worst = sorted(scores.ndcg_per_query.items(), key=lambda item: (item[1], item[0]))[:n]
    out = []
    for qid, value in worst:
        judged = qrels.get(qid, {})
        returned = [(titles.get(pid, pid), judged.get(pid)) for pid in run.get(qid, [])[:SHOWN]]
        best = sorted(((g, pid) for pid, g in judged.items() if g > low), key=lambda t: (-t[0], t[1]))
        relevant = [(titles.get(pid, pid), g) for g, pid in best[:SHOWN]]
        out.append(WorstQuery(qid, queries.get(qid, ""), value, returned, relevant))
    return out


def write_eval_report(directory: Path, report: EvalReport) -> list[Path]:
    """``report.md``, ``metrics.png``, ``ndcg_distribution.png`` and ``per_query.tsv`` in ``directory``."""
    modes = list(report.scores)
    files: dict[str, Callable[[Path], object]] = {
        "metrics.png": lambda path: _save(_metrics_chart(report), path),
        "ndcg_distribution.png": lambda path: _save(_distribution_chart(report), path),
        "per_query.tsv": lambda path: path.write_text(_per_query_tsv(report, modes), encoding="utf-8"),
        "report.md": lambda path: path.write_text(_eval_markdown(report), encoding="utf-8"),
    }
    return _publish(directory, files)


def write_similar_report(directory: Path, report: SimilarReport) -> list[Path]:
    """``report.md`` and ``similar.png`` in ``directory``."""
    files: dict[str, Callable[[Path], object]] = {
        "similar.png": lambda path: _save(_similar_chart(report), path),
        "report.md": lambda path: path.write_text(_similar_markdown(report), encoding="utf-8"),
    }
    return _publish(directory, files)


# -- markdown ------------------------------------------------------------------------------------------


def _eval_markdown(report: EvalReport) -> str:
    base = report.scores.get(LEXICAL)
    lines = [
        f"# Search evaluation: {report.name}",
        "",
        f"Written {_now()}. {report.coverage.message().capitalize()}.",
        "",
        *[f"- {line}" for line in report.details],
        "",
        "## Scores",
        "",
        "| mode | nDCG@10 | Recall@100 | MRR@10 | Judged@10 | nDCG@10 condensed | queries |"
        + (" nDCG@10 vs lexical |" if base else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if base else ""),
    ]
    for mode, scores in report.scores.items():
        row = f"| {mode} | {scores.ndcg_at_10:.4f} | {scores.recall_at_100:.4f} | {scores.mrr_at_10:.4f} | "
        row += f"{scores.judged_at_10:.3f} | {scores.ndcg_at_10_condensed:.4f} | {scores.queries} |"
        if base:
            ratio = scores.ndcg_at_10 / base.ndcg_at_10 if base.ndcg_at_10 else float("nan")
            row += f" {ratio:.3f} |"
        lines.append(row)
    lines += [
        "",
        "Unjudged products count as not relevant. Judged@10 is the share of the top 10 that has a "
        "judgement; nDCG@10 condensed scores the same rankings with their unjudged products taken out.",
        "",
        "![nDCG@10, Recall@100 and MRR@10 per mode](metrics.png)",
        "",
        "## Per-query nDCG@10",
        "",
        "![the distribution of per-query nDCG@10 per mode](ndcg_distribution.png)",
        "",
        "Every query's figure per mode is in `per_query.tsv`.",
        "",
        f"## The {len(report.worst)} worst queries ({report.default_mode}, by nDCG@10)",
        "",
    ]
    default = report.scores.get(report.default_mode)
    zeros = sum(1 for v in default.ndcg_per_query.values() if v == 0.0) if default else 0
    if zeros > len(report.worst):
        lines += [f"{zeros} queries score 0; these are the first by query id.", ""]
    for rank, worst in enumerate(report.worst, start=1):
        lines += [f"### {rank}. {_md(worst.query)} ({worst.query_id}): nDCG@10 {worst.ndcg:.3f}", ""]
        lines += ["| # | returned | grade |", "|---|---|---|"]
        for i, (title, grade) in enumerate(worst.returned, start=1):
            lines.append(f"| {i} | {_md(title)} | {'unjudged' if grade is None else f'{grade:g}'} |")
        if not worst.returned:
            lines.append("| | nothing returned | |")
        lines += ["", "Judged most relevant:", ""]
        lines += [f"- {_md(title)} (grade {grade:g})" for title, grade in worst.relevant] or ["- none"]
        lines.append("")
    lines += [
        "## How to read this",
        "",
        "- nDCG@10 with gain = grade − lowest grade; Recall@100 counting the top third of the grade range "
        "as relevant; MRR@10 of the first product with the top grade. Each is averaged over the scored "
        "queries that have a relevant product under its definition.",
        "- Unjudged products count as not relevant, which understates every mode equally (the judged "
        "pool caveat).",
        *[f"- {note}" for note in MODE_NOTES if note.split("`")[1] in report.scores],
        "",
    ]
    return "\n".join(lines)


def _similar_markdown(report: SimilarReport) -> str:
    scores = report.scores
    grade2 = f"; grade 2 when `{report.grade2}` matches too" if report.grade2 else ""
    lines = [
        f"# Similar-items evaluation: {report.name}",
        "",
        f"Written {_now()}. A neighbour is relevant (grade 1) when it shares `{','.join(report.same)}` "
        f"with the product{grade2}. {scores.products} sampled products; {scores.ineligible} products "
        "share those fields with no other product and are never sampled.",
        "",
        *[f"- {line}" for line in report.details],
        "",
        "| precision@10 | nDCG@10 | products |",
        "|---|---|---|",
        f"| {scores.precision_at_10:.4f} | {scores.ndcg_at_10:.4f} | {scores.products} |",
        "",
        "![precision@10 and nDCG@10, and the per-product precision@10](similar.png)",
        "",
        "nDCG@10: gain = grade; the ideal ranking is the best grades the whole catalogue holds for the "
        "product, itself excluded.",
        "",
        f"## The {report.worst} products with the lowest nDCG@10",
        "",
    ]
    worst = sorted(scores.per_product.values(), key=lambda n: (n.ndcg, n.product_id))[: report.worst]
    for item in worst:
        title = report.titles.get(item.product_id, item.product_id)
        scored = f"precision@10 {item.precision:.1f}, nDCG@10 {item.ndcg:.3f}"
        lines += [f"### {_md(title)} ({item.product_id}): {scored}", ""]
        lines += [
            f"{i}. {_md(report.titles.get(pid, pid))} (grade {grade})"
            for i, (pid, grade) in enumerate(zip(item.neighbours[:SHOWN], item.grades, strict=False), 1)
        ]
        lines.append("")
    return "\n".join(lines)


def _per_query_tsv(report: EvalReport, modes: list[str]) -> str:
    ids = sorted({q for s in report.scores.values() for q in s.ndcg_per_query})
    rows = ["\t".join(["query_id", "query", *[f"ndcg@10 {m}" for m in modes]])]
    for qid in ids:
        values = [report.scores[m].ndcg_per_query.get(qid) for m in modes]
        text = " ".join(report.queries.get(qid, "").split())
        rows.append("\t".join([qid, text, *["" if v is None else f"{v:.4f}" for v in values]]))
    return "\n".join(rows) + "\n"


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- charts --------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=DPI, format="png")


def _metrics_chart(report: EvalReport) -> Figure:
    figure = _figure(7.5, 4.0)
    axes = figure.add_subplot()
    modes = list(report.scores)
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        scores = report.scores[mode]
        values = [scores.ndcg_at_10, scores.recall_at_100, scores.mrr_at_10]
        xs = [m + (i - (len(modes) - 1) / 2) * width for m in range(3)]
        bars = axes.bar(xs, values, width, label=mode)
        axes.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    axes.set_xticks(range(3), list(LABELS.values()))
    axes.set_ylim(0, 1.1)
    axes.set_title(f"{report.name}: scores per mode")
    figure.legend(loc="outside lower center", ncols=len(modes), fontsize=8)
    return figure


def _distribution_chart(report: EvalReport) -> Figure:
    figure = _figure(7.5, 4.0)
    axes = figure.add_subplot()
    modes = [m for m in report.scores if report.scores[m].ndcg_per_query]
    data: list[Any] = [list(report.scores[m].ndcg_per_query.values()) for m in modes]
    if data:
        axes.boxplot(data, showmeans=True)
        axes.set_xticks(range(1, len(modes) + 1), modes)
    axes.set_ylim(-0.05, 1.05)
    axes.set_ylabel("nDCG@10 per query")
    axes.set_title(f"{report.name}: per-query nDCG@10 (triangle: mean)")
    return figure


def _similar_chart(report: SimilarReport) -> Figure:
    figure = _figure(8.0, 3.6)
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.6))
    scores = report.scores
    bars = left.bar(["precision@10", "nDCG@10"], [scores.precision_at_10, scores.ndcg_at_10])
    left.bar_label(bars, fmt="%.3f", fontsize=8)
    left.set_ylim(0, 1.1)
    left.set_title(f"{report.name}: similar items")
    precision = [n.precision for n in scores.per_product.values()]
    right.hist(precision, bins=[i / 10 - 0.05 for i in range(12)], edgecolor="white")
    right.set_xlabel("precision@10 per product")
    right.set_ylabel("products")
    right.set_title(f"{scores.products} sampled products")
    return figure


# -- files ---------------------------------------------------------------------------------------------


def _publish(directory: Path, files: Mapping[str, Callable[[Path], object]]) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, write in files.items():
            write(stage / name)
        written = []
        for name in files:
            os.replace(stage / name, directory / name)
            written.append(directory / name)
        return written
    finally:
        shutil.rmtree(stage, ignore_errors=True)
