"""The Celery edge with a real Redis broker and a real worker process (prefork, two children)."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.build.jobs import JobRecord, make_control
from recsys.build.pipeline import build_index, job_status
from recsys.build.runner import start_reindex
from recsys.errors import ProductNotFoundError, ReindexRunningError, SettingsError
from recsys.index.store import IndexStore
from recsys.model.encoder import TransformerEncoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import Settings
from tests.conftest import five_percent_changed
from workers import create_celery
from workers.app import NIGHTLY, SWEEP
from workers.local import WorkerProcess, wait_for
from workers.runner import CeleryRunner

pytestmark = pytest.mark.model  # worker and server processes load the real model from their settings

BROKER = "redis://127.0.0.1:6379/5"
SHARD = 50


def _flush(url: str = BROKER) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    finally:
        client.close()


@pytest.fixture(scope="module")
def wsettings(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    _flush()
    return base_settings.replace(
        data_dir=tmp_path_factory.mktemp("workers") / "data",
        broker_url=BROKER,
        shard_size=SHARD,
        torch_threads=1,
    )


@pytest.fixture(scope="module")
def worker(wsettings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(wsettings, wsettings.data_dir.parent / "worker.log")
    yield process
    process.stop()
    _flush()


def submit(settings: Settings, catalogue: Path) -> dict:
    """Queue a reindex on the workers, as `recsys index build --async` does."""
    return start_reindex(settings, make_control(settings), CeleryRunner.from_settings(settings), catalogue)


def finished(settings: Settings, job_id: str, worker: WorkerProcess | None = None) -> JobRecord:
    control = make_control(settings)
    status = wait_for(lambda: (s := job_status(control, job_id)).finished and s, f"job {job_id}", worker)
    assert isinstance(status, JobRecord)
    return status


def test_sharded_reindex_publishes_and_a_second_request_is_told_the_running_job(
    wsettings: Settings, worker: WorkerProcess, small_catalogue: Path
) -> None:
    job = submit(wsettings, small_catalogue)["task_id"]
    with pytest.raises(ReindexRunningError) as second:
        submit(wsettings, small_catalogue)
    assert second.value.job_id == job
    status = finished(wsettings, job, worker)
    assert status.status == "succeeded", status
    assert status.shards_total == status.shards_done == 300 // SHARD
    store = IndexStore(wsettings.index_dir)
    assert store.current() == status.version
    assert store.manifest(status.version).counts.products == 300
    assert store.manifest(status.version).reindex_job == job


def test_unchanged_reindex_embeds_nothing_and_5_percent_changed_only_those(
    wsettings: Settings, worker: WorkerProcess, small_catalogue: Path, template: Template, tmp_path: Path
) -> None:
    status = finished(wsettings, submit(wsettings, small_catalogue)["task_id"], worker)
    assert status.status == "succeeded" and status.embedded == 0
    assert IndexStore(wsettings.index_dir).manifest(status.version).counts.embedded == 0

    changed, expected = five_percent_changed(
        small_catalogue, tmp_path / "changed.jsonl", template, start=1, mark=" (worker edition)"
    )
    status = finished(wsettings, submit(wsettings, changed)["task_id"], worker)
    assert status.status == "succeeded"
    assert IndexStore(wsettings.index_dir).manifest(status.version).counts.embedded == expected > 0


def test_upsert_and_delete_tasks_are_served_at_once_and_survive_a_rebuild(
    wsettings: Settings,
    worker: WorkerProcess,
    model_encoder: TransformerEncoder,
    template: Template,
    small_catalogue: Path,
) -> None:
    engine = Engine(wsettings, model_encoder, template)
    app = create_celery(wsettings)
    victim = engine.index.products[5]["id"]
    before = engine.state_key()
    product = {
        "id": "w-1",
        "title": "Quillfeather Nebula Ocarina, Twelve Holes, Ceramic Blue",
        "category": ["Music", "Ocarinas"],
        "price": 31.0,
    }
    assert app.send_task("recsys.upsert_products", args=[[product]]).get(timeout=60)["count"] == 1
    assert app.send_task("recsys.delete_products", args=[[victim]]).get(timeout=60)["count"] == 1
    wait_for(lambda: engine.state_key() != before and len(engine.delta.deleted) == 1, "the delta", worker)
    assert [r["id"] for r in engine.search("quillfeather ocarina", k=1).to_list()] == ["w-1"]
    with pytest.raises(ProductNotFoundError):
        engine.similar(victim)

    status = finished(wsettings, submit(wsettings, small_catalogue)["task_id"], worker)
    assert status.status == "succeeded"
    engine.refresh()
    assert engine.state_key() == status.version
    assert engine.product("w-1")["title"] == product["title"]
    with pytest.raises(ProductNotFoundError):
        engine.product(victim)


def test_a_worker_killed_mid_reindex_leaves_the_old_version_and_the_work_completes(
    wsettings: Settings, worker: WorkerProcess, fixture_catalogue: Path, small_catalogue: Path, tmp_path: Path
) -> None:
    # Products the shared embedding cache has never seen, so the shards do real, slow-enough work.
    lines = fixture_catalogue.read_text().splitlines()[600:700]
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text("\n".join(lines) + "\n")
    settings = wsettings.replace(shard_size=10)  # the job records the requester's shard size
    store = IndexStore(wsettings.index_dir)
    if store.current() is None:  # run alone: publish a version first
        finished(wsettings, submit(wsettings, small_catalogue)["task_id"], worker)
    served = store.current()
    assert served is not None
    job = submit(settings, fresh)["task_id"]
    control = make_control(settings)
    wait_for(lambda: job_status(control, job).phase == "embedding", "embedding to start", worker)
    assert job_status(control, job).shards_done < 10
    killed = worker.kill_children()
    assert killed
    assert store.current() == served and (store.path(served) / "manifest.json").is_file()
    status = finished(settings, job, worker)
    assert status.status == "succeeded", status
    assert store.current() == status.version != served
    assert store.manifest(status.version).counts.products == 100
    assert status.shards_total == 10
    assert b"WorkerLostError" in worker.log.read_bytes() or b"SIGKILL" in worker.log.read_bytes()
    rerun = finished(settings, submit(settings, fresh)["task_id"], worker)  # a rerun is safe and cheap
    assert rerun.status == "succeeded" and rerun.embedded == 0


def test_beat_schedule_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        broker_url=BROKER,
        reindex_cron="15 2 * * 1",
        catalogue_path=tmp_path / "catalogue.jsonl",
    )
    entry = create_celery(settings).conf.beat_schedule[NIGHTLY]
    assert entry["task"] == "recsys.reindex" and entry["args"] == (str(tmp_path / "catalogue.jsonl"),)
    assert entry["schedule"].hour == {2} and entry["schedule"].minute == {15}
    assert entry["schedule"].day_of_week == {1}
    default = create_celery(settings.replace(reindex_cron="0 3 * * *")).conf.beat_schedule[NIGHTLY]
    assert default["schedule"].hour == {3}
    assert set(create_celery(settings.replace(catalogue_path=None)).conf.beat_schedule) == {SWEEP}
    with pytest.raises(SettingsError, match="RECSYS_REINDEX_CRON"):
        create_celery(settings.replace(reindex_cron="every night"))


AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq() -> str:
    """The local RabbitMQ, its default queue emptied; skipped without one, except under CI, where the
    tests that need it must run."""
    import kombu
    from amqp.exceptions import NotFound

    try:
        with kombu.Connection(AMQP) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            with contextlib.suppress(NotFound):  # a fresh RabbitMQ has no queue yet: nothing to empty
                conn.default_channel.queue_purge("celery")
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs RabbitMQ at 127.0.0.1:5672: {exc}")
        pytest.skip(f"no RabbitMQ at 127.0.0.1:5672: {exc}")
    return AMQP


def test_rabbitmq_broker_by_url(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="amqp://guest:guest@127.0.0.1:5672//")
    with pytest.raises(SettingsError, match="RECSYS_RESULT_BACKEND"):
        create_celery(settings)
    app = create_celery(settings.replace(result_backend=BROKER, broker_url=rabbitmq()))
    assert app.conf.broker_url.startswith("amqp://") and app.conf.result_backend == BROKER
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    assert conn.transport_cls in ("amqp", "pyamqp") or "amqp" in str(conn.transport_cls)


def test_a_reindex_runs_through_rabbitmq(wsettings: Settings, small_catalogue: Path, tmp_path: Path) -> None:
    """The same pipeline on an AMQP broker (RabbitMQ), with Redis as the chord's result backend."""
    amqp = rabbitmq()
    settings = wsettings.replace(
        data_dir=tmp_path / "data", broker_url=amqp, result_backend="redis://127.0.0.1:6379/4"
    )
    catalogue = tmp_path / "c.jsonl"
    catalogue.write_text("".join(small_catalogue.read_text().splitlines(keepends=True)[:80]))
    process = WorkerProcess(settings, tmp_path / "worker.log", concurrency=1)
    try:
        job = submit(settings, catalogue)["task_id"]
        status = finished(settings, job, process)
    finally:
        process.stop()
    assert status.status == "succeeded", status
    assert status.shards_total == 2
    assert IndexStore(settings.index_dir).current() == status.version


