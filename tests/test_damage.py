"""Damaged artifacts and lost resources: a truncated or corrupted index file, or a manifest that lies about
its counts, is refused at load while the previous version keeps serving; a build that runs out of disk
publishes nothing and leaves nothing behind; `recsys index verify` finds what is wrong."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from recsys.build.pipeline import build_index
from recsys.cli import main
from recsys.errors import IndexCorruptError
from recsys.index.loaded import LoadedIndex
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import Settings


def republish_damaged(settings: Settings, damage: str) -> tuple[str, str]:
    """Copy the published version, damage the copy, publish it; returns (good, damaged) versions."""
    store = IndexStore(settings.index_dir)
    good = store.current()
    assert good is not None
    damaged = store.new_version_name()
    target = store.versions_dir / damaged
    shutil.copytree(store.path(good), target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["version"] = damaged
    if damage == "truncated":
        data = (target / "search.npy").read_bytes()
        (target / "search.npy").write_bytes(data[: len(data) // 2])
    elif damage == "bit flip":
        data = bytearray((target / "similar.annoy").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (target / "similar.annoy").write_bytes(bytes(data))
    elif damage == "lying counts":
        manifest["counts"]["products"] += 7
    elif damage == "missing file":
        (target / "bands.npy").unlink()
    (target / "manifest.json").write_text(json.dumps(manifest))
    store.publish(damaged)
    return good, damaged


@pytest.mark.parametrize("damage", ["truncated", "lying counts", "missing file"])
def test_a_damaged_version_is_refused_and_the_previous_one_serves(
    small_build: Settings, encoder: Encoder, template: Template, damage: str
) -> None:
    engine = Engine(small_build, encoder, template)
    before = engine.search("boots", k=3).to_list()
    good, damaged = republish_damaged(small_build, damage)
    assert engine.refresh() is False
    assert engine.live().version == good and engine.search("boots", k=3).to_list() == before
    assert engine.follower.refused is not None and engine.follower.refused[0] == damaged
    with pytest.raises(IndexCorruptError):
        LoadedIndex(IndexStore(small_build.index_dir).path(damaged))
    fresh = Engine(small_build, encoder, template)  # a process starting now has nothing to fall back on
    with pytest.raises(IndexCorruptError):
        fresh.live()


def test_verify_finds_a_flipped_bit(
    small_build: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(small_build.data_dir))
    good, _ = republish_damaged(small_build, "bit flip")
    assert main(["index", "verify", good]) == 0 and "match their checksums" in capsys.readouterr().out
    assert main(["index", "verify"]) == 1
    assert "similar.annoy does not match its checksum" in capsys.readouterr().err


def test_a_full_disk_during_a_build_publishes_nothing_and_leaves_nothing(
    small_build: Settings,
    encoder: Encoder,
    template: Template,
    small_catalogue: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = IndexStore(small_build.index_dir)
    served, versions = store.current(), store.versions()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("recsys.index.ann.np.save", full)
    with pytest.raises(OSError, match="No space left"):
        build_index(small_catalogue, settings=small_build, encoder=encoder, template=template)
    assert served is not None and store.current() == served and store.versions() == versions
    assert not any(store.staging_dir.iterdir())
    assert np.load(store.path(served) / "search.npy", mmap_mode="r").shape[0] == 300
