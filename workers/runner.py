"""The Celery job runner: queues a started reindex job's plan task; the chord does the rest."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from celery import Celery, chord
from kombu.exceptions import OperationalError

from recsys.build.jobs import JobRecord
from recsys.errors import QueueUnavailableError
from recsys.settings import Settings


def finish_task_id(job_id: str) -> str:
    return f"{job_id}-finish"


def shard_task_id(job_id: str, shard: int) -> str:
    return f"{job_id}-shard-{shard}"


class CeleryRunner:
    """Runs jobs on the workers. Task ids derive from the job id, so a job is revoked without bookkeeping."""

    name = "celery"

    def __init__(self, app: Celery) -> None:
        self.app = app

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryRunner:
        from workers.app import create_celery

        return cls(create_celery(settings))

    def launch(self, job_id: str) -> None:
        try:
            # the job record carries the progress: no result to wait on, so no result-store subscription
            self.app.send_task("recsys.plan", args=[job_id], task_id=job_id, ignore_result=True)
        except (OperationalError, OSError) as exc:
            broker = self.app.conf.broker_url
            raise QueueUnavailableError(
                f"the task queue at {_redacted(broker)} does not answer ({exc}); start the broker "
                "(RabbitMQ or Redis, as RECSYS_BROKER_URL says) and the Procfile's worker, or build in "
                "this process with `recsys index build` without --async"
            ) from exc

    def resume(self, job: JobRecord, shards: list[int] | None) -> None:
        """Queue an adopted orphan again: a fresh plan, or a fresh chord of the shards not done."""
        n = job.resumed + 1
        if shards is None:
            self.app.send_task(
                "recsys.plan", args=[job.id], task_id=f"{job.id}-replan-{n}", ignore_result=True
            )
            return
        callback = self.app.signature("recsys.finish", args=[job.id]).set(
            task_id=f"{finish_task_id(job.id)}-r{n}"
        )
        header = [
            self.app.signature("recsys.embed_shard", args=[job.id, s]).set(
                task_id=f"{shard_task_id(job.id, s)}-r{n}"
            )
            for s in shards
        ]
        if header:
            chord(header, callback).apply_async()
        else:
            callback.apply_async()

    def revoke(self, job: JobRecord) -> None:
        ids = [job.id, finish_task_id(job.id)] + [shard_task_id(job.id, i) for i in range(job.shards_total)]
        self.app.control.revoke(ids)


def _redacted(url: str) -> str:
    """A broker URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
