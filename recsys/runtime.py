"""Factories that turn settings into the core's objects; the CLI, the API and the workers all use these."""

from __future__ import annotations

from recsys.encoder import TransformerEncoder
from recsys.engine import Engine
from recsys.settings import Settings
from recsys.store import IndexStore
from recsys.templates import Template


def make_encoder(settings: Settings) -> TransformerEncoder:
    return TransformerEncoder(
        settings.resolved_model_dir, threads=settings.torch_threads, batch_size=settings.batch_size
    )


def load_template(settings: Settings) -> Template:
    return Template.load(settings.templates_path)


def make_engine(settings: Settings, encoder: TransformerEncoder | None = None) -> Engine:
    return Engine(
        settings, encoder or make_encoder(settings), load_template(settings), IndexStore(settings.index_dir)
    )
