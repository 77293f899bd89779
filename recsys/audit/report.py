"""The audit as people look at it: ``report.md`` (counts, the charts, the top findings of each kind with
their evidence, what the large categories contain), ``findings.csv`` (every finding, one per row) and two
PNG charts: a 2-D map of the catalogue's vectors coloured by category with the misfiled products marked,
and the price distribution per category with the outliers marked. matplotlib (Agg) is imported only here
and only when a report is written."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.audit.data import AuditData
from recsys.audit.findings import (
    CONTRADICTION,
    DUPLICATE,
    KINDS,
    MISFILED,
    PRICE_OUTLIER,
    AuditResult,
    Finding,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
TOP = 10  # findings shown per kind
MAP_COLOURS = 9  # top-level categories coloured on the map; the rest are "other"
MAP_ARROWS = 25
PRICE_ROWS = 18
CLUSTER_CATEGORIES = 10  # the largest categories' clusters are shown in the report
MAP = "map.png"
PRICES = "prices.png"
TITLES = {
    DUPLICATE: "Near-duplicates",
    MISFILED: "Misfiled products",
    CONTRADICTION: "Contradictory attributes",
    PRICE_OUTLIER: "Price outliers",
}


def write_report(result: AuditResult, data: AuditData, folder: Path) -> list[Path]:
    """Write the report into ``folder`` (created); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [_csv(result, folder / "findings.csv")]
    _save(_map_chart(result, data), folder / MAP)
    _save(_price_chart(result, data), folder / PRICES)
    written += [folder / MAP, folder / PRICES]
    (folder / "report.md").write_text(markdown(result), encoding="utf-8")
    return [folder / "report.md", *written]


# -- markdown and CSV ------------------------------------------------------------------------------------


def markdown(result: AuditResult) -> str:
    counts = result.counts
    lines = [
        f"# Catalogue audit of index version `{result.version}`",
        "",
        f"{result.products:,} products, audited {result.created_at} in {result.seconds['total']:.1f} s "
        "from the version's stored vectors and products (nothing embedded again).",
        "",
        "| kind | findings |",
        "|---|---|",
        *(f"| {TITLES[k]} | {counts[k]:,} |" for k in KINDS),
        f"| Clusters (not defects) | {len(result.clusters):,} |",
        "",
        f"![the catalogue's vectors, misfiled products marked]({MAP})",
        "",
        f"![prices per category, outliers marked]({PRICES})",
        "",
        "Every finding, with its evidence, is in `findings.csv`.",
    ]
    for kind in KINDS:
        found = result.of_kind(kind)
        lines += ["", f"## {TITLES[kind]}: top {min(TOP, len(found))} of {len(found):,}", ""]
        if not found:
            lines.append("None found.")
            continue
        lines += ["| score | products | evidence |", "|---|---|---|"]
        lines += [f"| {f.score:.3f} | {_cell(_who(f))} | {_cell(_why(f))} |" for f in found[:TOP]]
    lines += ["", "## What the large categories contain", ""]
    if not result.clusters:
        lines.append("No category is large enough to cluster.")
    by_category: dict[tuple[str, ...], list[Any]] = defaultdict(list)
    for cluster in result.clusters:
        by_category[cluster.category].append(cluster)
    largest = sorted(by_category.items(), key=lambda kv: -sum(len(c.ids) for c in kv[1]))
    for category, clusters in largest[:CLUSTER_CATEGORIES]:
        total = sum(len(c.ids) for c in clusters)
        lines += ["", f"**{' > '.join(category)}** ({total:,} products)", ""]
        lines += ["| cluster | products | share | for example |", "|---|---|---|---|"]
        for c in clusters:
            lines.append(f"| {_cell(c.label)} | {len(c.ids):,} | {c.share:.0%} | {_cell(c.examples[0])} |")
    if len(largest) > CLUSTER_CATEGORIES:
        lines += [
            "",
            f"The clusters of {len(largest) - CLUSTER_CATEGORIES} more categories are in `clusters.json`.",
        ]
    return "\n".join(lines) + "\n"


def _who(f: Finding) -> str:
    products = f.evidence.get("products")
    if isinstance(products, list):
        shown = "; ".join(f"{p['id']} {p['title']}" for p in products[:4])
        more = len(f.ids) - min(4, len(products))
        return shown + (f" (+{more} more)" if more > 0 else "")
    return f"{f.ids[0]} {f.evidence.get('title', '')}"


def _why(f: Finding) -> str:
    ev = f.evidence
    if f.kind == DUPLICATE:
        pair = ev["pairs"][0] if ev.get("pairs") else {}
        differing = ", ".join(pair.get("title_words_differing", [])) or "none"
        return (
            f"cosine {pair.get('cosine')}, title agreement {pair.get('title_agreement')}, words differing: "
            f"{differing}; {ev.get('listings_with_this_title')} listing(s) with this title"
        )
    if f.kind == MISFILED:
        return (
            f"filed under {ev.get('category')}; nearer {' > '.join(f.suggested_category or ())} "
            f"({ev.get('similarity_to_suggested')} against {ev.get('similarity_to_own_category')})"
        )
    if f.kind == CONTRADICTION:
        said = next((v for k, v in ev.items() if k.endswith("_says")), "?")
        return (
            f"{f.field} is {ev.get('attribute')!r} but the {ev.get('source')} says {said!r} "
            f"(such mentions agree {ev.get('agreement_elsewhere')} of the time elsewhere)"
        )
    return (
        f"{ev.get('price')} against a median of {ev.get('median_price')} in {ev.get('reference')} "
        f"({ev.get('off_by')}, robust z {ev.get('robust_z')})"
    )


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _csv(result: AuditResult, path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "score", "ids", "field", "suggested_category", "summary", "evidence"])
        for f in result.findings:
            writer.writerow(
                [
                    f.kind,
                    f"{f.score:.4f}",
                    " ".join(f.ids),
                    f.field or "",
                    " > ".join(f.suggested_category or ()),
                    _why(f),
                    json.dumps(f.evidence, ensure_ascii=False),
                ]
            )
    return path


