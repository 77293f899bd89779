"""The sharded reindex pipeline, independent of who runs it (see :mod:`recsys.build.runner`).

A job goes ``start_job`` (take the catalogue's lock, create the record) → ``plan`` (read the catalogue,
fold in the live delta, snapshot the products into the data dir, count shards) → ``embed_shard`` for
every shard, in any order and on any machine (vectors land in the shared embedding cache; a rerun of
a shard is a cache hit) → ``finish`` (assemble the Annoy and BM25 index from the cache, check it,
publish it atomically, carry the delta over). ``fail`` and ``cancel_job`` record why a job stopped and
free the lock; the published index is only ever touched by ``finish``'s final pointer flip.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.build.assemble import BuildResult, Phase, assemble, check_build, publish
from recsys.build.jobs import Control, JobRecord, make_control
from recsys.build.ledger import carry_over, fold, install_folded
from recsys.build.texts import embed_rendered, embedding_cache, render
from recsys.catalogue import Product, RowError, load_catalogue, price_bands
from recsys.errors import BuildError, JobNotFoundError, ReindexRunningError
from recsys.index import deltalog
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.deltaview import DeltaView
from recsys.settings import Settings

log = logging.getLogger(__name__)

LOCK_TTL_S = 15  # a job's lock lives this long without a heartbeat: a dead runner frees it quickly
HEARTBEAT_S = 3  # how often a running step renews the lock and stamps the record
ORPHAN_AFTER_S = 2 * LOCK_TTL_S  # a job silent this long, with its lock gone, is an orphan
ORPHAN_SWEEP_S = 15  # how often workers (and beat) look for orphans


class Cancelled(Exception):
    """The job's cancel flag was seen; nothing is published."""


class Superseded(Exception):
    """Another job took this job's lock (its runner had died and a new reindex was asked for)."""


class Finishing(Exception):
    """The job has ended, or another process is finishing it: nothing to do here."""


class Heartbeat:
    """While a step of a job runs, renew the job's lock (and any claim) every HEARTBEAT_S and stamp
    ``heartbeat_at`` on its record. A runner that dies stops beating: the lock expires within
    LOCK_TTL_S, so a new reindex is accepted, and an orphan sweep can pick the job up again."""

    def __init__(self, control: Control, job: JobRecord, claims: tuple[tuple[str, str], ...] = ()) -> None:
        self.control = control
        self.job = job
        self.claims = claims  # (key, token) locks held for the step, such as the finish claim
        self.lost: str | None = None  # the job that holds our lock now, if one took it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job.id[:8]}")

    def beat(self) -> None:
        holder = self.control.acquire(lock_key(self.job.catalogue), self.job.id, LOCK_TTL_S)
        if holder is not None:
            self.lost = holder
            return
        for key, token in self.claims:
            self.control.refresh(key, token, LOCK_TTL_S)
        self.control.update_job(self.job.id, heartbeat_at=time.time())

    def check(self) -> None:
        """Raise :class:`Superseded` if another job holds the lock."""
        if self.lost is not None:
            raise Superseded(self.lost)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.beat()
            except Exception:  # a beat missed (Redis blipped) is retried; a lasting outage expires the lock
                log.warning("reindex %s: heartbeat failed", self.job.id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
        JobRecord(
            id=job_id,
            catalogue=str(catalogue),
            created_at=now,
            updated_at=now,
            shard_size=settings.shard_size,
        )
    )
    return job_id


def plan(settings: Settings, control: Control, job_id: str) -> int:
    """Snapshot the catalogue with the live delta folded in; returns the number of shards."""
    record = _record(control, job_id)
    _check_cancel(control, job_id)
    with Heartbeat(control, record) as heartbeat:
        heartbeat.check()
        return _plan(settings, control, record)


