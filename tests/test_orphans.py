"""A runner that dies mid-job: its heartbeat stops, its lock expires, a new request is accepted, and an
orphan sweep picks the job up again so it publishes once (in-process; tests/test_workers.py kills real
workers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recsys.build import pipeline
from recsys.build.jobs import Control, FileControl
from recsys.build.runner import ThreadRunner, resume_orphans, start_reindex
from recsys.errors import ReindexRunningError
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import Settings
from workers.local import wait_for


@pytest.fixture(autouse=True)
def quick_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "LOCK_TTL_S", 1)
    monkeypatch.setattr(pipeline, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(pipeline, "ORPHAN_AFTER_S", 1.5)


class DeadRunner:
    """A runner whose process dies after planning and one shard: nothing runs the rest."""

    name = "dead"

    def __init__(self, settings: Settings, control: Control, encoder: Encoder, template: Template) -> None:
        self.args = (settings, control, encoder, template)

    def launch(self, job_id: str) -> None:
        settings, control, encoder, template = self.args
        pipeline.plan(settings, control, job_id)
        pipeline.embed_shard(settings, control, encoder, template, job_id, 0)

    def revoke(self, job: object) -> None:
        return None

    def resume(self, job: object, shards: list[int] | None) -> None:
        raise AssertionError("a dead runner resumes nothing")


def test_a_dead_runners_job_is_resumed_and_publishes_once(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    settings = settings.replace(shard_size=100)
    control = FileControl(settings.data_dir / "jobs")
    job = start_reindex(settings, control, DeadRunner(settings, control, encoder, template), small_catalogue)
    job_id = job["task_id"]
    with pytest.raises(ReindexRunningError):  # the lock is fresh: a second request is told the job
        start_reindex(settings, control, DeadRunner(settings, control, encoder, template), small_catalogue)
    assert pipeline.orphans(control) == []  # too soon to call it an orphan
    time.sleep(1.7)
    assert [o.id for o in pipeline.orphans(control)] == [job_id]

    runner = ThreadRunner(settings, control, lambda: (encoder, template))
    assert resume_orphans(settings, control, runner) == [job_id]
    record = wait_for(lambda: (r := control.job(job_id)) is not None and r.finished and r, "the resumed job")
    assert record.status == "succeeded" and record.resumed == 1  # type: ignore[union-attr]
    assert record.shards_done == record.shards_total == 3  # type: ignore[union-attr]
    assert IndexStore(settings.index_dir).versions() == [record.version]  # type: ignore[union-attr]
    with pytest.raises(pipeline.Finishing):  # a late duplicate finish changes nothing
        pipeline.finish(settings, control, encoder, template, job_id)
    assert resume_orphans(settings, control, runner) == []


def test_after_the_lock_expires_a_new_request_is_accepted_and_the_orphan_superseded(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    control = FileControl(settings.data_dir / "jobs")
    first = start_reindex(
        settings, control, DeadRunner(settings, control, encoder, template), small_catalogue
    )
    time.sleep(1.7)
    runner = ThreadRunner(settings, control, lambda: (encoder, template))
    second = start_reindex(settings, control, runner, small_catalogue)  # accepted: the lock expired
    assert resume_orphans(settings, control, runner) == []
    orphan = control.job(first["task_id"])
    assert orphan is not None and orphan.status == "failed" and second["task_id"] in orphan.error
    done = wait_for(lambda: (r := control.job(second["task_id"])) is not None and r.finished and r, "job 2")
    assert done.status == "succeeded"  # type: ignore[union-attr]


def test_a_live_job_keeps_its_lock_beyond_the_ttl(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    control = FileControl(settings.data_dir / "jobs")
    job_id = pipeline.start_job(settings, control, small_catalogue)
    record = control.job(job_id)
    assert record is not None
    with pipeline.Heartbeat(control, record):
        time.sleep(2.5)  # over twice the lock's TTL
        assert control.holder(pipeline.lock_key(small_catalogue)) == job_id
        assert pipeline.orphans(control) == []
    time.sleep(1.2)
    assert control.holder(pipeline.lock_key(small_catalogue)) is None
