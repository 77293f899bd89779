"""Fine-tuning benchmark (issue 9, section 4): before and after, on queries the training never saw.

* crowdflower, homedepot: a fixed fifth of the judged queries (seed 0) is held out; the fine-tune
  learns from the catalogue and the other four fifths (their judgements). Dense and hybrid nDCG@10 on
  the held-out fifth, before (the base model) and after, each on a full index of the catalogue built
  the way ``recsys eval`` builds it (with the model of each run). ``--folds 0 1 2 3 4``: instead, each
  of five disjoint fifths held out in turn (5-fold cross-validation, runs named ``<set>-fold<K>``,
  their mean ``<set>-folds``).
* myntra: self-supervised (generated queries + similar-items pairs sharing article type and gender);
  ``recsys eval-similar`` precision@10 and nDCG@10 before and after (the evaluation's 1,000 sampled
  products are left out of the training catalogue), and the myntra-trained model's dense nDCG@10 on
  crowdflower (what a fine-tune costs outside its domain).
* levers (``--levers``): one change at a time from the default configuration, each scored on a
  *proxy*: exact dense search over the held-out queries' judged products plus a seeded sample of the
  catalogue (``--proxy-size``), the same for the base model. Cheaper than a full index, so every lever
  can be tried; the full figures are for the configurations named in ``--full``.
* ``--device cuda`` (``auto``: CUDA when present; default ``cpu``, the served encoder): where the
  proxies' vectors are computed, by the fine-tune's own encoding (the served prompts, pooling and
  normalisation; documents whole, up to the model's maximum, not cut to ``RECSYS_DOCUMENT_TOKENS``).
  Training goes where the configuration's ``device`` says (``auto`` by default: CUDA when present).
  ``--rank-only`` keeps each proxy's ranked lists instead of its metrics, for a machine
  without ranx; a later run over the same ``--work`` on any machine scores them.

Everything is kept under ``--work`` (default /tmp/recsys-finetune): the splits, the models, their
indexes and embedding caches, and every figure measured (``results.jsonl``), so a rerun measures only
what is missing. Absent sets are skipped with a message.

    python bench/finetune.py [--data ../shared/data] [--sets crowdflower homedepot myntra]
                             [--levers] [--full default ...] [--folds 0 1 2 3 4]
                             [--json bench/results/finetune.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsys.build.pipeline import build_index
from recsys.build.texts import embed, render
from recsys.catalogue import Product, load_catalogue, price_bands
from recsys.evaluation.commands import evaluate_search, evaluate_similar_items
from recsys.evaluation.metrics import evaluate, read_qrels, read_queries
from recsys.evaluation.similar import Grader, evaluate_similar, sample_ids
from recsys.factories import load_template, make_encoder
from recsys.finetune import FinetuneConfig, FinetuneData, finetune, read_record
from recsys.finetune.device import resolve_device
from recsys.finetune.encoding import Tower
from recsys.index.embcache import EmbeddingCache
from recsys.model.encoder import ModelSpec
from recsys.settings import PROJECT_ROOT, Settings

SEARCH_SETS = ("crowdflower", "homedepot")
SIMILAR = {"myntra": (("category", "gender"), "colour")}
HELD_OUT = 0.2
SPLIT_SEED = 0
FOLDS = 5  # --folds: the K-th of five disjoint fifths is held out instead (cross-validation)
FOLD = re.compile(r"(.+)-fold(\d+)")  # a run's name under --folds: <set>-fold<K>
# one change at a time from the default configuration (FinetuneConfig's knobs)
LEVERS: dict[str, dict[str, Any]] = {
    "default": {},
    "no-hard-negatives": {"hard_negatives": 0},
    "no-dense-negatives": {"dense_negatives": False},
    "dense-skip-10": {"dense_skip": 10},
    "rank-4": {"rank": 4, "alpha": 8},
    "rank-64": {"rank": 64, "alpha": 128},
    "attention+ffn": {"targets": "attention+ffn"},
    "top-3-layers": {"top_layers": 3},
    "lr-1e-4": {"learning_rate": 1e-4},
    "lr-1e-3": {"learning_rate": 1e-3},
    "steps-half": {"steps": "half"},
    "steps-double": {"steps": "double"},
    "steps-x4": {"steps": "x4"},  # affordable on a GPU: the CPU's time budget stops ~90 steps in
    "batch-128": {"batch_size": 128},  # more in-batch negatives (a GPU lever too)
    "temperature-0.02": {"temperature": 0.02},
    "temperature-0.1": {"temperature": 0.1},
    "temperature-learnt": {"learn_temperature": True},
    "judged-only": {"mix_generated": 0.0},
    "generated-only": {"mix_judged": 0.0},
    "positives-top-third": {"positives": "top-third"},
    "no-short-loss": {"short_loss": False},
    "no-short-loss+top-3-layers": {"short_loss": False, "top_layers": 3},
    "no-short-loss+dense-skip-10": {"short_loss": False, "dense_skip": 10},
    "no-similar-pairs": {"mix_similar": 0.0},
    "no-generated": {"mix_generated": 0.0},
}
SET_LEVERS = {
    "search": [
        "default",
        "no-hard-negatives",
        "no-dense-negatives",
        "dense-skip-10",
        "judged-only",
        "generated-only",
        "positives-top-third",
        "rank-4",
        "rank-64",
        "attention+ffn",
        "top-3-layers",
        "lr-1e-4",
        "lr-1e-3",
        "steps-half",
        "steps-double",
        "steps-x4",
        "batch-128",
        "temperature-0.02",
        "temperature-0.1",
        "temperature-learnt",
        "no-short-loss",
        "no-short-loss+top-3-layers",
        "no-short-loss+dense-skip-10",
    ],
    "similar": [
        "default",
        "no-hard-negatives",
        "no-dense-negatives",
        "no-similar-pairs",
        "no-generated",
        "rank-4",
        "attention+ffn",
        "lr-1e-3",
        "steps-half",
        "temperature-learnt",
    ],
}


class Bench:
    def __init__(
        self,
        data: Path,
        work: Path,
        base: FinetuneConfig,
        proxy_size: int,
        device: str = "cpu",
        rank_only: bool = False,
    ) -> None:
        self.data = data
        self.device = device
        self.rank_only = rank_only
        self.work = work
        self.base_config = base
        self.proxy_size = proxy_size
        self.settings = Settings.from_env(None, embeddings_dir=work / "embeddings")
        self.template = load_template(self.settings)
        self.results_path = work / "results.jsonl"
        self.results: dict[str, Any] = {}
        if self.results_path.is_file():
            for line in self.results_path.read_text().splitlines():
                row = json.loads(line)
                self.results[row["key"]] = row["value"]

    # -- bookkeeping -------------------------------------------------------------------------------

    def remember(self, key: str, compute: Any) -> Any:
        if key not in self.results:
            value = compute()
            self.results[key] = value
            with self.results_path.open("a") as fh:
                fh.write(json.dumps({"key": key, "value": value}) + "\n")
            print(f"  {key}: {json.dumps(value)[:300]}", file=sys.stderr, flush=True)
        return self.results[key]

    def config(self, lever: str) -> FinetuneConfig:
        changes = dict(LEVERS[lever])
        if changes.get("steps") == "half":
            changes["steps"] = max(1, self.base_config.steps // 2)
        elif changes.get("steps") == "double":
            changes["steps"] = self.base_config.steps * 2
        elif changes.get("steps") == "x4":
            changes["steps"] = self.base_config.steps * 4
        return self.base_config.model_copy(update=changes)

    def model_settings(self, model_dir: Path | None) -> Settings:
        identity = ModelSpec.read(model_dir or self.settings.resolved_model_dir).identity
        return self.settings.replace(model_dir=model_dir, data_dir=self.work / "data" / identity)

    # -- the splits --------------------------------------------------------------------------------

    def split(self, name: str) -> dict[str, Path]:
        """Four fifths of the judged queries to train on, one fifth held out (fixed: seed 0); for a
        ``<set>-fold<K>`` name, the K-th of five disjoint fifths of a seeded shuffle."""
        folder, out = self.data / data_set(name), self.work / name / "split"
        paths = {k: out / f"{k}.tsv" for k in ("train_queries", "train_qrels", "heldout_queries")}
        if all(p.is_file() for p in paths.values()):
            return paths
        out.mkdir(parents=True, exist_ok=True)
        queries = read_queries(folder / "queries.tsv")
        judged = sorted(q for q in queries if q in read_qrels(folder / "qrels.tsv"))
        fold = FOLD.fullmatch(name)
        if fold is None:
            held = set(random.Random(SPLIT_SEED).sample(judged, round(len(judged) * HELD_OUT)))
        else:
            shuffled = random.Random(SPLIT_SEED).sample(judged, len(judged))
            held = set(shuffled[int(fold.group(2)) :: FOLDS])
        _write_tsv(
            paths["heldout_queries"], ["query_id", "query"], [[q, queries[q]] for q in judged if q in held]
        )
        _write_tsv(
            paths["train_queries"], ["query_id", "query"], [[q, queries[q]] for q in judged if q not in held]
        )
        with (folder / "qrels.tsv").open(encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh, delimiter="\t")][1:]
        _write_tsv(
            paths["train_qrels"], ["query_id", "product_id", "grade"], [r for r in rows if r[0] not in held]
        )
        return paths

    def similar_training_catalogue(self, name: str) -> Path:
        """The catalogue without the products eval-similar samples (their neighbours stay)."""
        out = self.work / name / "train_catalogue.jsonl"
        if out.is_file():
            return out
        same, grade2 = SIMILAR[name]
        products = load_catalogue(self.data / name / "catalogue.jsonl").products
        grader = Grader(products, same, grade2)
        sampled = set(sample_ids([p.id for p in products if grader.eligible(p.id)], 1000, 0))
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for p in products:
                if p.id not in sampled:
                    fh.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
        return out

    # -- training ----------------------------------------------------------------------------------

    def train(self, name: str, lever: str) -> Path:
        config = self.config(lever)
        out = self.work / name / "models" / lever
        record = read_record(out) if out.is_dir() else None
        if record is not None and record.config == config.model_dump():
            return out
        if name in SIMILAR:
            same, _ = SIMILAR[name]
            data = FinetuneData(self.similar_training_catalogue(name), similar_same=same)
        else:
            split = self.split(name)
            data = FinetuneData(
                self.data / data_set(name) / "catalogue.jsonl", split["train_queries"], split["train_qrels"]
            )
        print(f"{name}/{lever}: fine-tuning ({config.steps} steps)", file=sys.stderr, flush=True)
        last = [0.0]

        def progress(report: Any) -> None:
            if time.monotonic() - last[0] > 30 or report.step == report.steps:
                last[0] = time.monotonic()
                print(
                    f"  step {report.step}/{report.steps} loss {report.loss:.3f} "
                    f"val {report.validation} best {report.best}",
                    file=sys.stderr,
                    flush=True,
                )

        result = finetune(
            data,
            out,
            settings=self.settings,
            template=self.template,
            config=config,
            progress=progress,
            phase=lambda text: print(f"  {name}/{lever}: {text}", file=sys.stderr, flush=True),
            overwrite=True,
        )
        self.results.pop(f"{name}/{lever}/training", None)
        return result.out

    def training_facts(self, name: str, lever: str) -> dict[str, Any]:
        record = read_record(self.work / name / "models" / lever)
        assert record is not None
        t = record.training
        return {
            "seconds": t["seconds"],
            "steps": t["steps"],
            "best_step": t["best_step"],
            "stopped": t["stopped"],
            "validation": record.validation,
            "pairs": record.pairs,
            "lengths": t["lengths"],
            "final_scale": t["final_scale"],
            "device": t["device"],
        }

    # -- measurements ------------------------------------------------------------------------------

    def full_search(self, name: str, model_dir: Path | None) -> dict[str, Any]:
        folder, split = self.data / data_set(name), self.split(name)
        settings = self.model_settings(model_dir)
        encoder = make_encoder(settings)
        began = time.monotonic()
        result = evaluate_search(
            folder / "catalogue.jsonl",
            split["heldout_queries"],
            folder / "qrels.tsv",
            settings=settings,
            encoder=encoder,
            template=self.template,
            build=lambda path, here: build_index(
                path, settings=here, encoder=encoder, template=self.template
            ),
            modes=("dense", "hybrid"),
        )
        out: dict[str, Any] = {mode: s.to_dict() for mode, s in result.scores.items()}
        out["seconds"] = round(time.monotonic() - began, 1)
        out["built"] = result.index.built
        return out

    def full_similar(self, name: str, model_dir: Path | None) -> dict[str, Any]:
        same, grade2 = SIMILAR[name]
        settings = self.model_settings(model_dir)
        encoder = make_encoder(settings)
        began = time.monotonic()
        result = evaluate_similar_items(
            self.data / name / "catalogue.jsonl",
            settings=settings,
            encoder=encoder,
            template=self.template,
            build=lambda path, here: build_index(
                path, settings=here, encoder=encoder, template=self.template
            ),
            same=same,
            grade2=grade2,
            sample=1000,
            seed=0,
        )
        return {**result.scores.to_dict(), "seconds": round(time.monotonic() - began, 1)}

    def proxy_search(self, name: str, model_dir: Path | None) -> dict[str, Any]:
        """Exact dense nDCG@10 of the held-out queries over their judged products + a seeded sample."""
        folder, split = self.data / data_set(name), self.split(name)
        products = load_catalogue(folder / "catalogue.jsonl").products
        queries = read_queries(split["heldout_queries"])
        qrels = read_qrels(folder / "qrels.tsv")
        judged = {p for q in queries for p in qrels.get(q, {})}
        chosen = _proxy_products(products, judged, self.proxy_size)
        encoder = self.proxy_encoder(model_dir)
        full, short = self._vectors(products, chosen, encoder)
        w = self.settings.short_vector_weight
        vectors = encoder.encode_queries([self.template.render_query(t) for t in queries.values()])
        scores = (1 - w) * (vectors @ full.T) + w * (vectors @ short.T)
        ids = [products[i].id for i in chosen]
        runs = {
            q: [ids[j] for j in np.argsort(-row, kind="stable")[:100]]
            for q, row in zip(queries, scores, strict=True)
        }
        if self.rank_only:
            return {"runs": runs, "products": len(chosen)}
        return {"dense": evaluate(runs, qrels).to_dict(), "products": len(chosen)}

    def score_ranked(self) -> None:
        """Turn the ranked lists a ``--rank-only`` run kept into metrics (rewriting results.jsonl)."""
        ranked = [k for k, v in self.results.items() if isinstance(v, dict) and "runs" in v]
        qrels: dict[str, Any] = {}  # per set, read once
        for key in ranked:
            value, name = self.results[key], data_set(key.split("/")[0])
            if name not in qrels:
                qrels[name] = read_qrels(self.data / name / "qrels.tsv")
            scores = evaluate(value["runs"], qrels[name]).to_dict()
            self.results[key] = {"dense": scores, "products": value["products"]}
        if ranked:
            lines = [json.dumps({"key": k, "value": v}) for k, v in self.results.items()]
            self.results_path.write_text("\n".join(lines) + "\n")
            print(f"scored {len(ranked)} ranked proxies", file=sys.stderr)

    def proxy_encoder(self, model_dir: Path | None) -> Any:
        if self.device == "cpu":
            return make_encoder(self.model_settings(model_dir).replace(query_runtime="torch"))
        return TowerEncoder(model_dir or self.settings.resolved_model_dir, self.device)

    def proxy_similar(self, name: str, model_dir: Path | None) -> dict[str, Any]:
        """eval-similar's metric over a seeded sample of the catalogue (the same 1,000 anchors' share)."""
        same, grade2 = SIMILAR[name]
        products = load_catalogue(self.data / name / "catalogue.jsonl").products
        grader = Grader(products, same, grade2)
        anchors = set(sample_ids([p.id for p in products if grader.eligible(p.id)], 1000, 0))
        chosen = _proxy_products(products, anchors, self.proxy_size)
        sub = [products[i] for i in chosen]
        encoder = self.proxy_encoder(model_dir)
        _, short = self._vectors(products, chosen, encoder)
        row = {p.id: i for i, p in enumerate(sub)}
        sub_grader = Grader(sub, same, grade2)

        def neighbours(pid: str) -> list[str]:
            scores = short @ short[row[pid]]
            scores[row[pid]] = -np.inf
            return [sub[j].id for j in np.argsort(-scores, kind="stable")[:10]]

        ids = [pid for pid in row if pid in anchors]
        scores = evaluate_similar(neighbours, sub_grader, ids, sample=1000, seed=0)
        return {**scores.to_dict(), "products": len(sub)}

    def _vectors(
        self, products: list[Product], chosen: list[int], encoder: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        bands = price_bands(products)
        rendered = render([products[i] for i in chosen], self.template, bands)
        cache = EmbeddingCache(self.settings.resolved_embeddings_dir, encoder.identity, encoder.dim)
        full, _ = embed(rendered.search, encoder, cache)
        short, _ = embed(rendered.similar, encoder, cache)
        return full, short


class TowerEncoder:
    """A proxy's vectors on an accelerator, through the fine-tune's own :class:`Tower`: the model
    directory's prompts, pooling and normalisation, as the served encoder applies them."""

    def __init__(self, model_dir: Path, device: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.spec = ModelSpec.read(model_dir)
        model = AutoModel.from_pretrained(model_dir, local_files_only=True).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.tower = Tower(tokenizer, model, self.spec, device)
        self.identity = f"{self.spec.identity}-{device.split(':')[0]}"  # its own embedding cache
        self.dim = self.spec.dim

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.tower.embed([self.spec.document_prefix + t for t in texts], self.spec.max_length, 256)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.tower.embed([self.spec.query_prefix + t for t in texts], self.spec.max_length, 256)


def data_set(name: str) -> str:
    """The set of ``../shared/data`` a run's name reads: ``crowdflower-fold2`` reads crowdflower."""
    fold = FOLD.fullmatch(name)
    return name if fold is None else fold.group(1)


def _proxy_products(products: list[Product], must: set[str], size: int) -> list[int]:
    keep = [i for i, p in enumerate(products) if p.id in must]
    rest = [i for i, p in enumerate(products) if p.id not in must]
    keep += random.Random(SPLIT_SEED).sample(rest, max(0, min(len(rest), size - len(keep))))
    return sorted(keep)


def _write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/recsys-finetune"))
    parser.add_argument("--sets", nargs="+", default=[*SEARCH_SETS, *SIMILAR])
    parser.add_argument("--levers", nargs="*", default=[], help="levers tried on proxies (all: every one)")
    parser.add_argument(
        "--full", nargs="*", default=[], help="levers measured on full indexes (and the base)"
    )
    parser.add_argument(
        "--cross", action="store_true", help="the myntra model's dense nDCG@10 on crowdflower"
    )
    parser.add_argument("--config", default="{}", help="JSON changes to the default FinetuneConfig")
    parser.add_argument("--proxy-size", type=int, default=4000)
    parser.add_argument(
        "--device", default="cpu", help="proxies' vectors: cpu (the served encoder), cuda or auto"
    )
    parser.add_argument(
        "--rank-only", action="store_true", help="keep proxies' ranked lists, not metrics (no ranx here)"
    )
    parser.add_argument(
        "--folds",
        type=int,
        nargs="*",
        choices=range(FOLDS),
        help="search sets: hold out each of these fifths of a 5-fold split in turn (their mean: <set>-folds)",
    )
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "bench" / "results" / "finetune.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base = FinetuneConfig(**json.loads(args.config))
    device = resolve_device(args.device)
    bench = Bench(args.data, args.work, base, args.proxy_size, device, args.rank_only)
    if not args.rank_only:
        bench.score_ranked()
    present = [s for s in args.sets if (args.data / s / "catalogue.jsonl").is_file()]
    for name in sorted(set(args.sets) - set(present)):
        print(f"skipped {name}: {args.data / name}/catalogue.jsonl is not here", file=sys.stderr)
    runs = [f"{s}-fold{k}" for s in present if s not in SIMILAR and args.folds for k in args.folds]
    runs += [s for s in present if s in SIMILAR or not args.folds]
    for name in runs:
        kind = "similar" if name in SIMILAR else "search"
        full = bench.proxy_similar if kind == "similar" else bench.proxy_search
        levers = SET_LEVERS[kind] if args.levers == ["all"] else args.levers
        for lever in [lv for lv in levers if lv in SET_LEVERS[kind]]:
            bench.remember(f"{name}/base/proxy", lambda: full(name, None))  # noqa: B023
            model = bench.train(name, lever)
            bench.remember(f"{name}/{lever}/training", lambda: bench.training_facts(name, lever))  # noqa: B023
            bench.remember(f"{name}/{lever}/proxy", lambda: full(name, model))  # noqa: B023
        measure = bench.full_similar if kind == "similar" else bench.full_search
        for lever in [lv for lv in args.full if lv in SET_LEVERS[kind]]:
            bench.remember(f"{name}/base/full", lambda: measure(name, None))  # noqa: B023
            model = bench.train(name, lever)
            bench.remember(f"{name}/{lever}/training", lambda: bench.training_facts(name, lever))  # noqa: B023
            bench.remember(f"{name}/{lever}/full", lambda: measure(name, model))  # noqa: B023
            if kind == "similar" and args.cross:
                bench.remember("crowdflower/base/full", lambda: bench.full_search("crowdflower", None))
                bench.remember(
                    f"crowdflower/{name}-{lever}/full",
                    lambda: bench.full_search("crowdflower", model),  # noqa: B023
                )
    if args.rank_only:
        print(f"ranked lists kept in {bench.results_path}; score them with a run without --rank-only")
        return 0
    report = summarise(bench.results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\nwrote {args.json}")
    return 0


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """``{set: {lever: {training, proxy, full}, base: {...}}}`` with deltas against the base."""
    out: dict[str, Any] = {}
    for key, value in sorted(results.items()):
        name, lever, kind = key.split("/")
        out.setdefault(name, {}).setdefault(lever, {})[kind] = value
    folds: dict[str, list[str]] = {}
    for name in out:
        if data_set(name) != name:
            folds.setdefault(data_set(name), []).append(name)
    for name, names in folds.items():  # the mean over the folds where every run was measured
        levers = {lever for n in names for lever in out[n]}
        complete = [n for n in names if all("proxy" in out[n].get(lever, {}) for lever in levers)]
        for lever in levers:
            runs = [out[n][lever]["proxy"]["dense"] for n in complete]
            if runs:
                mean = round(sum(r["ndcg@10"] for r in runs) / len(runs), 4)
                queries = sum(r["queries"] for r in runs)
                proxy = {"dense": {"ndcg@10": mean, "queries": queries}, "folds": len(runs)}
                out.setdefault(f"{name}-folds", {}).setdefault(lever, {})["proxy"] = proxy
    for levers in out.values():
        base = levers.get("base", {})
        for lever, figures in levers.items():
            if lever == "base":
                continue
            for kind in ("proxy", "full"):
                if kind in figures and kind in base:
                    figures[f"{kind}_delta"] = _delta(figures[kind], base[kind])
    return out


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, float]:
    deltas = {}
    for mode in ("dense", "hybrid"):
        if mode in after and mode in before:
            deltas[f"{mode} ndcg@10"] = round(after[mode]["ndcg@10"] - before[mode]["ndcg@10"], 4)
    for metric in ("precision@10", "ndcg@10"):
        if metric in after and metric in before:
            deltas[metric] = round(after[metric] - before[metric], 4)
    return deltas


def table(report: dict[str, Any]) -> str:
    lines = ["| set | run | eval | figures | Δ vs base | training s |", "|---|---|---|---|---|---|"]
    for name, levers in report.items():
        for lever, figures in levers.items():
            for kind in ("full", "proxy"):
                if kind not in figures:
                    continue
                shown = figures[kind]
                text = ", ".join(
                    f"{m} {shown[m]['ndcg@10']}" for m in ("dense", "hybrid") if m in shown
                ) or ", ".join(f"{m} {shown[m]}" for m in ("precision@10", "ndcg@10") if m in shown)
                delta = figures.get(f"{kind}_delta", {})
                seconds = figures.get("training", {}).get("seconds", {}).get("total", "")
                lines.append(f"| {name} | {lever} | {kind} | {text} | {delta or ''} | {seconds} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
