"""The sharded reindex pipeline, independent of who runs it: in-process (:func:`build_index`) or Celery.

A job goes ``start_job`` (take the catalogue's lock, create the record) → ``plan`` (read the catalogue,
fold in the live delta, snapshot the products into the data dir, count shards) → ``embed_shard`` for
every shard, in any order and on any machine (vectors land in the shared embedding cache; a rerun of
a shard is a cache hit) → ``finish`` (assemble the Annoy and BM25 index from the cache, check it,
publish it atomically, carry the delta over). ``fail`` and ``cancel_job`` record why a job stopped and
free the lock; the published index is only ever touched by ``finish``'s final pointer flip.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import json
import math
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recsys.build import BuildResult, Phase, assemble, embed, embedding_cache, publish, render
from recsys.catalogue import Product, RowError, load_catalogue
from recsys.control import Control, make_control
from recsys.delta import DeltaView, carry_over, delta_dir, fold, install_folded
from recsys.encoder import Encoder
from recsys.errors import BuildError, InvalidRequestError, JobNotFoundError, ReindexRunningError
from recsys.settings import Settings
from recsys.store import IndexStore
from recsys.templates import Template, price_bands
from recsys.vectors import annoy_top, exact_top, load_annoy

LOCK_TTL_S = 900  # refreshed by every shard and by the final step; a dead job frees it after this
SMOKE_QUERIES = 5
FINISHED = ("succeeded", "failed", "cancelled")


class Cancelled(Exception):
    """The job's cancel flag was seen; nothing is published."""


def lock_key(catalogue: Path | str) -> str:
    """One reindex at a time per catalogue (by resolved path)."""
    return "reindex-" + hashlib.sha256(str(Path(catalogue).resolve()).encode()).hexdigest()[:16]


def work_dir(settings: Settings, job_id: str) -> Path:
    return settings.data_dir / "reindex" / job_id


def start_job(settings: Settings, control: Control, catalogue: Path | str, job_id: str | None = None) -> str:
    """Take the catalogue's lock and create the job record; raises :class:`ReindexRunningError` if held."""
    job_id = job_id or uuid.uuid4().hex
    catalogue = Path(catalogue).resolve()
    holder = control.acquire(lock_key(catalogue), job_id, LOCK_TTL_S)
    if holder is not None:
        raise ReindexRunningError(holder)
    now = time.time()
    control.create_job(
        job_id,
        {
            "id": job_id,
            "catalogue": str(catalogue),
            "status": "queued",
            "phase": "queued",
            "shards_total": 0,
            "shards_done": 0,
            "embedded": 0,
            "products": 0,
            "created_at": now,
            "updated_at": now,
            "cancel": False,
            "shard_size": settings.shard_size,
        },
    )
    return job_id