# -- charts ----------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=DPI, format="png")


def _map_chart(result: AuditResult, data: AuditData, seed: int = 0) -> Figure:
    """The vectors projected on their first two principal components (a sample, plus every misfiled
    product), coloured by top-level category; misfiled products are crosses with an arrow to the
    centre of the category they were found nearer."""
    figure = _figure(9.0, 7.0)
    axes = figure.add_subplot()
    misfiled = result.of_kind(MISFILED)
    rows_of = {pid: row for row, pid in enumerate(data.ids)}
    marked = np.array([rows_of[f.ids[0]] for f in misfiled], dtype=np.int64)
    rng = np.random.default_rng(seed)
    size = min(int(result.thresholds.get("map_sample", 6000)), len(data))
    sample = np.union1d(np.sort(rng.choice(len(data), size, replace=False)), marked)
    vectors = np.asarray(data.vectors[sample], dtype=np.float64)
    mean = vectors.mean(axis=0)
    _, _, basis = np.linalg.svd(vectors - mean, full_matrices=False)
    points = (vectors - mean) @ basis[:2].T
    top = [c for c, _ in Counter(data.categories[r][:1] for r in sample).most_common(MAP_COLOURS)]
    groups = [data.categories[r][:1] if data.categories[r][:1] in top else None for r in sample]
    palette = [f"C{i}" for i in range(10)]
    for i, name in enumerate([*top, None]):
        mask = np.array([g == name for g in groups])
        if mask.any():
            label = " > ".join(name) if name else "other"
            axes.scatter(
                points[mask, 0],
                points[mask, 1],
                s=4,
                alpha=0.45,
                color=palette[i % 10],
                label=label or "(none)",
            )
    where = {int(r): i for i, r in enumerate(sample)}
    leaves, leaf_of = data.leaves
    for f in misfiled[:MAP_ARROWS]:
        row = rows_of[f.ids[0]]
        start = points[where[row]]
        target = leaves.index(tuple(f.suggested_category or ()))
        centre = (np.asarray(data.vectors[leaf_of == target], dtype=np.float64).mean(axis=0) - mean) @ basis[
            :2
        ].T
        axes.annotate(
            "", xy=centre, xytext=start, arrowprops={"arrowstyle": "->", "color": "black", "lw": 0.6}
        )
    if len(marked):
        crosses = np.array([points[where[int(r)]] for r in marked])
        axes.scatter(
            crosses[:, 0], crosses[:, 1], s=40, marker="x", color="black", linewidths=1.2, label="misfiled"
        )
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(
        f"{len(data):,} products' similar vectors (PCA of {len(sample):,}); "
        f"{len(misfiled)} misfiled, arrows to the suggested category"
    )
    axes.legend(loc="best", fontsize=7, markerscale=3)
    return figure


def _price_chart(result: AuditResult, data: AuditData) -> Figure:
    """Log-price per category (the most affected and the largest), box and points, outliers in red."""
    priced = np.flatnonzero(~np.isnan(data.prices))
    figure = _figure(9.0, 0.9 + 0.38 * PRICE_ROWS)
    axes = figure.add_subplot()
    if len(priced) == 0:
        axes.text(0.5, 0.5, "no product has a price", ha="center", va="center", fontsize=14)
        axes.set_axis_off()
        return figure
    outliers = {f.ids[0]: f for f in result.of_kind(PRICE_OUTLIER)}
    by_category: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for row in priced:
        by_category[data.categories[row]].append(int(row))
    rows_of = {pid: row for row, pid in enumerate(data.ids)}
    flagged = Counter(data.categories[rows_of[pid]] for pid in outliers)
    chosen = sorted(by_category, key=lambda c: (-flagged[c], -len(by_category[c])))[:PRICE_ROWS]
    chosen = sorted(chosen, key=lambda c: np.median(data.prices[by_category[c]]))
    rng = np.random.default_rng(0)
    series = [np.maximum(data.prices[by_category[c]], 0.01) for c in chosen]
    axes.boxplot(series, orientation="horizontal", showfliers=False, widths=0.6, whis=(5, 95))
    for i, category in enumerate(chosen, start=1):
        rows = by_category[category]
        prices = np.maximum(data.prices[rows], 0.01)
        bad = np.array([data.ids[r] in outliers for r in rows])
        jitter = i + rng.uniform(-0.2, 0.2, len(rows))
        axes.scatter(prices[~bad], jitter[~bad], s=3, color="grey", alpha=0.4)
        if bad.any():
            axes.scatter(prices[bad], jitter[bad], s=36, marker="x", color="red", linewidths=1.4)
    axes.set_xscale("log")
    axes.set_yticks(range(1, len(chosen) + 1), [" > ".join(c[-2:]) for c in chosen], fontsize=7)
    axes.set_xlabel("price (log scale); boxes: quartiles, whiskers: 5th to 95th percentile")
    axes.set_title(
        f"Prices per category: {len(outliers)} outliers (red) among {len(priced):,} priced products"
    )
    return figure
