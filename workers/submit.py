"""Starting and cancelling reindex jobs on the workers: what ``recsys index build --async``, the API and
the nightly task call. The lock is taken here, before anything is queued, so a second request is told
the running job's id at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery

from recsys import reindex
from recsys.control import make_control
from recsys.errors import InvalidRequestError
from recsys.settings import Settings


def submit(
    settings: Settings, catalogue: Path | str | None = None, *, app: Celery | None = None
) -> dict[str, Any]:
    """Queue a reindex of ``catalogue`` (default RECSYS_CATALOGUE_PATH); returns ``{"task_id", ...}``.
    Raises :class:`~recsys.errors.ReindexRunningError` (with the running job's id) if one is running."""
    path = catalogue or settings.catalogue_path
    if path is None:
        raise InvalidRequestError(
            "no catalogue given and RECSYS_CATALOGUE_PATH is not set", param="catalogue"
        )
    if app is None:
        from workers.app import create_celery

        app = create_celery(settings)
    control = make_control(settings)
    job_id = reindex.start_job(settings, control, path)
    try:
        app.send_task("recsys.plan", args=[job_id], task_id=job_id)
    except Exception as exc:
        reindex.fail(settings, control, job_id, exc)
        raise
    return {"task_id": job_id, "status": "queued", "catalogue": str(Path(path).resolve())}


def cancel(settings: Settings, job_id: str, *, app: Celery | None = None) -> dict[str, Any]:
    """Flag the job cancelled (the final step checks it before publishing) and revoke its tasks."""
    from workers.tasks import finish_task_id, shard_task_id

    if app is None:
        from workers.app import create_celery

        app = create_celery(settings)
    status = reindex.cancel_job(settings, make_control(settings), job_id)
    ids = [job_id, finish_task_id(job_id)] + [shard_task_id(job_id, i) for i in range(status["shards_total"])]
    app.control.revoke(ids)
    return status
