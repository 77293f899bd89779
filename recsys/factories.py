"""Factories that turn settings into the core's objects; the CLI, the API and the workers all use these."""

from __future__ import annotations

from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder, TransformerEncoder
from recsys.model.onnxquery import OnnxQueryEncoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import Settings


def make_encoder(settings: Settings) -> Encoder:
    encoder = TransformerEncoder(
        settings.resolved_model_dir,
        threads=settings.torch_threads,
        batch_size=settings.batch_size,
        document_precision=settings.document_precision,
        document_tokens=settings.document_tokens,
        onnx_dir=settings.data_dir / "onnx",
    )
    if settings.query_runtime in ("onnx", "onnx-int8"):
        return OnnxQueryEncoder(
            encoder, settings.data_dir / "onnx", int8=settings.query_runtime == "onnx-int8"
        )
    return encoder


def load_template(settings: Settings) -> Template:
    return Template.load(settings.templates_path)


def make_engine(settings: Settings, encoder: Encoder | None = None) -> Engine:
    return Engine(
        settings, encoder or make_encoder(settings), load_template(settings), IndexStore(settings.index_dir)
    )
