"""Building, publishing, rolling back: versioned directories and an atomic pointer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.build.assemble import BuildResult
from recsys.build.pipeline import build_index
from recsys.errors import BuildError, IndexMismatchError, IndexNotFoundError
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.hashing import HashEncoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import Settings


def test_manifest_records_how_the_index_was_built(full_build: tuple[Settings, BuildResult]) -> None:
    settings, result = full_build
    manifest = json.loads((result.path / "manifest.json").read_text())  # the file, as a reader sees it
    for key in (
        "model",
        "model_name",
        "template",
        "template_name",
        "dim",
        "metric",
        "trees",
        "tuning",
        "counts",
        "catalogue_hash",
        "built_at",
        "versions",
        "version",
    ):
        assert key in manifest, key
    assert manifest["dim"] == 384 and manifest["metric"] == "angular" and manifest["format"] == 6
    assert manifest["counts"]["products"] == 1200
    assert {"annoy", "torch", "transformers", "numpy"} <= set(manifest["versions"])
    for space in ("search", "similar"):
        assert manifest["tuning"][space]["recall_at_10"] >= settings.target_recall
        assert manifest["tuning"][space]["search_k"] != 0
    for artifact in (
        "search.annoy",
        "similar.annoy",
        "search.npy",
        "similar.npy",
        "dense.npy",
        "products.jsonl",
        "lexical",
        "rejected.jsonl",
        "bands.json",
        "bands.npy",
        "vocabulary.json",
    ):
        assert (result.path / artifact).exists(), artifact
    assert IndexStore(settings.index_dir).current() == result.version


def test_bad_rows_are_skipped_and_the_rest_indexed(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path, tmp_path: Path
) -> None:
    lines = small_catalogue.read_text().splitlines()[:40]
    lines.insert(5, '{"id": "broken", "title": 7}')
    lines.insert(9, "garbage")
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = build_index(path, settings=settings, encoder=encoder, template=template)
    assert (result.manifest.counts.products, result.manifest.counts.rejected) == (40, 2)
    assert [e.line for e in result.errors] == [6, 10]
    rejected = [json.loads(x) for x in (result.path / "rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [6, 10]


def test_rebuild_of_unchanged_catalogue_embeds_nothing(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    build_index(small_catalogue, settings=settings, encoder=encoder, template=template)
    again = build_index(small_catalogue, settings=settings, encoder=encoder, template=template)
    assert again.manifest.counts.embedded == 0


def test_publish_rollback_and_prune(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    settings = settings.replace(keep_versions=2)
    store = IndexStore(settings.index_dir)
    with pytest.raises(IndexNotFoundError):
        store.current_path()
    versions = [
        build_index(small_catalogue, settings=settings, encoder=encoder, template=template).version
        for _ in range(3)
    ]
    assert store.current() == versions[-1]
    assert store.versions() == versions[1:]  # the oldest was pruned
    assert store.rollback() == versions[1]
    assert store.current() == versions[1]
    with pytest.raises(IndexNotFoundError, match="no older version"):
        store.rollback()
    store.rollback(to=versions[2])
    assert store.current() == versions[2]
    with pytest.raises(IndexNotFoundError):
        store.rollback(to="19990101T000000-nope")


def test_failed_build_publishes_nothing_and_leaves_no_staging(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path, tmp_path: Path
) -> None:
    first = build_index(small_catalogue, settings=settings, encoder=encoder, template=template)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"id": "x"}\n')
    with pytest.raises(BuildError, match="no valid product"):
        build_index(empty, settings=settings, encoder=encoder, template=template)

    class Exploding(HashEncoder):
        def encode_documents(self, texts, progress=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk on fire")

    changed = tmp_path / "changed.jsonl"
    changed.write_text('{"id": "new", "title": "A product nobody embedded yet"}\n')
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_index(changed, settings=settings, encoder=Exploding(), template=template)
    store = IndexStore(settings.index_dir)
    assert store.current() == first.version
    assert store.versions() == [first.version]
    assert not any(store.staging_dir.iterdir())


def test_index_from_another_model_or_template_is_refused(
    full_build: tuple[Settings, BuildResult], encoder: Encoder, template: Template
) -> None:
    settings, _ = full_build
    other = Template.from_dict(
        {"search": {"query": "q: {query}", "document": ["{title}"]}, "similar": {"document": ["{title}"]}}
    )
    with pytest.raises(IndexMismatchError, match="template"):
        Engine(settings, encoder, other).search("shoes")

    class OtherModel(HashEncoder):
        @property
        def identity(self) -> str:
            return "someone-else"

    with pytest.raises(IndexMismatchError, match="model"):
        Engine(settings, OtherModel(), template).similar("p-00001")


def test_a_manifest_from_another_format_or_malformed_is_refused(small_build: Settings) -> None:
    store = IndexStore(small_build.index_dir)
    path = store.current_path() / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(IndexMismatchError, match=r"format 1.*rebuild"):
        store.manifest(path.parent.name)
    path.write_text(json.dumps({**manifest, "counts": {"products": "many"}}))
    with pytest.raises(IndexMismatchError, match=r"counts\.products"):
        store.manifest(path.parent.name)
