"""Shared fixtures.

Two tiers: most tests run on the deterministic :class:`~recsys.model.hashing.HashEncoder` (``encoder``,
``full_build``, ``full_engine``), which needs no model and builds the fixture catalogue in seconds;
tests of what the real model does (quality, the ONNX paths, processes that load the model from their
settings) use ``model_encoder`` / ``model_engine`` and are marked ``model`` automatically. ``make test``
runs both; ``make test-fast`` only the first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.build.assemble import BuildResult
from recsys.build.pipeline import build_index
from recsys.catalogue import load_catalogue
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder, TransformerEncoder
from recsys.model.hashing import HashEncoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "fixtures"
SUBSET = 300  # products in the small catalogue most tests build from
MODEL_FIXTURES = {"model_encoder", "model_build", "model_engine", "model_small_build"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that loads the real model, directly or through a fixture, is marked ``model``."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("data")
    return Settings.from_env(
        {},
        data_dir=data,
        embeddings_dir=data / "embeddings",
        annoy_trees=16,
        torch_threads=int(os.environ.get("RECSYS_TEST_THREADS", "0")),
    )


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The fast tier's encoder: hashed tokens, no model."""
    return HashEncoder()


@pytest.fixture(scope="session")
def model_encoder(base_settings: Settings) -> TransformerEncoder:
    """The real all-MiniLM-L6-v2, loaded once per session."""
    return TransformerEncoder(base_settings.resolved_model_dir, threads=base_settings.torch_threads)


@pytest.fixture(scope="session")
def template(base_settings: Settings) -> Template:
    return Template.load(base_settings.templates_path)


@pytest.fixture(scope="session")
def fixture_catalogue() -> Path:
    return FIXTURES / "catalogue.jsonl"


@pytest.fixture(scope="session")
def small_catalogue(tmp_path_factory: pytest.TempPathFactory, fixture_catalogue: Path) -> Path:
    """The first SUBSET products of the fixture catalogue."""
    path = tmp_path_factory.mktemp("catalogue") / "small.jsonl"
    lines = fixture_catalogue.read_text(encoding="utf-8").splitlines()[:SUBSET]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _session_build(
    base: Settings, name: str, encoder: Encoder, template: Template, catalogue: Path
) -> tuple[Settings, BuildResult]:
    settings = base.replace(data_dir=base.data_dir / name)
    return settings, build_index(catalogue, settings=settings, encoder=encoder, template=template)


@pytest.fixture(scope="session")
def full_build(
    base_settings: Settings, encoder: Encoder, template: Template, fixture_catalogue: Path
) -> tuple[Settings, BuildResult]:
    """The whole fixture catalogue on the hash encoder, built once per session."""
    return _session_build(base_settings, "full", encoder, template, fixture_catalogue)


@pytest.fixture(scope="session")
def full_engine(full_build: tuple[Settings, BuildResult], encoder: Encoder, template: Template) -> Engine:
    settings, _ = full_build
    return Engine(settings, encoder, template, IndexStore(settings.index_dir))


@pytest.fixture(scope="session")
def model_build(
    base_settings: Settings, model_encoder: TransformerEncoder, template: Template, fixture_catalogue: Path
) -> tuple[Settings, BuildResult]:
    """The whole fixture catalogue on the real model, built once per session."""
    return _session_build(base_settings, "model", model_encoder, template, fixture_catalogue)


@pytest.fixture(scope="session")
def model_engine(
    model_build: tuple[Settings, BuildResult], model_encoder: TransformerEncoder, template: Template
) -> Engine:
    settings, _ = model_build
    return Engine(settings, model_encoder, template, IndexStore(settings.index_dir))


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a fresh, empty data directory for tests that build and publish."""
    return base_settings.replace(data_dir=tmp_path / "data")


@pytest.fixture
def fixture_products() -> Iterator[dict]:
    with (FIXTURES / "catalogue.jsonl").open(encoding="utf-8") as fh:
        yield (json.loads(line) for line in fh)


# -- API fixtures (tests/test_api*.py) ---------------------------------------------------------------

API_REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A dedicated Redis database, flushed before and after each test; skipped if Redis is not running."""
    import redis

    client = redis.Redis.from_url(API_REDIS_URL, socket_timeout=1)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {API_REDIS_URL}")
    yield API_REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def small_build(settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path) -> Settings:
    """A fresh data directory holding a published index of the small catalogue (hash encoder)."""
    build_index(small_catalogue, settings=settings, encoder=encoder, template=template)
    return settings


@pytest.fixture
def model_small_build(
    settings: Settings, model_encoder: TransformerEncoder, template: Template, small_catalogue: Path
) -> Settings:
    """The same on the real model, for tests whose processes load the model from their settings."""
    build_index(small_catalogue, settings=settings, encoder=model_encoder, template=template)
    return settings


def five_percent_changed(
    source: Path, target: Path, template: Template, start: int = 0, mark: str = " (edition)"
) -> tuple[Path, int]:
    """A copy of ``source`` with every 20th title changed, and how many texts that must embed anew."""
    from recsys.build.texts import render

    rows = [json.loads(line) for line in source.read_text().splitlines()]
    for row in rows[start::20]:
        row["title"] += mark
    target.write_text("".join(json.dumps(r) + "\n" for r in rows))
    old = render(load_catalogue(source).products, template)
    new = render(load_catalogue(target).products, template)
    return target, len(set(new.search) - set(old.search)) + len(set(new.similar) - set(old.similar))