def _shards_in_hand(log: Path) -> set[str]:
    """Ids of the shard tasks a worker's log says it received and has not finished."""
    text = log.read_text(errors="replace")
    received = set(re.findall(r"recsys\.embed_shard\[([^]]+)\] received", text))
    return received - set(re.findall(r"recsys\.embed_shard\[([^]]+)\] (?:succeeded|raised|retry)", text))


@pytest.mark.slow
def test_a_whole_worker_killed_mid_embedding_publishes_after_a_restart_unasked(
    base_settings: Settings,
    model_encoder: TransformerEncoder,
    template: Template,
    fixture_catalogue: Path,
    small_catalogue: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """SIGKILL the whole worker (process group) while it embeds, on a Redis broker (whose lost task would
    only come back after the visibility timeout): the restarted worker's orphan sweep resumes the job."""
    settings = base_settings.replace(
        data_dir=tmp_path / "data", broker_url="redis://127.0.0.1:6379/3", shard_size=10, torch_threads=1
    )
    _flush("redis://127.0.0.1:6379/3")
    build_index(small_catalogue, settings=settings, encoder=model_encoder, template=template)
    engine = Engine(settings, model_encoder, template)
    served = engine.live().version
    fresh = tmp_path / "fresh.jsonl"  # products no cache has seen: the shards do real work
    fresh.write_text("\n".join(fixture_catalogue.read_text().splitlines()[800:900]) + "\n")
    first = WorkerProcess(settings, tmp_path / "worker-1.log", concurrency=1)
    request.addfinalizer(first.stop)  # a failed wait must not leave it consuming the next tests' tasks
    job = submit(settings, fresh)["task_id"]
    control = make_control(settings)
    # Kill while a shard is in hand (received, not finished): killed between two shards, the worker
    # would lose no message and the next worker would simply run the rest without any resuming.
    wait_for(
        lambda: job_status(control, job).shards_done >= 1 and _shards_in_hand(first.log),
        "a shard to be done and another in hand",
        first,
    )
    first.kill()
    assert _shards_in_hand(first.log), "the kill came between two shards; nothing was lost to resume"
    assert job_status(control, job).status == "running"
    assert engine.search("boots", k=3).to_list() and engine.live().version == served  # still serving
    restarted = time.monotonic()
    second = WorkerProcess(settings, tmp_path / "worker-2.log", concurrency=1)
    try:
        status = finished(settings, job, second)  # nobody asks again
    finally:
        second.stop()
    assert status.status == "succeeded" and status.resumed >= 1, status
    assert time.monotonic() - restarted < 120
    engine.refresh()
    assert engine.live().version == status.version and len(engine.index) == 100


@pytest.mark.slow
def test_a_whole_worker_killed_mid_upsert_loses_no_product(
    base_settings: Settings,
    model_encoder: TransformerEncoder,
    template: Template,
    small_catalogue: Path,
    tmp_path: Path,
) -> None:
    """On RabbitMQ (the recommended broker) an unacknowledged task is requeued the moment its worker's
    connection drops: the upsert a killed worker was running is applied by the next one."""
    settings = base_settings.replace(
        data_dir=tmp_path / "data", broker_url=rabbitmq(), result_backend="redis://127.0.0.1:6379/4"
    )
    build_index(small_catalogue, settings=settings, encoder=model_encoder, template=template)
    engine = Engine(settings, model_encoder, template)
    products = [
        {"id": f"k-{i}", "title": f"Quokkaberry lamp number {i}", "description": "A lamp. " * 200}
        for i in range(60)
    ]
    first = WorkerProcess(settings, tmp_path / "worker-1.log", concurrency=1)
    app = create_celery(settings)
    app.send_task("recsys.upsert_products", args=[products], ignore_result=True)
    wait_for(lambda: b"recsys.upsert_products" in first.log.read_bytes(), "the upsert to start", first)
    first.kill()
    assert engine.search("boots", k=3).to_list()
    second = WorkerProcess(settings, tmp_path / "worker-2.log", concurrency=1)
    try:

        def applied() -> bool:
            engine.refresh()
            return all(p["id"] in engine.delta.rows for p in products)

        wait_for(applied, "the upsert to be redelivered and applied", second)
    finally:
        second.stop()
    assert engine.product("k-59")["title"] == "Quokkaberry lamp number 59"