def plan(settings: Settings, control: Control, job_id: str) -> int:
    """Snapshot the catalogue with the live delta folded in; returns the number of shards."""
    record = _record(control, job_id)
    _check_cancel(control, job_id)
    _touch(control, job_id, record, status="running", phase="planning")
    loaded = load_catalogue(record["catalogue"])
    store = IndexStore(settings.index_dir)
    base = store.current()
    view = DeltaView.load(delta_dir(settings, base)) if base is not None else DeltaView()
    products, ledger = fold(settings, Path(record["catalogue"]), loaded.products, view)
    if not products:
        raise BuildError(f"{record['catalogue']}: no valid product ({len(loaded.errors)} rejected rows)")
    folder = work_dir(settings, job_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with (folder / "products.jsonl").open("w", encoding="utf-8") as fh:
        for product in products:
            fh.write(json.dumps(product.to_dict(), ensure_ascii=False) + "\n")
    (folder / "folded.json").write_text(json.dumps(ledger))
    (folder / "bands.json").write_text(json.dumps(price_bands(products)))  # shards render with these
    rejected = [[e.line, e.reason, e.product_id] for e in loaded.errors]
    (folder / "rejected.json").write_text(json.dumps(rejected))
    shards = math.ceil(len(products) / _shard_size(settings, record))
    _touch(
        control,
        job_id,
        record,
        phase="embedding",
        shards_total=shards,
        products=len(products),
        rejected=len(loaded.errors),
        base_version=base or "",
        delta_seq=view.seq,
        delta_folded=len(view.touched),
        ledger=len(ledger),
    )
    return shards


def embed_shard(
    settings: Settings, control: Control, encoder: Encoder, template: Template, job_id: str, shard: int
) -> int:
    """Embed one shard's texts into the shared cache (idempotent). Returns how many texts ran the model."""
    record = _record(control, job_id)
    if record.get("cancel") == "1" or record.get("status") in FINISHED:
        return 0
    control.refresh(lock_key(record["catalogue"]), job_id, LOCK_TTL_S)
    size = _shard_size(settings, record)
    part = _snapshot(settings, job_id, shard * size, (shard + 1) * size)
    bands = json.loads((work_dir(settings, job_id) / "bands.json").read_text())
    rendered = render(part, template, bands)
    cache = embedding_cache(settings, encoder)
    _, embedded_search = embed(rendered.search, encoder, cache=cache)
    _, embedded_similar = embed(rendered.similar, encoder, cache=cache)
    embedded = embedded_search + embedded_similar
    control.shard_done(job_id, shard, embedded)
    results = control.shard_results(job_id)
    _touch(control, job_id, record, shards_done=len(results), embedded=sum(results.values()))
    control.refresh(lock_key(record["catalogue"]), job_id, LOCK_TTL_S)
    return embedded


def finish(
    settings: Settings,
    control: Control,
    encoder: Encoder,
    template: Template,
    job_id: str,
    phase: Phase | None = None,
) -> BuildResult | None:
    """Assemble, check and publish the job's index; None if it was cancelled. Frees the lock when done;
    on an exception the caller decides between a retry and :func:`fail`."""
    started = time.time()
    record = _record(control, job_id)
    key = lock_key(record["catalogue"])
    say = _phase(control, job_id, record, phase)
    try:
        _check_cancel(control, job_id)
        control.refresh(key, job_id, LOCK_TTL_S)
        products = _snapshot(settings, job_id)
        errors = [
            RowError(line, reason, pid)
            for line, reason, pid in json.loads((work_dir(settings, job_id) / "rejected.json").read_text())
        ]
        say("assembling")
        rendered = render(products, template)
        cache = embedding_cache(settings, encoder)
        # all cache hits, unless a shard's work was lost: then it is embedded here
        search_vectors, late_search = embed(rendered.search, encoder, cache=cache)
        similar_vectors, late_similar = embed(rendered.similar, encoder, cache=cache)
        embedded = sum(control.shard_results(job_id).values()) + late_search + late_similar
        store = IndexStore(settings.index_dir)
        with store.staging() as staged:
            manifest = assemble(
                staged,
                products,
                rendered,
                search_vectors,
                similar_vectors,
                settings=settings,
                encoder=encoder,
                template=template,
                errors=errors,
                phase=say,
            )
            say("checking")
            check_build(staged, manifest, products, search_vectors, settings)
            _check_cancel(control, job_id)
            control.refresh(key, job_id, LOCK_TTL_S)
            say("publishing")
            manifest["counts"]["embedded"] = embedded
            manifest["counts"]["delta_folded"] = int(record.get("delta_folded") or 0)
            manifest["reindex_job"] = job_id
            manifest["build_seconds"] = round(time.time() - float(record.get("created_at") or started), 2)
            version = publish(store, staged, settings, manifest)
        install_folded(settings, json.loads((work_dir(settings, job_id) / "folded.json").read_text()))
        if record.get("base_version"):
            carry_over(settings, record["base_version"], version, int(record.get("delta_seq") or 0))
    except Cancelled:
        _touch(control, job_id, record, status="cancelled", phase="cancelled")
        _cleanup(settings, control, job_id, key)
        return None
    _touch(control, job_id, record, status="succeeded", phase="done", version=version, embedded=embedded)
    _cleanup(settings, control, job_id, key)
    return BuildResult(version, store.path(version), manifest, errors)


def fail(settings: Settings, control: Control, job_id: str, error: BaseException | str) -> None:
    """Record why a job failed and free its lock; the published index was never touched.

    A job that already ended (cancelled, say, with a shard still running) keeps its status.
    """
    record = control.job(job_id)
    if record is None or record.get("status") in FINISHED:
        return
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    _touch(control, job_id, record, status="failed", phase="failed", error=message)
    _cleanup(settings, control, job_id, lock_key(record["catalogue"]))


def cancel_job(settings: Settings, control: Control, job_id: str) -> dict[str, Any]:
    """Set the cancel flag (checked before anything is published) and free the lock."""
    record = _record(control, job_id)
    if record.get("status") not in FINISHED:
        _touch(control, job_id, record, cancel=True, status="cancelled", phase="cancelled")
        _cleanup(settings, control, job_id, lock_key(record["catalogue"]))
    return job_status(settings, job_id, control)


def job_status(
    settings: Settings, job_id: str | None = None, control: Control | None = None
) -> dict[str, Any]:
    """The job's record (the latest job when no id is given), typed for JSON."""
    control = control or make_control(settings)
    job_id = job_id or control.latest_job()
    record = control.job(job_id) if job_id else None
    if record is None:
        raise JobNotFoundError(
            f"no reindex job {job_id!r} on record" if job_id else "no reindex job on record"
        )
    out: dict[str, Any] = dict(record)
    for name in (
        "shards_total",
        "shards_done",
        "embedded",
        "products",
        "rejected",
        "delta_seq",
        "delta_folded",
    ):
        if out.get(name, "") != "":
            out[name] = int(out[name])
    for name in ("created_at", "updated_at"):
        if out.get(name):
            out[name] = float(out[name])
    out["cancel"] = out.get("cancel") == "1"
    return out


def start_reindex(settings: Settings, catalogue: Path | str | None = None) -> dict[str, Any]:
    """Start a reindex and return at once with ``{"task_id": ...}`` (what the API calls).

    With a broker the workers run it (``workers.submit``, imported only then: the core never imports
    Celery); without one it runs in a background thread of this process. Raises
    :class:`~recsys.errors.ReindexRunningError`, naming the running job, if one is already running.
    """
    path = catalogue or settings.catalogue_path
    if path is None:
        raise InvalidRequestError(
            "no catalogue given and RECSYS_CATALOGUE_PATH is not set", param="catalogue"
        )
    if settings.broker_url:
        started: dict[str, Any] = importlib.import_module("workers.submit").submit(settings, path)
        return started
    control = make_control(settings)
    job_id = start_job(settings, control, path)
    thread = threading.Thread(
        target=_run_in_background, args=(settings, control, job_id), daemon=True, name=f"reindex-{job_id[:8]}"
    )
    thread.start()
    return {"task_id": job_id, "status": "queued", "catalogue": str(Path(path).resolve())}


def _run_in_background(settings: Settings, control: Control, job_id: str) -> None:
    from recsys.runtime import load_template, make_encoder

    try:
        encoder, template = make_encoder(settings), load_template(settings)
    except Exception as exc:
        fail(settings, control, job_id, exc)
        return
    with contextlib.suppress(Exception):  # run_job records it on the job; a thread has no one to raise to
        run_job(settings, control, encoder, template, job_id)


def build_index(
    catalogue: Path | str,
    *,
    settings: Settings,
    encoder: Encoder,
    template: Template,
    progress: Callable[[int, int], None] | None = None,
    phase: Phase | None = None,
    control: Control | None = None,
) -> BuildResult:
    """The whole pipeline in this process: what ``recsys index build`` runs. Same functions as the workers."""
    control = control or make_control(settings)
    job_id = start_job(settings, control, catalogue)
    return run_job(settings, control, encoder, template, job_id, progress, phase)


def run_job(
    settings: Settings,
    control: Control,
    encoder: Encoder,
    template: Template,
    job_id: str,
    progress: Callable[[int, int], None] | None = None,
    phase: Phase | None = None,
) -> BuildResult:
    """Plan, embed every shard and finish a started job, in this process."""
    try:
        shards = plan(settings, control, job_id)
        for shard in range(shards):
            embed_shard(settings, control, encoder, template, job_id, shard)
            if progress is not None:
                progress(shard + 1, shards)
        result = finish(settings, control, encoder, template, job_id, phase)
    except BaseException as exc:
        fail(settings, control, job_id, exc)
        raise
    if result is None:
        raise BuildError(f"reindex job {job_id} was cancelled; nothing was published")
    return result


def check_build(
    staged: Path, manifest: dict[str, Any], products: list[Product], vectors: np.ndarray, settings: Settings
) -> None:
    """Refuse to publish a build whose counts, recall or smoke queries are off."""
    if manifest["counts"]["products"] != len(products):
        raise BuildError(f"built {manifest['counts']['products']} products, expected {len(products)}")
    for name, tuning in manifest["tuning"].items():
        if tuning["search_k"] >= 0 and tuning["recall_at_10"] < settings.target_recall - 0.02:
            raise BuildError(f"{name} recall@10 {tuning['recall_at_10']} is below {settings.target_recall}")
    index = load_annoy(staged / "search.annoy", int(manifest["dim"]))
    try:
        search_k = int(manifest["tuning"]["search"]["search_k"])
        rng = np.random.default_rng(11)
        for row in rng.choice(len(products), size=min(SMOKE_QUERIES, len(products)), replace=False):
            query = np.asarray(vectors[row], dtype=np.float32)
            _, scores = exact_top(vectors, query, 1) if search_k < 0 else annoy_top(index, query, 1, search_k)
            if not len(scores) or scores[0] < 0.99:
                raise BuildError(f"smoke query for {products[row].id!r} does not find itself")
    finally:
        index.unload()


def _shard_size(settings: Settings, record: dict[str, str]) -> int:
    """The requester's shard size, so every worker cuts the same shards whatever its own settings."""
    return int(record.get("shard_size") or settings.shard_size)


def _record(control: Control, job_id: str) -> dict[str, str]:
    record = control.job(job_id)
    if record is None:
        raise JobNotFoundError(f"no reindex job {job_id!r} on record")
    return record


def _touch(control: Control, job_id: str, record: dict[str, str], **fields: Any) -> None:
    fields["updated_at"] = time.time()
    control.update_job(job_id, **fields)
    record.update({k: str(v) for k, v in fields.items()})


def _phase(control: Control, job_id: str, record: dict[str, str], phase: Phase | None) -> Phase:
    def say(text: str) -> None:
        _touch(control, job_id, record, phase=text)
        if phase is not None:
            phase(text)

    return say


def _check_cancel(control: Control, job_id: str) -> None:
    record = control.job(job_id)
    if record is None or record.get("cancel") == "1":
        raise Cancelled(job_id)


def _snapshot(settings: Settings, job_id: str, start: int = 0, stop: int | None = None) -> list[Product]:
    """The job's products (rows ``start:stop`` of them), as planned."""
    path = work_dir(settings, job_id) / "products.jsonl"
    if not path.is_file():
        raise BuildError(f"reindex job {job_id} has no product snapshot at {path}; was it planned?")
    with path.open(encoding="utf-8") as fh:
        return [Product.from_dict(json.loads(line)) for line in itertools.islice(fh, start, stop)]


def _cleanup(settings: Settings, control: Control, job_id: str, key: str) -> None:
    control.release(key, job_id)
    shutil.rmtree(work_dir(settings, job_id), ignore_errors=True)
