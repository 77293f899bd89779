"""The ``recsys`` command line: build and manage indexes, search, similar items, evaluation."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recsys.errors import RecsysError
from recsys.settings import Settings

EXIT_ERROR = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings) or 0)
    except RecsysError as exc:
        print(f"recsys: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.code in {"invalid_request", "bad_setting"} else EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    index = sub.add_parser("index", help="build and manage index versions").add_subparsers(
        dest="action", required=True
    )
    build = index.add_parser("build", help="build a new index version from a catalogue and publish it")
    build.add_argument(
        "--catalogue",
        type=Path,
        default=None,
        help="a .jsonl or .csv catalogue (default RECSYS_CATALOGUE_PATH)",
    )
    build.add_argument(
        "--async",
        dest="run_async",
        action="store_true",
        help="hand the build to the Celery workers (RECSYS_BROKER_URL) and print the task id",
    )
    build.set_defaults(func=cmd_build)
    status = index.add_parser("status", help="progress of a reindex job (default: the latest)")
    status.add_argument("task_id", nargs="?", help="the job's task id, as printed by build --async")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    cancel = index.add_parser("cancel", help="cancel a running reindex job; nothing is published")
    cancel.add_argument("task_id")
    cancel.set_defaults(func=cmd_cancel)
    listing = index.add_parser("list", help="list index versions (* marks the published one)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    resume = index.add_parser("resume", help="resume reindex jobs whose runner died (an orphan sweep)")
    resume.set_defaults(func=cmd_resume)
    verify = index.add_parser("verify", help="check a version's files against its manifest (checksums)")
    verify.add_argument("version", nargs="?", help="the version (default: the published one)")
    verify.set_defaults(func=cmd_verify)
    rollback = index.add_parser("rollback", help="publish the previous version (or --to VERSION)")
    rollback.add_argument("--to", help="the version to publish")
    rollback.set_defaults(func=cmd_rollback)

    search = sub.add_parser("search", help="search products")
    search.add_argument("query")
    search.add_argument(
        "--intent",
        choices=("on", "off"),
        default="on",
        help="understand prices, price intent and attributes in the query (default on)",
    )
    _result_options(search)
    search.set_defaults(func=cmd_search)
    similar = sub.add_parser("similar", help="products similar to one product")
    similar.add_argument("product_id")
    _result_options(similar)
    similar.set_defaults(func=cmd_similar)
    recommend = sub.add_parser("recommend", help="products for a cart or a session")
    recommend.add_argument("positive", nargs="+", help="product ids the shopper likes")
    recommend.add_argument("--negative", nargs="*", default=[], help="product ids to steer away from")
    _result_options(recommend)
    recommend.set_defaults(func=cmd_recommend)

    from recsys.evaluation.modes import ALL, DEFAULT_MODE, MODES

    ev = sub.add_parser("eval", help="score search on judged queries (nDCG@10, Recall@100, MRR@10)")
    ev.add_argument("--catalogue", type=Path, required=True)
    ev.add_argument("--queries", type=Path, required=True, help="exactly these queries are scored")
    ev.add_argument("--qrels", type=Path, required=True)
    ev.add_argument(
        "--mode",
        choices=(*MODES, ALL),
        default=DEFAULT_MODE,
        help=f"how to search (default {DEFAULT_MODE}, what serving does); all: the four on one index",
    )
    ev.add_argument("--report", type=Path, metavar="DIR", help="write DIR/report.md and its charts")
    ev.add_argument("--rebuild", action="store_true", help="build a fresh index even if one matches")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    es = sub.add_parser(
        "eval-similar",
        help="score similar items where relevance is shared attributes (precision@10, nDCG@10)",
    )
    es.add_argument("--catalogue", type=Path, required=True)
    es.add_argument(
        "--same",
        required=True,
        metavar="FIELD[,FIELD]",
        help="fields a relevant neighbour shares: category (the leaf), category[0], brand, or an attribute",
    )
    es.add_argument("--grade2", metavar="FIELD", help="a neighbour that also shares this field is grade 2")
    es.add_argument("--sample", type=int, default=1000, help="products sampled (default 1000)")
    es.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    es.add_argument("--report", type=Path, metavar="DIR", help="write DIR/report.md and its chart")
    es.add_argument("--rebuild", action="store_true", help="build a fresh index even if one matches")
    es.add_argument("--json", action="store_true")
    es.set_defaults(func=cmd_eval_similar)

    ft = sub.add_parser(
        "finetune",
        help="fine-tune the model on a catalogue (LoRA, contrastive) into a new model directory",
    )
    ft.add_argument("--catalogue", type=Path, required=True)
    ft.add_argument("--queries", type=Path, help="judged or logged queries (with --qrels)")
    ft.add_argument("--qrels", type=Path, help="query_id, product_id, grade (judgements or a click log)")
    ft.add_argument(
        "--similar-same",
        metavar="FIELD[,FIELD]",
        help="similar-items pairs: products sharing these fields (as eval-similar --same names them)",
    )
    ft.add_argument("--out", type=Path, required=True, help="the model directory to write")
    ft.add_argument("--steps", type=int, help="training steps at most (default 150)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    ft.add_argument(
        "--config", type=Path, metavar="JSON", help="a JSON file of further knobs (FinetuneConfig)"
    )
    ft.add_argument("--force", action="store_true", help="replace --out if it exists")
    ft.add_argument("--json", action="store_true", help="print finetune.json on stdout")
    ft.set_defaults(func=cmd_finetune)

    audit = sub.add_parser(
        "audit",
        help="audit a published version: duplicates, misfiled products, contradictions, price outliers",
    )
    audit.add_argument("--version", help="the index version (default: the published one)")
    audit.add_argument(
        "--report", type=Path, metavar="DIR", help="also write the report (markdown, CSV, PNG) to DIR"
    )
    audit.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    audit.set_defaults(func=cmd_audit)
    return parser


def _result_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=10, help="number of results (1..100)")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="category=A>B, brand=X, price_min=N, price_max=N, in_stock=true, attr.NAME=V",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _progress_bar(description: str, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=description, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.errors import InvalidRequestError
    from recsys.factories import load_template, make_encoder

    catalogue = args.catalogue or settings.catalogue_path
    if catalogue is None:
        raise InvalidRequestError("give --catalogue PATH or set RECSYS_CATALOGUE_PATH", param="catalogue")
    if args.run_async:
        from recsys.build.jobs import make_control
        from recsys.build.runner import start_reindex

        started = start_reindex(settings, make_control(settings), _celery_runner(settings), catalogue)
        print(started["task_id"])
        print(f"queued; follow it with `recsys index status {started['task_id']}`", file=sys.stderr)
        return 0
    result = _build(catalogue, settings, load_template(settings), make_encoder(settings))
    for error in result.errors:
        print(f"recsys: skipped {catalogue} {error}", file=sys.stderr)
    counts = result.manifest.counts
    print(
        f"published {result.version}: {counts.products} products indexed, {counts.rejected} rejected, "
        f"{result.manifest.build_seconds}s"
    )
    return 0


def _celery_runner(settings: Settings) -> Any:
    """The workers' job runner: the CLI is an edge, so it may name the Celery one."""
    from recsys.errors import InvalidRequestError

    if not settings.broker_url:
        raise InvalidRequestError(
            "--async needs RECSYS_BROKER_URL (e.g. redis://127.0.0.1:6379/0)", param="async"
        )
    from workers.runner import CeleryRunner

    return CeleryRunner.from_settings(settings)


