"""The Celery job runner: queues a started reindex job's plan task; the chord does the rest."""

from __future__ import annotations

from celery import Celery

from recsys.build.jobs import JobRecord
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
        self.app.send_task("recsys.plan", args=[job_id], task_id=job_id)

    def revoke(self, job: JobRecord) -> None:
        ids = [job.id, finish_task_id(job.id)] + [shard_task_id(job.id, i) for i in range(job.shards_total)]
        self.app.control.revoke(ids)
