"""The nightly chain: a reindex's ``recsys.finish`` task queues ``recsys.audit`` for the version it
published, and the audit is stored beside it. Once on an eager Celery app (hash encoder, seconds), once
on a real worker process with a Redis broker (the real model: the slower tier)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.audit import AuditStore
from recsys.build import pipeline
from recsys.build.jobs import make_control
from recsys.build.runner import start_reindex
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.settings import Settings
from workers import create_celery
from workers.local import WorkerProcess, wait_for
from workers.runner import CeleryRunner

BROKER = "redis://127.0.0.1:6379/3"


def test_finish_task_audits_what_it_published(
    settings: Settings, encoder: Encoder, small_catalogue: Path
) -> None:
    from workers import tasks

    app = create_celery(settings)  # no broker: tasks run eagerly, in this process
    assert app.conf.task_always_eager
    app.context.encoder = encoder  # the hash encoder instead of the model
    control = app.context.control
    job = pipeline.start_job(settings, control, small_catalogue)
    for shard in range(pipeline.plan(settings, control, job)):
        pipeline.embed_shard(settings, control, encoder, app.context.template, job, shard)
    published = tasks.finish_reindex.delay(job).get()
    assert published["status"] == "succeeded"
    version = published["version"]
    assert IndexStore(settings.index_dir).current() == version
    summary = AuditStore(settings.data_dir).summary(version)
    assert summary["version"] == version and summary["products"] == 300
    assert (settings.data_dir / "audits" / version / "report" / "report.md").is_file()
    on_demand = tasks.audit_version.delay().get()  # the task on demand: the published version
    assert on_demand["version"] == version and on_demand["counts"] == summary["counts"]


def _flush() -> None:
    import redis

    client = redis.Redis.from_url(BROKER)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {BROKER}")
    finally:
        client.close()


@pytest.fixture
def worker(settings: Settings) -> Iterator[tuple[Settings, WorkerProcess]]:
    _flush()
    wsettings = settings.replace(broker_url=BROKER, shard_size=100, torch_threads=1)
    process = WorkerProcess(wsettings, settings.data_dir.parent / "worker.log", concurrency=1)
    yield wsettings, process
    process.stop()
    _flush()


@pytest.mark.model  # the worker loads the real model from its settings
def test_nightly_reindex_on_a_real_worker_stores_the_audit(
    worker: tuple[Settings, WorkerProcess], small_catalogue: Path
) -> None:
    settings, process = worker
    control = make_control(settings)
    job = start_reindex(settings, control, CeleryRunner.from_settings(settings), small_catalogue)["task_id"]
    record = wait_for(lambda: (r := pipeline.job_status(control, job)).finished and r, "the reindex", process)
    version = IndexStore(settings.index_dir).current()
    assert getattr(record, "status", None) == "succeeded" and version is not None
    store = AuditStore(settings.data_dir)
    wait_for(lambda: version in store.versions(), "the audit", process)
    assert store.summary(version)["products"] == 300
    assert b"recsys.audit" in process.log.read_bytes()