def _build(catalogue: Path, settings: Settings, template: Any, encoder: Any) -> Any:
    from recsys.build.pipeline import build_index

    bar = _progress_bar("embedding shards", unit="shard")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        return build_index(
            catalogue,
            settings=settings,
            encoder=encoder,
            template=template,
            progress=progress,
            phase=lambda text: bar.set_postfix_str(text),
        )
    finally:
        bar.close()


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.build.jobs import make_control
    from recsys.build.pipeline import job_status

    job = job_status(make_control(settings), args.task_id)
    if args.json:
        print(job.model_dump_json())
        return 0
    line = (
        f"{job.id}  {job.status}  phase {job.phase}  shards {job.shards_done}/{job.shards_total}  "
        f"{job.products} products  {job.embedded} texts embedded"
    )
    if job.version:
        line += f"  published {job.version}"
    if job.error:
        line += f"  error: {job.error}"
    print(line)
    return 0 if job.status != "failed" else EXIT_ERROR


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.build.jobs import make_control
    from recsys.build.pipeline import cancel_job
    from recsys.build.runner import cancel_reindex

    control = make_control(settings)
    if settings.broker_url:  # also drops the job's queued tasks
        job = cancel_reindex(settings, control, _celery_runner(settings), args.task_id)
    else:
        job = cancel_job(settings, control, args.task_id)
    print(f"{job.id}  {job.status}")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.index.store import IndexStore

    store = IndexStore(settings.index_dir)
    current = store.current()
    rows = []
    for version in store.versions():
        manifest = store.manifest(version)
        rows.append(
            {
                "version": version,
                "published": version == current,
                "built_at": manifest.built_at,
                "products": manifest.counts.products,
                "model": manifest.model_name,
            }
        )
    if args.json:
        print(json.dumps({"versions": rows, "current": current}))
    elif not rows:
        print(f"no index versions under {store.root}")
    for row in rows if not args.json else []:
        mark = "*" if row["published"] else " "
        print(f"{mark} {row['version']}  {row['built_at']}  {row['products']} products  {row['model']}")
    return 0


