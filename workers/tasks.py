"""The tasks: thin, idempotent, retried on transient errors; each calls one core function.

The reindex chord: ``recsys.plan`` (snapshot, count shards) → ``recsys.embed_shard`` × N in parallel
(vectors go to the shared embedding cache, only counts come back) → ``recsys.finish`` (assemble,
check, publish). A job's task ids derive from its job id (``workers.runner``), so it can be revoked
without bookkeeping.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis.exceptions
from celery import Task, chord, shared_task
from celery.signals import worker_ready
from celery.utils.log import get_task_logger

from recsys.audit import run_audit
from recsys.build import pipeline
from recsys.build.runner import resume_orphans as resume
from recsys.build.runner import start_reindex as start
from recsys.errors import ReindexRunningError
from workers.app import WorkerContext
from workers.runner import CeleryRunner, finish_task_id, shard_task_id

log = get_task_logger(__name__)
TRANSIENT = (OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RETRY: dict[str, Any] = {
    "bind": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
    "reject_on_worker_lost": True,
}


class JobTask(Task):
    """A task of a reindex job: when it finally fails (no retry left), the job is recorded as failed."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id:
            ctx = _context(self)
            log.error("reindex %s failed in task %s: %s", job_id, task_id, exc)
            pipeline.fail(ctx.settings, ctx.control, job_id, exc)


def _context(task: Task) -> WorkerContext:
    context: WorkerContext = task.app.context
    return context


@shared_task(name="recsys.reindex", **RETRY)
def start_reindex(self: Task, catalogue: str | None = None) -> dict[str, Any]:
    """The nightly entry: start a reindex of ``catalogue``, or report the one already running."""
    ctx = _context(self)
    try:
        started = start(ctx.settings, ctx.control, CeleryRunner(self.app), catalogue)
    except ReindexRunningError as exc:
        log.info("reindex requested by task %s: job %s is already running", self.request.id, exc.job_id)
        return {"task_id": exc.job_id, "status": "running", "already_running": True}
    log.info("reindex requested by task %s: started job %s", self.request.id, started["task_id"])
    return started


@shared_task(name="recsys.plan", base=JobTask, **RETRY)
def plan_reindex(self: Task, job_id: str) -> dict[str, Any]:
    ctx = _context(self)
    record = ctx.control.job(job_id)
    if record is None or record.cancel or record.finished:
        status = record.status if record is not None else "unknown"
        log.info("reindex %s: %s before planning (task %s)", job_id, status, self.request.id)
        return {"job_id": job_id, "status": status}
    if record.launched:  # a redelivered plan: the chord is running on the snapshot
        log.info("reindex %s: already planned and launched (task %s)", job_id, self.request.id)
        return {"job_id": job_id, "shards": record.shards_total}
    shards = pipeline.plan(ctx.settings, ctx.control, job_id)
    header = [embed_shard.si(job_id, i).set(task_id=shard_task_id(job_id, i)) for i in range(shards)]
    chord(header, finish_reindex.si(job_id).set(task_id=finish_task_id(job_id))).apply_async()
    ctx.control.update_job(job_id, launched=True)
    log.info("reindex %s: planned %d shards (task %s)", job_id, shards, self.request.id)
    return {"job_id": job_id, "shards": shards}


@shared_task(name="recsys.embed_shard", base=JobTask, **RETRY)
def embed_shard(self: Task, job_id: str, shard: int) -> dict[str, Any]:
    ctx = _context(self)
    embedded = pipeline.embed_shard(ctx.settings, ctx.control, ctx.encoder, ctx.template, job_id, shard)
    log.info("reindex %s: shard %d embedded %d texts (task %s)", job_id, shard, embedded, self.request.id)
    return {"job_id": job_id, "shard": shard, "embedded": embedded}


@shared_task(name="recsys.finish", base=JobTask, **RETRY)
def finish_reindex(self: Task, job_id: str) -> dict[str, Any]:
    ctx = _context(self)
    record = ctx.control.job(job_id)
    if record is not None and record.finished:  # a duplicate delivery after the job ended
        return {"job_id": job_id, "status": record.status, "version": record.version}
    try:
        result = pipeline.finish(ctx.settings, ctx.control, ctx.encoder, ctx.template, job_id)
    except pipeline.Finishing:  # a duplicate or a resumed job's second finish: the job is in hand
        log.info("reindex %s: already finished or finishing elsewhere (task %s)", job_id, self.request.id)
        return {"job_id": job_id, "status": "finishing elsewhere"}
    if result is None:
        log.info("reindex %s: cancelled, nothing published (task %s)", job_id, self.request.id)
        return {"job_id": job_id, "status": "cancelled"}
    log.info(
        "reindex %s: published %s, %d products, %d texts embedded (task %s)",
        job_id,
        result.version,
        result.manifest.counts.products,
        result.manifest.counts.embedded,
        self.request.id,
    )
    try:  # the nightly chain: audit what was just published; its failure never fails the reindex
        audit_version.delay(result.version)
    except Exception as exc:
        log.warning("reindex %s: the audit of %s did not start: %s", job_id, result.version, exc)
    return {"job_id": job_id, "status": "succeeded", "version": result.version}


