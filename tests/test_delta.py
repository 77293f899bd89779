"""The live delta and the in-process reindex pipeline (no broker): upserts, deletes, folding, control."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.build import pipeline as reindex
from recsys.build.jobs import Control, FileControl, JobRecord, RedisControl
from recsys.build.updates import DeltaWriter
from recsys.errors import BuildError, ProductNotFoundError, ReindexRunningError
from recsys.index.deltalog import RETIRED
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import Settings
from tests.conftest import five_percent_changed

CONTROL_REDIS_URL = "redis://127.0.0.1:6379/5"
NEW_PRODUCT = {
    "id": "delta-1",
    "title": "Zephyrquill Aurora Harmonica in C, Chrome, Ten Holes",
    "brand": "Zephyrquill",
    "category": ["Music", "Harmonicas"],
    "price": 24.0,
    "in_stock": True,
}


@pytest.fixture
def built(settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path) -> Settings:
    reindex.build_index(small_catalogue, settings=settings, encoder=encoder, template=template)
    return settings


def ids(results: object) -> list[str]:
    return [item["id"] for item in results.to_list()]  # type: ignore[attr-defined]


def test_in_process_reindex_publishes_and_an_unchanged_rerun_embeds_nothing(
    built: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    store = IndexStore(built.index_dir)
    first = store.current()
    assert first is not None and store.manifest(first).counts.products == 300
    again = reindex.build_index(small_catalogue, settings=built, encoder=encoder, template=template)
    assert again.version != first and store.current() == again.version
    assert again.manifest.counts.embedded == 0
    status = reindex.job_status(FileControl(built.data_dir / "jobs"))
    assert status.status == "succeeded" and status.version == again.version
    assert status.shards_done == status.shards_total == 1


def test_changed_products_are_the_only_ones_embedded(
    built: Settings, encoder: Encoder, template: Template, small_catalogue: Path, tmp_path: Path
) -> None:
    changed, expected = five_percent_changed(
        small_catalogue, tmp_path / "changed.jsonl", template, mark=" (delta-test edition)"
    )
    assert 15 <= expected <= 30
    result = reindex.build_index(
        changed, settings=built.replace(shard_size=64), encoder=encoder, template=template
    )
    assert result.manifest.counts.embedded == expected


def test_upserts_and_deletes_are_served_without_a_rebuild_and_survive_it(
    built: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    engine = Engine(built, encoder, template)
    other = Engine(built, encoder, template)  # another API process on the same data dir
    base_key = engine.state_key()
    victim, edited = engine.index.products[0]["id"], dict(engine.index.products[1])
    neighbour = ids(engine.similar(edited["id"], k=3))[0]
    edited["title"] = "Zephyrquill Special Edition " + edited["title"]

    writer = DeltaWriter(built, encoder, template)
    update = writer.upsert([NEW_PRODUCT, edited])
    engine.refresh()
    assert update.count == 2 and update.seq == 1
    assert engine.state_key() == f"{base_key}+1"
    assert ids(engine.search("zephyrquill harmonica", k=3))[0] == "delta-1"
    assert engine.product(edited["id"])["title"] == edited["title"]
    assert "delta-1" not in ids(engine.similar("delta-1", k=10))
    assert ids(engine.recommend(["delta-1"], k=5))
    assert ids(engine.search("zephyrquill", k=10)).count(edited["id"]) == 1  # the delta row, not both

    writer.delete([victim, neighbour])
    engine.refresh()
    other.refresh()
    assert other.state_key() == engine.state_key() == f"{base_key}+2"
    for eng in (engine, other):
        with pytest.raises(ProductNotFoundError):
            eng.product(victim)
        title = eng.index.products[0]["title"]
        assert victim not in ids(eng.search(title, k=50))
        assert neighbour not in ids(eng.similar(edited["id"], k=50))
        assert victim not in ids(eng.recommend([edited["id"]], k=50))

    rebuilt = reindex.build_index(small_catalogue, settings=built, encoder=encoder, template=template)
    assert rebuilt.manifest.counts.products == 300 - 2 + 1
    assert rebuilt.manifest.counts.delta_folded == 4
    engine.refresh()
    assert engine.state_key() == rebuilt.version  # a fresh version, no delta on it yet
    assert len(engine.delta) == 0
    assert engine.product(edited["id"])["title"] == edited["title"]
    assert ids(engine.search("zephyrquill harmonica", k=3))[0] == "delta-1"
    with pytest.raises(ProductNotFoundError):
        engine.product(victim)
    assert (built.data_dir / "delta" / base_key / RETIRED).read_text() == rebuilt.version
    # and the next rebuild from the same catalogue still does not bring the deleted products back
    again = reindex.build_index(small_catalogue, settings=built, encoder=encoder, template=template)
    assert again.manifest.counts.products == 300 - 2 + 1
    engine.refresh()
    assert engine.product(edited["id"])["title"] == edited["title"]
    with pytest.raises(ProductNotFoundError):
        engine.product(victim)
    small_catalogue.touch()  # a newer catalogue export wins over older upserts; tombstones stay
    try:
        newer = reindex.build_index(small_catalogue, settings=built, encoder=encoder, template=template)
    finally:
        small_catalogue.touch()
    engine.refresh()
    assert newer.manifest.counts.products == 300 - 2
    assert engine.product(edited["id"])["title"] != edited["title"]


def test_updates_arriving_during_a_build_are_carried_over(
    built: Settings, encoder: Encoder, template: Template
) -> None:
    store = IndexStore(built.index_dir)
    base = store.current()
    assert base is not None
    control = FileControl(built.data_dir / "jobs")
    catalogue = store.path(base) / "products.jsonl"
    job = reindex.start_job(built, control, catalogue)
    reindex.plan(built, control, job)
    DeltaWriter(built, encoder, template).upsert([NEW_PRODUCT])  # after the snapshot
    reindex.embed_shard(built, control, encoder, template, job, 0)
    result = reindex.finish(built, control, encoder, template, job)
    assert result is not None and result.manifest.counts.products == 300
    engine = Engine(built, encoder, template)
    assert engine.state_key() == f"{result.version}+1"
    assert engine.product("delta-1")["title"] == NEW_PRODUCT["title"]


def test_a_cancelled_or_failed_reindex_publishes_nothing(
    built: Settings, encoder: Encoder, template: Template, small_catalogue: Path, tmp_path: Path
) -> None:
    store = IndexStore(built.index_dir)
    published = store.current()
    control = FileControl(built.data_dir / "jobs")
    job = reindex.start_job(built, control, small_catalogue)
    with pytest.raises(ReindexRunningError) as running:
        reindex.start_job(built, control, small_catalogue)
    assert running.value.job_id == job
    reindex.plan(built, control, job)
    reindex.cancel_job(built, control, job)
    assert reindex.finish(built, control, encoder, template, job) is None
    assert store.current() == published and reindex.job_status(control, job).status == "cancelled"

    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"id": "x"}\n')
    with pytest.raises(BuildError):
        reindex.build_index(empty, settings=built, encoder=encoder, template=template)
    status = reindex.job_status(FileControl(built.data_dir / "jobs"))
    assert status.status == "failed" and "no valid product" in status.error
    assert store.current() == published


@pytest.fixture(params=["file", "redis"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Control:
    if request.param == "file":
        return FileControl(tmp_path / "jobs")
    import redis

    client = redis.Redis.from_url(CONTROL_REDIS_URL, decode_responses=True)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {CONTROL_REDIS_URL}")
    request.addfinalizer(client.flushdb)
    return RedisControl(client)


def test_control_contract(control: Control) -> None:
    assert control.acquire("k", "job-a", 60) is None
    assert control.acquire("k", "job-a", 60) is None  # re-entrant for its holder
    assert control.acquire("k", "job-b", 60) == "job-a"
    assert not control.refresh("k", "job-b", 60) and not control.release("k", "job-b")
    assert control.refresh("k", "job-a", 60) and control.release("k", "job-a")
    assert control.holder("k") is None and control.acquire("k", "job-b", 60) is None
    control.create_job(JobRecord(id="job-b", catalogue="c.jsonl", shard_size=5, created_at=1, updated_at=1))
    control.update_job("job-b", status="running", shards_total=2, cancel=True)
    control.shard_done("job-b", 1, 7)
    control.shard_done("job-b", 1, 7)  # a redelivered shard overwrites its entry
    control.shard_done("job-b", 0, 3)
    record = control.job("job-b")
    assert record is not None and (record.status, record.shards_total, record.cancel) == ("running", 2, True)
    assert record.model_dump() == JobRecord.decode(record.encode()).model_dump()  # one way in, one way out
    with pytest.raises(ValueError, match="not job record fields"):
        control.update_job("job-b", colour="red")
    assert control.shard_results("job-b") == {0: 3, 1: 7}
    assert control.latest_job() == "job-b" and control.job("nope") is None
