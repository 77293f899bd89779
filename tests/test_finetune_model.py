"""A tiny fine-tune of the real model on the fixture catalogue, end to end: pairs → adapters → merged
directory → index → search through the API (ONNX and int8 query paths included). It is bit for bit
reproducible with a fixed seed, whether the core, the CLI or the Celery task runs it; it changes the
vectors; and an index built with one fine-tune is refused under another."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from recsys.build.pipeline import build_index
from recsys.errors import IndexMismatchError
from recsys.factories import make_encoder
from recsys.finetune import FinetuneConfig, FinetuneData, FinetuneResult, finetune, read_record
from recsys.index.store import IndexStore
from recsys.model.encoder import ModelSpec, TransformerEncoder
from recsys.model.onnxquery import OnnxQueryEncoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.model

FIXTURES = PROJECT_ROOT / "fixtures"
# a few dozen examples' worth: seconds of training, every part exercised (validation, mining, both kinds)
TINY = {
    "steps": 6,
    "batch_size": 8,
    "doc_max_length": 48,
    "query_max_length": 16,
    "val_pool": 40,
    "val_queries": 3,
    "validate_every": 3,
    "mine_pool": 300,
    "time_budget_s": None,
    "select_best": False,  # keep the last adapter even where six steps do not help validation
}
TEXTS = ["black running shoes for women", "wireless headphones", "Clothing > Tops | women | black | tee"]


def weights_digest(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data(small_catalogue: Path) -> FinetuneData:
    return FinetuneData(
        small_catalogue, FIXTURES / "queries.tsv", FIXTURES / "qrels.tsv", ("category", "gender")
    )


@pytest.fixture(scope="module")
def ft_settings(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return base_settings.replace(data_dir=tmp_path_factory.mktemp("finetune"))


@pytest.fixture(scope="module")
def tuned(ft_settings: Settings, template: Template, data: FinetuneData) -> FinetuneResult:
    return finetune(
        data,
        ft_settings.data_dir / "tuned",
        settings=ft_settings,
        template=template,
        config=FinetuneConfig(**TINY),
    )


@pytest.fixture(scope="module")
def tuned_by_cli(ft_settings: Settings, data: FinetuneData) -> Path:
    """The same fine-tune through ``recsys finetune`` (same seed, same knobs)."""
    from recsys.cli import main

    knobs = ft_settings.data_dir / "knobs.json"
    knobs.write_text(json.dumps({k: v for k, v in TINY.items() if k != "steps"}))
    out = ft_settings.data_dir / "tuned-cli"
    with pytest.MonkeyPatch.context() as env:
        for name in ("RECSYS_BROKER_URL", "RECSYS_REDIS_URL", "RECSYS_MODEL_DIR"):
            env.delenv(name, raising=False)
        env.setenv("RECSYS_DATA_DIR", str(ft_settings.data_dir / "cli"))
        env.setenv("RECSYS_EMBEDDINGS_DIR", str(ft_settings.resolved_embeddings_dir))
        env.setenv("RECSYS_TORCH_THREADS", str(ft_settings.torch_threads))
        assert data.queries is not None and data.qrels is not None
        code = main(
            [
                "finetune",
                "--catalogue",
                str(data.catalogue),
                "--queries",
                str(data.queries),
                "--qrels",
                str(data.qrels),
                "--similar-same",
                "category,gender",
                "--out",
                str(out),
                "--steps",
                str(TINY["steps"]),
                "--seed",
                "0",
                "--device",
                "cpu",
                "--config",
                str(knobs),
            ]
        )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tuned_index(
    ft_settings: Settings, tuned: FinetuneResult, template: Template, small_catalogue: Path
) -> Settings:
    """An index of the small catalogue built with the fine-tuned model (RECSYS_MODEL_DIR = its directory)."""
    settings = ft_settings.replace(data_dir=ft_settings.data_dir / "served", model_dir=tuned.out)
    build_index(small_catalogue, settings=settings, encoder=make_encoder(settings), template=template)
    return settings


def test_the_directory_is_complete_and_says_how_it_was_made(
    tuned: FinetuneResult, ft_settings: Settings, data: FinetuneData
) -> None:
    out = tuned.out
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "finetune.json",
    ):
        assert (out / name).is_file(), name
    assert not list(out.parent.glob(f".{out.name}.*"))  # no staging left behind
    record = read_record(out)
    assert record is not None and record == tuned.record
    base = ModelSpec.read(ft_settings.resolved_model_dir)
    assert record.base_model["identity"] == base.identity
    assert record.data["catalogue"]["sha256"] == hashlib.sha256(data.catalogue.read_bytes()).hexdigest()
    assert record.data["qrels"]["sha256"] and record.data["similar_same"] == ["category", "gender"]
    assert record.config["seed"] == 0 and record.training["steps"] == TINY["steps"]
    assert [h["step"] for h in record.validation] == [0, 3, 6]  # the base model, then every 3 steps
    assert record.pairs["judged_examples"] and record.pairs["generated_examples"]
    assert record.pairs["similar_examples"] and record.pairs["mined_negatives"]
    spec = ModelSpec.read(out)
    assert spec.finetuned and spec.identity == tuned.identity != base.identity
    assert (spec.pooling, spec.normalize, spec.max_length, spec.dim) == (
        base.pooling,
        base.normalize,
        base.max_length,
        base.dim,
    )
    assert (spec.query_prefix, spec.document_prefix) == (base.query_prefix, base.document_prefix)
    prompts = json.loads((out / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["recsys_query"] == "query: "


def test_sentence_transformers_loads_it_with_the_same_vectors(tuned: FinetuneResult) -> None:
    from sentence_transformers import SentenceTransformer

    ours = TransformerEncoder(tuned.out).encode_documents(TEXTS)
    theirs = SentenceTransformer(str(tuned.out), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.allclose(ours, theirs, atol=1e-5)


def test_it_changes_the_vectors(tuned: FinetuneResult, model_encoder: TransformerEncoder) -> None:
    before = model_encoder.encode_documents(TEXTS)
    after = TransformerEncoder(tuned.out).encode_documents(TEXTS)
    cosines = (before * after).sum(axis=1)
    assert np.abs(before - after).max() > 1e-3  # the adapters moved the vectors...
    assert cosines.min() > 0.8  # ...without wrecking them


def test_top_layers_adapts_only_the_top_layers(
    ft_settings: Settings, template: Template, data: FinetuneData
) -> None:
    from safetensors.numpy import load_file

    knobs = {**TINY, "steps": 2, "validate_every": 2, "top_layers": 2}
    result = finetune(
        data,
        ft_settings.data_dir / "top2",
        settings=ft_settings,
        template=template,
        config=FinetuneConfig(**knobs),
    )
    base = load_file(str(ft_settings.resolved_model_dir / "model.safetensors"))
    tuned = load_file(str(result.out / "model.safetensors"))

    def moved(layer: int) -> bool:
        name = f"encoder.layer.{layer}.attention.self.query.weight"
        return not np.array_equal(base[name], tuned[name])

    assert [moved(layer) for layer in range(6)] == [False] * 4 + [True] * 2
    assert result.record.config["top_layers"] == 2


def test_bit_for_bit_reproducible_and_the_cli_runs_the_same(
    tuned: FinetuneResult, tuned_by_cli: Path
) -> None:
    assert weights_digest(tuned_by_cli) == weights_digest(tuned.out)
    cli_record = read_record(tuned_by_cli)
    assert cli_record is not None

    def figures(history: list[dict[str, float]]) -> list[tuple[float, ...]]:
        return [(h["step"], h["ndcg@10"], h.get("loss", -1.0)) for h in history]

    assert figures(cli_record.validation) == figures(tuned.record.validation)
    # same weights, but another fine-tune's record: another identity
    assert ModelSpec.read(tuned_by_cli).identity != tuned.identity


def test_served_through_the_api_on_the_onnx_and_int8_query_paths(
    tuned_index: Settings, tuned: FinetuneResult, template: Template
) -> None:
    from recsys.api import create_app
    from recsys.query.cache import NullCache

    client = create_app(tuned_index, cache=NullCache()).test_client()
    response = client.get("/v1/search?q=black+running+shoes&k=5")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["results"]) == 5
    info = client.get("/v1/index").get_json()
    assert info["model"]["identity"] == tuned.identity and info["model"]["name"] == "tuned"

    torch_encoder = TransformerEncoder(tuned.out)
    exact = torch_encoder.encode_queries([template.render_query(t) for t in TEXTS])
    onnx = OnnxQueryEncoder(torch_encoder, tuned_index.data_dir / "onnx")
    assert np.allclose(onnx.encode_queries([template.render_query(t) for t in TEXTS]), exact, atol=1e-4)
    assert onnx.fallback is None and onnx.path.name.startswith(tuned.identity)
    int8 = OnnxQueryEncoder(torch_encoder, tuned_index.data_dir / "onnx", int8=True)
    quantised = int8.encode_queries([template.render_query(t) for t in TEXTS])
    assert int8.fallback is None and (quantised * exact).sum(axis=1).min() > 0.95


def test_an_index_built_with_one_finetune_is_refused_under_another(
    tuned_index: Settings, tuned_by_cli: Path, model_encoder: TransformerEncoder, template: Template
) -> None:
    store = IndexStore(tuned_index.index_dir)
    for other in (TransformerEncoder(tuned_by_cli), model_encoder):  # another fine-tune; the base model
        engine = Engine(tuned_index.replace(model_dir=other.spec.path), other, template, store)
        with pytest.raises(IndexMismatchError):
            engine.search("black running shoes")


def test_the_worker_task_records_its_progress_like_a_reindex(
    ft_settings: Settings, data: FinetuneData, tuned: FinetuneResult
) -> None:
    from workers import create_celery, tasks

    settings = ft_settings.replace(data_dir=ft_settings.data_dir / "worker")
    app = create_celery(settings)  # no broker: the task runs eagerly, in this process
    assert app.conf.task_always_eager
    out = settings.data_dir / "tuned-task"
    result = tasks.finetune_model.delay(
        str(data.catalogue), str(out), str(data.queries), str(data.qrels), ["category", "gender"], TINY
    )
    reply = result.get()
    assert reply["status"] == "succeeded" and reply["identity"] == ModelSpec.read(out).identity
    record = app.context.control.job(result.id)
    assert record is not None and record.kind == "finetune" and record.status == "succeeded"
    assert (record.shards_done, record.shards_total) == (TINY["steps"], TINY["steps"])
    assert record.version == str(out) and record.phase.startswith("done")
    assert weights_digest(out) == weights_digest(tuned.out)  # the task runs the same function