@shared_task(name="recsys.audit", **RETRY)
def audit_version(self: Task, version: str | None = None) -> dict[str, Any]:
    """Audit a published version (default: the current one) and store the audit beside it."""
    result, stored = run_audit(_context(self).settings, version)
    log.info(
        "audit of %s: %s in %.1fs (task %s)",
        result.version,
        result.counts,
        result.seconds["total"],
        self.request.id,
    )
    return {"version": result.version, "counts": result.counts, "stored": str(stored)}


@shared_task(name="recsys.resume_orphans", **RETRY)
def resume_orphans(self: Task) -> dict[str, Any]:
    """Pick up the jobs whose worker died (their heartbeat stopped and their lock expired)."""
    ctx = _context(self)
    resumed = resume(ctx.settings, ctx.control, CeleryRunner(self.app))
    if resumed:
        log.warning("resumed %d orphaned reindex job(s): %s", len(resumed), ", ".join(resumed))
    return {"resumed": resumed}


@worker_ready.connect
def sweep_for_orphans(sender: Any, **kwargs: Any) -> None:
    """A worker that starts looks for jobs a dead worker left, at once and every ORPHAN_SWEEP_S from its
    main process (beat sweeps too; with several sweepers, one adopts each orphan)."""
    app = sender.app
    if app.conf.task_always_eager:
        return

    def sweep() -> None:
        while True:
            try:
                app.send_task("recsys.resume_orphans", ignore_result=True)
            except Exception:  # the broker is away: the next sweep tries again
                log.warning("could not queue the orphan sweep", exc_info=True)
            time.sleep(pipeline.ORPHAN_SWEEP_S)

    threading.Thread(target=sweep, daemon=True, name="orphan-sweep").start()


@shared_task(name="recsys.upsert_products", **RETRY)
def upsert_products(self: Task, products: list[dict[str, Any]]) -> dict[str, Any]:
    result = _context(self).writer.upsert(products).to_dict()
    log.info(
        "upserted %d products into %s delta seq %d (task %s)",
        result["count"],
        result["version"],
        result["seq"],
        self.request.id,
    )
    return result


@shared_task(name="recsys.delete_products", **RETRY)
def delete_products(self: Task, ids: list[str]) -> dict[str, Any]:
    result = _context(self).writer.delete(ids).to_dict()
    log.info(
        "deleted %d products from %s delta seq %d (task %s)",
        result["count"],
        result["version"],
        result["seq"],
        self.request.id,
    )
    return result


@shared_task(name="recsys.finetune", bind=True, acks_late=True, reject_on_worker_lost=True)
def finetune_model(
    self: Task,
    catalogue: str,
    out: str,
    queries: str | None = None,
    qrels: str | None = None,
    similar_same: list[str] | None = None,
    config: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fine-tune the worker's model (RECSYS_MODEL_DIR) into ``out``, with progress in a job record whose
    id is this task's id (``recsys index status TASK_ID``). Not retried: a failure is recorded on the
    job; a redelivered task finds the job done, or running elsewhere, and leaves it be."""
    from pathlib import Path

    from recsys.finetune import FinetuneConfig, FinetuneData
    from recsys.finetune.jobs import run_finetune_job, start_finetune_job

    ctx = _context(self)
    job_id = str(self.request.id)
    record = ctx.control.job(job_id)
    if record is not None and (
        record.finished or time.time() - max(record.heartbeat_at, record.updated_at) < pipeline.ORPHAN_AFTER_S
    ):
        log.info("fine-tune %s: %s already (task redelivered)", job_id, record.status)
        return {"job_id": job_id, "status": record.status, "out": record.version}
    data = FinetuneData(
        Path(catalogue),
        None if queries is None else Path(queries),
        None if qrels is None else Path(qrels),
        tuple(similar_same or ()),
    )
    start_finetune_job(ctx.control, data, out, job_id)
    result = run_finetune_job(
        ctx.settings,
        ctx.control,
        job_id,
        data,
        out,
        template=ctx.template,
        config=FinetuneConfig(**(config or {})),
        overwrite=overwrite,
    )
    training = result.record.training
    log.info(
        "fine-tune %s: wrote %s (identity %s), %d steps, best at %d (task %s)",
        job_id,
        result.out,
        result.identity,
        training["steps"],
        training["best_step"],
        job_id,
    )
    return {
        "job_id": job_id,
        "status": "succeeded",
        "out": str(result.out),
        "identity": result.identity,
        "steps": training["steps"],
        "best_step": training["best_step"],
        "validation": result.record.validation,
    }