def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.build.jobs import make_control
    from recsys.build.runner import ThreadRunner, resume_orphans
    from recsys.factories import load_template, make_encoder

    control = make_control(settings)
    if settings.broker_url:
        runner = _celery_runner(settings)
    else:  # no workers: the work runs here, and the command waits for it
        runner = ThreadRunner(
            settings, control, lambda: (make_encoder(settings), load_template(settings)), True
        )
    resumed = resume_orphans(settings, control, runner)
    print(f"resumed {len(resumed)} job(s)" + (": " + ", ".join(resumed) if resumed else ""))
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.index.loaded import LoadedIndex
    from recsys.index.store import IndexStore

    store = IndexStore(settings.index_dir)
    path = store.path(args.version) if args.version else store.current_path()
    manifest = store.manifest(path.name)
    problems = manifest.problems(path, deep=True)
    if not problems:
        try:
            LoadedIndex(path)  # counts and shapes against the manifest
        except RecsysError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(f"recsys: {path.name}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_ERROR
    checked, products = len(manifest.files), manifest.counts.products
    print(f"ok {path.name}: {checked} files match their checksums, {products} products")
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.index.store import IndexStore

    version = IndexStore(settings.index_dir).rollback(args.to)
    print(f"published {version}")
    return 0


def _print_results(args: argparse.Namespace, results: Any, started: float) -> int:
    understood = getattr(results, "intent", None)
    intent = understood.to_dict() if understood is not None else None
    if args.json:
        out = {
            "results": results.to_list(),
            "index_version": results.version,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if intent is not None:
            out["intent"] = intent
        print(json.dumps(out, ensure_ascii=False))
        return 0
    if understood is not None and (not understood.empty or understood.note or understood.corrections):
        parts = "  ".join(f"{k}={v}" for k, v in understood.to_dict().items() if k != "text")
        print(f"understood: {parts}  (searched {understood.text!r})")
    for rank, item in enumerate(results.to_list(), start=1 + args.offset):
        extras = "  ".join(str(item[key]) for key in ("brand", "price") if key in item)
        print(f"{rank:3d}. {item['score']:.3f}  {item['id']}  {item['title']}  {extras}".rstrip())
    return 0


def _filters(args: argparse.Namespace) -> dict[str, str]:
    from recsys.errors import InvalidRequestError

    raw: dict[str, str] = {}
    for item in args.filter:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidRequestError(f"--filter {item!r} must be KEY=VALUE", param="filter")
        raw[key.strip()] = value
    return raw


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.factories import make_engine
    from recsys.query.requests import SearchParams, check

    raw = {"q": args.query, "k": args.k, "offset": args.offset, "intent": args.intent, **_filters(args)}
    params = check(SearchParams, raw)
    engine = make_engine(settings)
    started = time.perf_counter()
    understood = engine.understand(params.q) if params.intent == "on" else None
    results = engine.search(params.q, params.k, params.offset, params.filters, intent=understood)
    return _print_results(args, results, started)


def cmd_similar(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.factories import make_engine
    from recsys.query.requests import SimilarParams, check

    params = check(SimilarParams, {"k": args.k, "offset": args.offset, **_filters(args)})
    engine = make_engine(settings)
    started = time.perf_counter()
    results = engine.similar(args.product_id, params.k, params.offset, params.filters)
    return _print_results(args, results, started)


def cmd_recommend(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.factories import make_engine
    from recsys.query.requests import RecommendBody, check

    body = check(
        RecommendBody,
        {
            "positive": args.positive,
            "negative": args.negative,
            "k": args.k,
            "offset": args.offset,
            "filters": _filters(args),
        },
    )
    engine = make_engine(settings)
    started = time.perf_counter()
    results = engine.recommend(body.positive, body.negative, body.k, body.offset, body.filters.filters)
    return _print_results(args, results, started)


def _say(text: str) -> None:
    print(f"recsys: {text}", file=sys.stderr)


def _eval_progress(description: str, unit: str) -> tuple[Any, Any]:
    bar = _progress_bar(description, unit=unit)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return bar, progress


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.evaluation.commands import evaluate_search, score_lines, scores_json
    from recsys.evaluation.modes import parse_modes
    from recsys.factories import load_template, make_encoder

    modes = parse_modes(args.mode)
    encoder = make_encoder(settings)
    template = load_template(settings)
    bar, progress = _eval_progress(f"querying ({', '.join(modes)})", unit="query")
    try:
        result = evaluate_search(
            args.catalogue,
            args.queries,
            args.qrels,
            settings=settings,
            encoder=encoder,
            template=template,
            build=lambda path, here: _build(path, here, template, encoder),
            modes=modes,
            rebuild=args.rebuild,
            report_dir=args.report,
            progress=progress,
            say=_say,
        )
    finally:
        bar.close()
    print(json.dumps(scores_json(result.scores)) if args.json else "\n".join(score_lines(result.scores)))
    return 0


def cmd_eval_similar(args: argparse.Namespace, settings: Settings) -> int:
    from recsys.evaluation.commands import evaluate_similar_items
    from recsys.evaluation.similar import parse_fields
    from recsys.factories import load_template, make_encoder

    same = parse_fields(args.same)
    encoder = make_encoder(settings)
    template = load_template(settings)
    bar, progress = _eval_progress("similar items", unit="product")
    try:
        result = evaluate_similar_items(
            args.catalogue,
            settings=settings,
            encoder=encoder,
            template=template,
            build=lambda path, here: _build(path, here, template, encoder),
            same=same,
            grade2=args.grade2,
            sample=args.sample,
            seed=args.seed,
            rebuild=args.rebuild,
            report_dir=args.report,
            progress=progress,
            say=_say,
        )
    finally:
        bar.close()
    scores = result.scores.to_dict()
    print(json.dumps(scores) if args.json else "  ".join(f"{name} {value}" for name, value in scores.items()))
    return 0


def cmd_finetune(args: argparse.Namespace, settings: Settings) -> int:
    """The same function the ``recsys.finetune`` task runs, with a progress bar (loss, validation)."""
    from pydantic import ValidationError

    from recsys.build.jobs import make_control
    from recsys.errors import InvalidRequestError
    from recsys.evaluation.similar import parse_fields
    from recsys.factories import load_template
    from recsys.finetune import FinetuneConfig, FinetuneData
    from recsys.finetune.jobs import run_finetune_job, start_finetune_job
    from recsys.finetune.run import kept_score

    knobs: dict[str, Any] = json.loads(args.config.read_text(encoding="utf-8")) if args.config else {}
    knobs.update(seed=args.seed, device=args.device)
    if args.steps is not None:
        knobs["steps"] = args.steps
    try:
        config = FinetuneConfig(**knobs)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"])
        raise InvalidRequestError(f"{name}: {error['msg']}", param=name) from None
    same = parse_fields(args.similar_same) if args.similar_same else ()
    data = FinetuneData(args.catalogue, args.queries, args.qrels, same)
    data.check()
    control = make_control(settings)
    job_id = start_finetune_job(control, data, args.out)
    bar = _progress_bar("fine-tuning", unit="step")

    def progress(report: Any) -> None:
        bar.total = report.steps
        bar.update(report.step - bar.n)
        postfix = f"loss {report.loss:.3f}"
        if report.validation is not None:
            postfix += f" val nDCG@10 {report.validation:.4f} (best {report.best:.4f})"
        bar.set_postfix_str(postfix)

    try:
        result = run_finetune_job(
            settings,
            control,
            job_id,
            data,
            args.out,
            template=load_template(settings),
            config=config,
            overwrite=args.force,
            progress=progress,
            phase=lambda text: bar.set_description_str(text),
        )
    finally:
        bar.close()
    record = result.record
    if args.json:
        print(record.model_dump_json())
        return 0
    training = record.training
    history = record.validation
    base, best = kept_score(history, 0), kept_score(history, training["best_step"])
    line = (
        f"wrote {result.out} (model identity {result.identity}): {training['steps']} steps "
        f"({training['stopped']}), {training['seconds']['total']:.0f}s on {training['device']}"
    )
    if base is not None and best is not None:
        line += f"; validation nDCG@10 {base:.4f} -> {best:.4f} (step {training['best_step']})"
    print(line)
    if not training["improved"]:
        print(
            "recsys: the fine-tune did not beat the base model on the held-out training queries; "
            "the directory holds the base weights",
            file=sys.stderr,
        )
    print(f"serve it with RECSYS_MODEL_DIR={result.out} (then rebuild the index)", file=sys.stderr)
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """The same function the ``recsys.audit`` task runs: audit, store beside the version, report."""
    from recsys.audit import run_audit

    result, stored = run_audit(settings, args.version)
    if args.report is not None:
        args.report.mkdir(parents=True, exist_ok=True)
        for path in (stored / "report").iterdir():
            (args.report / path.name).write_bytes(path.read_bytes())
    if args.json:
        out = result.to_dict()
        print(
            json.dumps({k: out[k] for k in ("version", "findings", "counts", "clusters")}, ensure_ascii=False)
        )
        return 0
    counts = "  ".join(f"{kind} {n}" for kind, n in result.counts.items())
    print(f"audited {result.version}: {result.products} products in {result.seconds['total']:.1f}s  {counts}")
    for finding in result.findings[:10]:
        print(f"  {finding.score:.3f}  {finding.kind:<13}  {' '.join(finding.ids[:4])}")
    print(f"stored in {stored}" + (f"; report in {args.report}" if args.report else ""), file=sys.stderr)
    return 0