def _plan(settings: Settings, control: Control, record: JobRecord) -> int:
    job_id = record.id
    _touch(control, job_id, status="running", phase="planning")
    loaded = load_catalogue(record.catalogue)
    store = IndexStore(settings.index_dir)
    base = store.current()
    view = DeltaView.load(deltalog.delta_dir(settings.data_dir, base)) if base is not None else DeltaView()
    if not loaded.adds_up:
        raise BuildError(
            f"{record.catalogue}: {loaded.rows} rows read but {len(loaded.products)} products and "
            f"{len(loaded.errors)} rejected rows; refusing to build from a count that does not add up"
        )
    products, ledger = fold(settings.data_dir, Path(record.catalogue), loaded.products, view)
    if not products:
        raise BuildError(f"{record.catalogue}: no valid product ({len(loaded.errors)} rejected rows)")
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
    shards = math.ceil(len(products) / record.shard_size)
    _touch(
        control,
        job_id,
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
    if record.cancel or record.finished:
        return 0
    with Heartbeat(control, record) as heartbeat:
        if heartbeat.lost is not None:  # superseded: a newer job owns the catalogue now
            return 0
        size = record.shard_size
        part = _snapshot(settings, job_id, shard * size, (shard + 1) * size)
        bands = json.loads((work_dir(settings, job_id) / "bands.json").read_text())
        rendered = render(part, template, bands)
        cache = embedding_cache(settings, encoder)
        _, _, embedded = embed_rendered(rendered, encoder, cache=cache)
        control.shard_done(job_id, shard, embedded)
        results = control.shard_results(job_id)
        _touch(control, job_id, shards_done=len(results), embedded=sum(results.values()))
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
    on an exception the caller decides between a retry and :func:`fail`.

    One finisher at a time: a duplicate delivery, or a resumed job's second finish, raises
    :class:`Finishing` while another holds the claim, or once the job has ended.
    """
    claim = (f"finish-{job_id}", uuid.uuid4().hex)
    if control.acquire(claim[0], claim[1], LOCK_TTL_S) is not None:
        raise Finishing(job_id)
    try:
        record = _record(control, job_id)
        if record.status == "cancelled":
            return None
        if record.finished:
            raise Finishing(job_id)
        with Heartbeat(control, record, claims=(claim,)) as heartbeat:
            return _finish(settings, control, encoder, template, record, heartbeat, phase)
    finally:
        control.release(claim[0], claim[1])


def _finish(
    settings: Settings,
    control: Control,
    encoder: Encoder,
    template: Template,
    record: JobRecord,
    heartbeat: Heartbeat,
    phase: Phase | None,
) -> BuildResult | None:
    started = time.time()
    job_id = record.id
    key = lock_key(record.catalogue)
    say = _phase(control, job_id, phase)
    try:
        _check_cancel(control, job_id)
        heartbeat.check()
        products = _snapshot(settings, job_id)
        errors = [
            RowError(line, reason, pid)
            for line, reason, pid in json.loads((work_dir(settings, job_id) / "rejected.json").read_text())
        ]
        say("assembling")
        rendered = render(products, template)
        cache = embedding_cache(settings, encoder)
        # all cache hits, unless a shard's work was lost: then it is embedded here
        search_vectors, similar_vectors, late = embed_rendered(rendered, encoder, cache=cache)
        embedded = sum(control.shard_results(job_id).values()) + late
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
            heartbeat.beat()
            heartbeat.check()
            say("publishing")
            manifest.counts.embedded = embedded
            manifest.counts.delta_folded = record.delta_folded
            manifest.reindex_job = job_id
            manifest.build_seconds = round(time.time() - (record.created_at or started), 2)
            version = publish(store, staged, settings, manifest)
        install_folded(
            settings.data_dir, json.loads((work_dir(settings, job_id) / "folded.json").read_text())
        )
        if record.base_version:
            carry_over(settings.data_dir, store, record.base_version, version, record.delta_seq)
    except Cancelled:
        _touch(control, job_id, status="cancelled", phase="cancelled")
        _cleanup(settings, control, job_id, key)
        return None
    _touch(control, job_id, status="succeeded", phase="done", version=version, embedded=embedded)
    _cleanup(settings, control, job_id, key)
    log.info("reindex %s published %s (%d products)", job_id, version, manifest.counts.products)
    return BuildResult(version, store.path(version), manifest, errors)


def fail(settings: Settings, control: Control, job_id: str, error: BaseException | str) -> None:
    """Record why a job failed and free its lock; the published index was never touched.

    A job that already ended (cancelled, say, with a shard still running) keeps its status.
    """
    record = control.job(job_id)
    if record is None or record.finished:
        return
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    log.warning("reindex %s failed: %s", job_id, message)
    _touch(control, job_id, status="failed", phase="failed", error=message)
    _cleanup(settings, control, job_id, lock_key(record.catalogue))


def cancel_job(settings: Settings, control: Control, job_id: str) -> JobRecord:
    """Set the cancel flag (checked before anything is published) and free the lock."""
    record = _record(control, job_id)
    if not record.finished:
        _touch(control, job_id, cancel=True, status="cancelled", phase="cancelled")
        _cleanup(settings, control, job_id, lock_key(record.catalogue))
    return _record(control, job_id)


def job_status(control: Control, job_id: str | None = None) -> JobRecord:
    """The job's record (the latest job when no id is given)."""
    job_id = job_id or control.latest_job()
    record = control.job(job_id) if job_id else None
    if record is None:
        raise JobNotFoundError(
            f"no reindex job {job_id!r} on record" if job_id else "no reindex job on record"
        )
    return record


def orphans(control: Control, now: float | None = None) -> list[JobRecord]:
    """Jobs not finished whose heartbeat stopped ORPHAN_AFTER_S ago and whose lock is gone."""
    now = time.time() if now is None else now
    found = []
    for job_id in control.active_jobs():
        job = control.job(job_id)
        if job is None or job.finished or now - max(job.heartbeat_at, job.updated_at) < ORPHAN_AFTER_S:
            continue
        if control.holder(lock_key(job.catalogue)) != job_id:
            found.append(job)
    return found


def adopt(settings: Settings, control: Control, job: JobRecord) -> list[int] | None:
    """Take an orphan over: its lock again, and the shards still to embed (None: it must be planned
    again). A job whose catalogue another job has locked meanwhile is recorded as superseded and
    raises :class:`Superseded`."""
    if control.acquire(f"adopt-{job.id}", uuid.uuid4().hex, int(ORPHAN_AFTER_S)) is not None:
        raise Superseded("another sweeper")  # adopted by another sweeper moments ago
    holder = control.acquire(lock_key(job.catalogue), job.id, LOCK_TTL_S)
    if holder is not None:
        fail(settings, control, job.id, f"superseded by job {holder} after its runner stopped")
        raise Superseded(holder)
    planned = job.shards_total > 0 and (work_dir(settings, job.id) / "products.jsonl").is_file()
    control.update_job(job.id, resumed=job.resumed + 1, heartbeat_at=time.time())
    log.warning("reindex %s: its runner stopped; resuming (%s)", job.id, "planned" if planned else "replan")
    if not planned:
        return None
    done = control.shard_results(job.id)
    return [shard for shard in range(job.shards_total) if shard not in done]


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
        try:
            fail(settings, control, job_id, exc)
        except Exception:
            log.exception(
                "reindex %s: could not record its failure; its lock expires within %ds", job_id, LOCK_TTL_S
            )
        raise
    if result is None:
        raise BuildError(f"reindex job {job_id} was cancelled; nothing was published")
    return result


def _record(control: Control, job_id: str) -> JobRecord:
    record = control.job(job_id)
    if record is None:
        raise JobNotFoundError(f"no reindex job {job_id!r} on record")
    return record


def _touch(control: Control, job_id: str, **fields: Any) -> None:
    control.update_job(job_id, updated_at=time.time(), **fields)


def _phase(control: Control, job_id: str, phase: Phase | None) -> Phase:
    def say(text: str) -> None:
        _touch(control, job_id, phase=text)
        if phase is not None:
            phase(text)

    return say


def _check_cancel(control: Control, job_id: str) -> None:
    record = control.job(job_id)
    if record is None or record.cancel:
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
