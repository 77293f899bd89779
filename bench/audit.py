"""Benchmark: the catalogue audit's recall and precision on injected defects, and its time.

* ``../shared/data/myntra`` (44,446 products, no prices; never copied into the repo), indexed with the
  real model, clean and with seeded defects: 200 duplicates with perturbed titles and new ids, 200
  products moved to a leaf category of another sub-category, 200 colours changed while the title keeps
  the true one. Thresholds are tuned on one seed (a grid per check, on that seed's copy) and the
  defaults are reported on another.
* Price errors (×100, ÷100, a digit lost; 200) on the fixture generator scaled to 20,000 products
  (hash encoder: the price check reads prices, not vectors).

Recall: the share of injected products that a finding of their kind names (a duplicate together with
its original). Precision, as issue 12 defines it: of the findings the clean copy does not have (not
contained in a clean finding of the same kind and field), the share that involve an injected product.
Indexes live in a persistent data dir and share one embedding cache, so only changed products embed.

    .venv/bin/python bench/audit.py [--data /tmp/recsys-audit]

Writes bench/results/audit.json and bench/results/audit-myntra/ (report.md and the PNG charts of the
clean catalogue's audit, and bench.md with the tables; the full findings CSV stays in the data dir,
since it would copy the catalogue's titles into the repo).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recsys.audit import AuditData, AuditResult, Thresholds, audit  # noqa: E402
from recsys.audit.contradictions import find_contradictions  # noqa: E402
from recsys.audit.defects import Injected, inject  # noqa: E402
from recsys.audit.duplicates import find_duplicates  # noqa: E402
from recsys.audit.findings import (  # noqa: E402
    CONTRADICTION,
    DUPLICATE,
    KINDS,
    MISFILED,
    PRICE_OUTLIER,
    Finding,
)
from recsys.audit.misfiled import find_misfiled  # noqa: E402
from recsys.audit.prices import find_price_outliers  # noqa: E402
from recsys.audit.report import write_report  # noqa: E402
from recsys.build.pipeline import build_index  # noqa: E402
from recsys.catalogue import catalogue_hash, load_catalogue  # noqa: E402
from recsys.errors import RecsysError  # noqa: E402
from recsys.index.store import IndexStore  # noqa: E402
from recsys.model.encoder import Encoder  # noqa: E402
from recsys.settings import Settings  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "myntra" / "catalogue.jsonl"
RESULTS = ROOT / "bench" / "results"
EACH = 200
CHECKS = {
    DUPLICATE: find_duplicates,
    MISFILED: find_misfiled,
    CONTRADICTION: find_contradictions,
    PRICE_OUTLIER: find_price_outliers,
}
GRID: dict[str, list[dict[str, Any]]] = {  # the stricter settings first: ties go to them
    DUPLICATE: [
        {"duplicate_cosine": c, "duplicate_max_extra_words": w, "duplicate_neighbours": k}
        for c in (0.95, 0.93, 0.9)
        for w in (1, 2)
        for k in (10, 20)
    ],
    MISFILED: [
        {"misfiled_title_odds": o, "misfiled_vector": v}
        for o in (12.0, 10.0, 8.0, 5.0, 3.0)
        for v in (0.3, 0.25, 0.2, 0.15, 0.1)
    ],
    CONTRADICTION: [{"contradiction_score": s} for s in (0.8, 0.75, 0.72, 0.7, 0.65, 0.6)],
    PRICE_OUTLIER: [
        {"price_z": 3.5, "price_z_detached": z, "price_gap": g}
        for z in (3.5, 2.5, 2.0)
        for g in (1.5, 1.3, 1.2)
    ],
}
SAMPLE = 6
NOTES = (
    "Protocol: thresholds chosen on seed 1 (the fewest clean findings among the settings with recall >= "
    "target + margin and precision >= target), figures at the shipped defaults on a seed never used for "
    "choosing. An earlier run chose with a one-standard-error margin and reported on seed 2, where misfiled "
    "recall came out at 0.885; the margin was raised to two standard errors and the report moved to seed 3."
)
TARGET = 0.9
MARGIN = 0.04  # tuning asks this much more recall than the target: two binomial standard errors at 200


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def published(catalogue: Path, settings: Settings, encoder: Encoder) -> Path:
    """The version of ``catalogue`` under ``settings``: reused when its catalogue hash matches, else built."""
    store = IndexStore(settings.index_dir)
    digest = catalogue_hash(load_catalogue(catalogue).products)
    current = store.current()
    try:
        if current is not None and store.manifest(current).catalogue_hash == digest:
            return store.path(current)
    except RecsysError:  # a version of an older format: build again (the embeddings are cached)
        pass
    from recsys.factories import load_template

    started = time.perf_counter()
    result = build_index(catalogue, settings=settings, encoder=encoder, template=load_template(settings))
    seconds = time.perf_counter() - started
    say(f"built {settings.data_dir.name}: {result.manifest.counts.embedded} texts embedded, {seconds:.0f}s")
    return result.path


def new_findings(found: list[Finding], clean: list[Finding]) -> list[Finding]:
    """Findings the clean copy does not have: not contained in a clean finding of the same kind and field."""
    before: dict[tuple[str, str], list[set[str]]] = defaultdict(list)
    for f in clean:
        before[(f.kind, f.field or "")].append(set(f.ids))
    return [f for f in found if not any(set(f.ids) <= old for old in before[(f.kind, f.field or "")])]


def score(kind: str, found: list[Finding], clean: list[Finding], injected: list[Injected]) -> dict[str, Any]:
    mine = [i for i in injected if i.kind == kind]
    named: dict[str, list[Finding]] = defaultdict(list)
    for f in found:
        for pid in f.ids:
            named[pid].append(f)
    if kind == DUPLICATE:
        hits = [i for i in mine if any(i.detail["original"] in f.ids for f in named[i.id])]
    else:
        hits = [i for i in mine if named[i.id]]
    fresh = new_findings(found, clean)
    touched = {i.id for i in injected}
    involved = [f for f in fresh if set(f.ids) & touched]
    out: dict[str, Any] = {
        "injected": len(mine),
        "recall": round(len(hits) / max(1, len(mine)), 4),
        "findings": len(found),
        "new_findings": len(fresh),
        "precision": round(len(involved) / max(1, len(fresh)), 4),
        "clean_findings": len(clean),
    }
    if kind == MISFILED:
        right = [
            i
            for i in hits
            if tuple(named[i.id][0].suggested_category or ())[:-1] == tuple(i.detail["from"])[:-1]
        ]
        out["suggested_right_subcategory"] = round(len(right) / max(1, len(hits)), 4)
    if kind == PRICE_OUTLIER:
        by_error: dict[str, list[bool]] = defaultdict(list)
        for i in mine:
            by_error[i.detail["error"]].append(i in hits)
        out["recall_by_error"] = {e: round(sum(v) / len(v), 4) for e, v in by_error.items()}
    out["missed"] = [{"id": i.id, **i.detail} for i in mine if i not in hits][:10]
    out["not_involving_injected"] = [f.to_dict() for f in fresh if f not in involved][:5]
    return out


def tune(kind: str, clean: AuditData, tuned: AuditData, injected: list[Injected]) -> dict[str, Any]:
    """Every setting of the grid on the tuning seed, and the one chosen: the fewest clean findings among
    those with recall >= target + margin and precision >= target (ties: the first, the grids list the
    stricter settings first), else the best recall."""
    rows = []
    for change in GRID[kind]:
        thresholds = replace(Thresholds(), **change)
        check = CHECKS[kind]
        figures = score(kind, check(tuned, thresholds), check(clean, thresholds), injected)
        rows.append(
            {**change, **{k: figures[k] for k in ("recall", "precision", "new_findings", "clean_findings")}}
        )
        say(f"tune {kind}: {rows[-1]}")
    good = [r for r in rows if r["recall"] >= TARGET + MARGIN and r["precision"] >= TARGET]
    best = (
        min(good, key=lambda r: (r["clean_findings"], -r["recall"]))
        if good
        else max(rows, key=lambda r: (r["recall"], r["precision"]))
    )
    chosen = {k: best[k] for k in GRID[kind][0]}
    defaults = {k: getattr(Thresholds(), k) for k in chosen}
    return {"grid": rows, "chosen": chosen, "defaults": defaults, "defaults_are_chosen": chosen == defaults}


def samples(result: AuditResult, seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    out = {}
    for kind in KINDS:
        found = result.of_kind(kind)
        picked = found[:2] + rng.sample(found[2:], min(SAMPLE - 2, max(0, len(found) - 2)))
        out[kind] = [f.to_dict() for f in picked]
    return out


def myntra(args: argparse.Namespace, encoder: Encoder) -> dict[str, Any]:
    rows = [json.loads(line) for line in SOURCE.read_text(encoding="utf-8").splitlines()]

    def settings_for(name: str) -> Settings:
        return Settings.from_env(
            {},
            data_dir=args.data / name,
            embeddings_dir=args.data / "embeddings",
            annoy_trees=8,
            query_runtime="torch",
        )

    clean_path = published(SOURCE, settings_for("myntra-clean"), encoder)
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        clean_data = AuditData.load(clean_path)
        clean = audit(clean_data)
        timings.append(
            {**clean.seconds, "load": round(time.perf_counter() - started - clean.seconds["total"], 3)}
        )
        say(f"audited clean myntra in {time.perf_counter() - started:.1f}s: {clean.counts}")
    report_dir = RESULTS / "audit-myntra"
    scratch = args.data / "myntra-clean" / "report"
    write_report(clean, clean_data, scratch)
    report_dir.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "map.png", "prices.png"):
        shutil.copyfile(scratch / name, report_dir / name)

    copies = {}
    for role, seed in (("tune", args.tune_seed), ("report", args.seed)):
        defective, injected = inject(rows, seed, duplicates=EACH, misfiled=EACH, contradictions=EACH)
        name = f"myntra-seed{seed}"
        path = published(
            write_rows(defective, args.data / name / "catalogue.jsonl"), settings_for(name), encoder
        )
        copies[role] = (AuditData.load(path), injected)

    tuning = {
        kind: tune(kind, clean_data, copies["tune"][0], copies["tune"][1])
        for kind in (DUPLICATE, MISFILED, CONTRADICTION)
    }
    started = time.perf_counter()
    data, injected = copies["report"]
    result = audit(data)
    say(f"audited seed {args.seed} in {time.perf_counter() - started:.1f}s: {result.counts}")
    figures = {
        kind: score(kind, result.of_kind(kind), clean.of_kind(kind), injected)
        for kind in (DUPLICATE, MISFILED, CONTRADICTION)
    }
    fresh = new_findings(result.findings, clean.findings)
    touched = {i.id for i in injected}
    figures["all_kinds"] = {
        "new_findings": len(fresh),
        "precision": round(sum(bool(set(f.ids) & touched) for f in fresh) / max(1, len(fresh)), 4),
    }
    return {
        "products": len(clean_data),
        "seconds": timings,
        "clean_counts": clean.counts,
        "clean_clusters": len(clean.clusters),
        "report_seed": args.seed,
        "tune_seed": args.tune_seed,
        "report": figures,
        "tuning": tuning,
        "clean_samples": samples(clean, args.seed),
    }


def prices(args: argparse.Namespace, encoder: Encoder) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "fixtures"))
    import generate  # the fixture generator, scaled up here; the committed fixtures are not touched

    generate.N_PRODUCTS = args.price_products
    rows = generate.build_catalogue(random.Random(generate.SEED), random.Random(generate.SEED + 1))

    def settings_for(name: str) -> Settings:
        return Settings.from_env({}, data_dir=args.data / name, annoy_trees=4)

    clean_data = AuditData.load(
        published(
            write_rows(rows, args.data / "prices-clean" / "catalogue.jsonl"),
            settings_for("prices-clean"),
            encoder,
        )
    )
    clean = find_price_outliers(clean_data, Thresholds())
    out: dict[str, Any] = {"products": len(rows), "clean_findings": len(clean)}
    for role, seed in (("tune", args.tune_seed), ("report", args.seed)):
        defective, injected = inject(rows, seed, prices=EACH)
        name = f"prices-seed{seed}"
        data = AuditData.load(
            published(
                write_rows(defective, args.data / name / "catalogue.jsonl"), settings_for(name), encoder
            )
        )
        if role == "tune":
            out["tuning"] = tune(PRICE_OUTLIER, clean_data, data, injected)
        else:
            out["report"] = score(PRICE_OUTLIER, find_price_outliers(data, Thresholds()), clean, injected)
    out["clean_samples"] = [f.to_dict() for f in clean[:SAMPLE]]
    return out


def markdown(results: dict[str, Any]) -> str:
    my, pr = results["myntra"], results["prices"]
    lines = [
        "# Audit benchmark",
        "",
        f"Thresholds tuned on seed {my['tune_seed']}, figures on seed {my['report_seed']} at the defaults. "
        + results["notes"],
        "",
        "| kind | catalogue | injected | recall | new findings | precision | clean catalogue's findings |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in (DUPLICATE, MISFILED, CONTRADICTION):
        f = my["report"][kind]
        lines.append(
            f"| {kind} | myntra | {f['injected']} | {f['recall']:.3f} | {f['new_findings']} | "
            f"{f['precision']:.3f} | {f['clean_findings']} |"
        )
    f = pr["report"]
    lines.append(
        f"| price_outlier | fixture × {pr['products']:,} | {f['injected']} | {f['recall']:.3f} | "
        f"{f['new_findings']} | {f['precision']:.3f} | {f['clean_findings']} |"
    )
    lines += ["", f"Price recall by error: {pr['report']['recall_by_error']}", ""]
    best = min(my["seconds"], key=lambda s: s["total"])
    lines.append(f"Time for myntra ({my['products']:,} products): {best['total']:.1f} s ({best})")
    lines += [
        "",
        "`report.md` and the charts here are the clean myntra catalogue's audit; its `findings.csv` is left "
        "in the bench's data dir (`myntra-clean/report/`), since it would copy the catalogue's titles here.",
    ]
    return "\n".join(lines) + "\n"


def withheld(value: Any) -> Any:
    """``value`` with every product title replaced: the shared data's text stays out of the repository
    (ids, categories and scores are kept, so a finding can still be looked up in the catalogue)."""
    if isinstance(value, dict):
        return {k: ("<title withheld>" if k == "title" else withheld(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [withheld(v) for v in value]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/recsys-audit"))
    parser.add_argument("--tune-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--price-products", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="clean audits timed (the best is reported)")
    args = parser.parse_args()
    if not SOURCE.is_file():
        print(f"skipped: {SOURCE} is absent")
        return 0
    from recsys.factories import make_encoder
    from recsys.model.hashing import HashEncoder

    settings = Settings.from_env({}, query_runtime="torch")
    results: dict[str, Any] = {"notes": NOTES, "thresholds": Thresholds().to_dict()}
    results["prices"] = prices(args, HashEncoder())
    results["myntra"] = myntra(args, make_encoder(settings))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "audit.json").write_text(
        json.dumps(withheld(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (RESULTS / "audit-myntra" / "bench.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
