"""A fine-tune as a job: its progress in a :class:`~recsys.build.jobs.JobRecord` (``kind="finetune"``),
kept where reindex jobs keep theirs (Redis or the data dir), so ``recsys index status JOB`` and
``GET /v1/reindex/JOB`` show it: ``phase`` says what it does (pairs, mining, training with the loss
and the validation nDCG@10, writing), ``shards_done``/``shards_total`` count training steps,
``products`` the catalogue's products and ``version`` the model directory written.

One fine-tune per output directory at a time: a lock on the directory, renewed by the same heartbeat a
reindex step uses. A fine-tune whose worker dies is not resumed (its record says so once an orphan
sweep finds it); the cancel flag (``recsys index cancel JOB``) stops it at the next step.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

from recsys.build import pipeline
from recsys.build.jobs import Control, JobRecord
from recsys.errors import BuildError
from recsys.finetune.config import FinetuneConfig
from recsys.finetune.run import FinetuneData, FinetuneResult, Phase, finetune
from recsys.finetune.train import Progress, StepReport
from recsys.model.templates import Template
from recsys.settings import Settings

KIND = "finetune"
UPDATE_EVERY_S = 1.0  # the record is written at most this often while training


class FinetuneCancelled(pipeline.Cancelled):
    """The job's cancel flag was seen; nothing is written."""


def lock_key(out: Path | str) -> str:
    return "finetune-" + hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:16]


class _Heartbeat(pipeline.Heartbeat):
    """The reindex heartbeat, renewing the output directory's lock instead of a catalogue's."""

    def __init__(self, control: Control, job: JobRecord, key: str) -> None:
        super().__init__(control, job)
        self.key = key

    def beat(self) -> None:
        holder = self.control.acquire(self.key, self.job.id, pipeline.LOCK_TTL_S)
        if holder is not None:
            self.lost = holder
            return
        self.control.update_job(self.job.id, heartbeat_at=time.time())


def start_finetune_job(
    control: Control, data: FinetuneData, out: Path | str, job_id: str | None = None
) -> str:
    """Take the output directory's lock and create the job record; raises :class:`BuildError` if held."""
    job_id = job_id or uuid.uuid4().hex
    holder = control.acquire(lock_key(out), job_id, pipeline.LOCK_TTL_S)
    if holder is not None:
        raise BuildError(f"a fine-tune into {Path(out).resolve()} is already running: job {holder}")
    now = time.time()
    control.create_job(
        JobRecord(
            id=job_id,
            kind=KIND,
            catalogue=str(Path(data.catalogue).resolve()),
            shard_size=0,
            created_at=now,
            updated_at=now,
        )
    )
    return job_id


def run_finetune_job(
    settings: Settings,
    control: Control,
    job_id: str,
    data: FinetuneData,
    out: Path | str,
    *,
    template: Template,
    config: FinetuneConfig | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    phase: Phase | None = None,
) -> FinetuneResult:
    """Run a started fine-tune job in this process, recording its progress; the CLI and the task run it."""
    record = control.job(job_id)
    if record is None:
        raise BuildError(f"no fine-tune job {job_id!r} on record")
    key = lock_key(out)
    last = [0.0]

    def on_phase(text: str) -> None:
        control.update_job(job_id, status="running", phase=text, updated_at=time.time())
        _check(control, job_id)
        if phase is not None:
            phase(text)

    def on_step(report: StepReport) -> None:
        if progress is not None:
            progress(report)
        if time.monotonic() - last[0] < UPDATE_EVERY_S and report.step != report.steps:
            return
        last[0] = time.monotonic()
        text = f"training: loss {report.loss:.3f}"
        if report.validation is not None:
            text += f", validation nDCG@10 {report.validation:.4f} (best {report.best:.4f})"
        control.update_job(
            job_id,
            phase=text,
            shards_total=report.steps,
            shards_done=report.step,
            updated_at=time.time(),
        )
        _check(control, job_id)

    try:
        with _Heartbeat(control, record, key) as heartbeat:
            heartbeat.check()
            result = finetune(
                data,
                Path(out),
                settings=settings,
                template=template,
                config=config,
                progress=on_step,
                phase=on_phase,
                overwrite=overwrite,
            )
    except BaseException as exc:
        current = control.job(job_id)
        if current is not None and not current.finished:
            message = f"{type(exc).__name__}: {exc}"
            control.update_job(job_id, status="failed", phase="failed", error=message, updated_at=time.time())
        raise
    finally:
        control.release(key, job_id)
    training = result.record.training
    done = f"done: {training['steps']} steps, best at step {training['best_step']} ({training['stopped']})"
    control.update_job(
        job_id,
        status="succeeded",
        phase=done,
        products=result.record.data["catalogue"]["products"],
        rejected=result.record.data["catalogue"]["rejected"],
        version=str(result.out),
        updated_at=time.time(),
    )
    return result


def _check(control: Control, job_id: str) -> None:
    record = control.job(job_id)
    if record is None or record.cancel:
        raise FinetuneCancelled(job_id)
