"""Who runs a started reindex job: the small interface the core talks to, and the in-process runner.

The edge that starts a process picks the runner and passes it in, as it passes ``AdminOps`` to the
API: the CLI and the API take Celery's (``workers.runner.CeleryRunner``) when ``RECSYS_BROKER_URL``
is set, else :class:`ThreadRunner`. The core never names the queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from recsys.build.jobs import Control, JobRecord
from recsys.build.pipeline import (
    Superseded,
    adopt,
    cancel_job,
    embed_shard,
    fail,
    finish,
    orphans,
    run_job,
    start_job,
)
from recsys.errors import InvalidRequestError
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import Settings

log = logging.getLogger(__name__)

ModelLoader = Callable[[], tuple[Encoder, Template]]


class JobRunner(Protocol):
    name: str

    def launch(self, job_id: str) -> None:
        """Run a started job (plan, shards, finish) without waiting for it."""
        ...

    def revoke(self, job: JobRecord) -> None:
        """Drop the queued work of a cancelled job (the pipeline also checks the cancel flag)."""
        ...

    def resume(self, job: JobRecord, shards: list[int] | None) -> None:
        """Run an adopted orphan on: embed ``shards`` then finish (``None``: plan it again first)."""
        ...


class ThreadRunner:
    """Runs each job in a background thread of this process: the embedded default, no broker needed.
    ``inline``: in the calling thread instead (a command line that must wait for the work)."""

    name = "thread"

    def __init__(self, settings: Settings, control: Control, load: ModelLoader, inline: bool = False) -> None:
        self.settings = settings
        self.control = control
        self.load = load
        self.inline = inline

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        if self.inline:
            target(*args)
            return
        threading.Thread(target=target, args=args, daemon=True, name=f"reindex-{str(args[0])[:8]}").start()

    def launch(self, job_id: str) -> None:
        self._start(self._run, job_id)

    def revoke(self, job: JobRecord) -> None:
        return None  # the thread sees the cancel flag before it publishes

    def resume(self, job: JobRecord, shards: list[int] | None) -> None:
        if shards is None:
            self.launch(job.id)
            return
        self._start(self._resume, job.id, shards)

    def _resume(self, job_id: str, shards: list[int]) -> None:
        try:
            encoder, template = self.load()
            for shard in shards:
                embed_shard(self.settings, self.control, encoder, template, job_id, shard)
            finish(self.settings, self.control, encoder, template, job_id)
        except Exception as exc:
            log.exception("reindex %s failed while resuming", job_id)
            fail(self.settings, self.control, job_id, exc)

    def _run(self, job_id: str) -> None:
        try:
            encoder, template = self.load()
        except Exception as exc:
            log.exception("reindex %s: the model could not be loaded", job_id)
            fail(self.settings, self.control, job_id, exc)
            return
        try:
            run_job(self.settings, self.control, encoder, template, job_id)
        except Exception:  # run_job recorded it on the job; a thread has no caller to raise to
            log.exception("reindex %s failed in its background thread", job_id)


def start_reindex(
    settings: Settings, control: Control, runner: JobRunner, catalogue: Path | str | None = None
) -> dict[str, Any]:
    """Start a reindex and return at once with ``{"task_id", "status", "catalogue"}``.

    Raises :class:`~recsys.errors.ReindexRunningError`, naming the running job, if one is running.
    """
    path = catalogue or settings.catalogue_path
    if path is None:
        raise InvalidRequestError(
            "no catalogue given and RECSYS_CATALOGUE_PATH is not set", param="catalogue"
        )
    job_id = start_job(settings, control, path)
    try:
        runner.launch(job_id)
    except Exception as exc:
        fail(settings, control, job_id, exc)
        raise
    return {"task_id": job_id, "status": "queued", "catalogue": str(Path(path).resolve())}


def requested_catalogue(settings: Settings, requested: str) -> Path:
    """A catalogue path that came from outside (an API request): only a file under
    ``RECSYS_CATALOGUE_ROOT`` (symbolic links resolved) is ever read."""
    root = settings.catalogue_root
    if root is None:
        raise InvalidRequestError(
            "this server reads no catalogue path from requests: set RECSYS_CATALOGUE_ROOT to allow "
            "catalogues under one directory, or omit catalogue to reindex RECSYS_CATALOGUE_PATH",
            param="catalogue",
        )
    if any(ord(ch) < 32 for ch in requested):
        raise InvalidRequestError("catalogue must not contain control characters", param="catalogue")
    base = root.resolve()
    path = (base / requested).resolve()
    if base != path and base not in path.parents:
        raise InvalidRequestError(
            f"catalogue must be a file under RECSYS_CATALOGUE_ROOT ({base})", param="catalogue"
        )
    if not path.is_file():
        raise InvalidRequestError(
            f"no catalogue file {requested!r} under RECSYS_CATALOGUE_ROOT", param="catalogue"
        )
    return path


def cancel_reindex(settings: Settings, control: Control, runner: JobRunner, job_id: str) -> JobRecord:
    """Flag the job cancelled, free its lock and drop its queued work."""
    record = cancel_job(settings, control, job_id)
    runner.revoke(record)
    return record


def resume_orphans(settings: Settings, control: Control, runner: JobRunner) -> list[str]:
    """Pick up every job whose runner died (heartbeat stopped, lock expired): the shards not done run
    again (the embedding cache makes a redone shard cheap) and the job publishes once. Returns the ids
    resumed. Runs when a worker starts and periodically from beat; `recsys index resume` runs it too."""
    resumed = []
    for job in orphans(control):
        if job.kind != "reindex":  # a fine-tune is not resumed: its runner died, so it failed
            fail(settings, control, job.id, f"its runner stopped; start the {job.kind} again")
            continue
        try:
            shards = adopt(settings, control, job)
        except Superseded:
            continue
        runner.resume(job, shards)
        resumed.append(job.id)
    return resumed
