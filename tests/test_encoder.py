"""The torch + transformers encoder against sentence-transformers, on the embedded model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.errors import ModelError
from recsys.model.encoder import ModelSpec, TransformerEncoder
from recsys.model.templates import Template
from recsys.settings import default_model_dir

TEXTS = [
    "16 gb memory card",
    "Auralix | Electronics > Audio > Headphones | black | Halo Wireless Headphones | " + "Great sound. " * 60,
    "a",
    "Hearthly King Cotton Duvet Cover Set, Artisan, White",
]


def test_vectors_match_sentence_transformers(model_encoder: TransformerEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_model_dir()), device="cpu")
    expected = reference.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=False)
    ours = model_encoder.encode_documents(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(model_encoder.encode_queries(TEXTS[:1]), expected[:1], atol=1e-5)


def test_vectors_are_unit_length_and_order_is_kept(model_encoder: TransformerEncoder) -> None:
    shuffled = [TEXTS[i] for i in (2, 0, 3, 1)]
    a = model_encoder.encode_documents(TEXTS)
    b = model_encoder.encode_documents(shuffled)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(b, a[[2, 0, 3, 1]], atol=1e-5)


def test_spec_reads_the_embedded_model() -> None:
    spec = ModelSpec.read(default_model_dir())
    assert (spec.dim, spec.max_length, spec.pooling, spec.normalize) == (384, 256, "mean", True)
    assert spec.query_prefix == "" and spec.document_prefix == ""


def test_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"config\.json"):
        ModelSpec.read(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="weights"):
        ModelSpec.read(tmp_path)


def test_onnx_query_path_gives_the_torch_vectors(model_encoder: TransformerEncoder, tmp_path: Path) -> None:
    from recsys.model.onnxquery import OnnxQueryEncoder

    fast = OnnxQueryEncoder(model_encoder, tmp_path / "onnx")
    queries = ["16 gb memory card", "affordable wireless headphones", "a"]
    np.testing.assert_allclose(fast.encode_queries(queries), model_encoder.encode_queries(queries), atol=1e-5)
    assert fast.path.is_file() and fast.identity == model_encoder.identity
    import onnx

    ops = {node.op_type for node in onnx.load(str(fast.path)).graph.node}
    assert "Attention" in ops and "SkipLayerNormalization" in ops, ops  # fused by ONNX Runtime
    np.testing.assert_allclose(
        fast.encode_documents(queries[:1]), model_encoder.encode_documents(queries[:1])
    )
    # A second process reuses the export instead of tracing again.
    again = OnnxQueryEncoder(model_encoder, tmp_path / "onnx")
    mtime = again.path.stat().st_mtime_ns
    np.testing.assert_allclose(
        again.encode_queries(queries[:1]), model_encoder.encode_queries(queries[:1]), atol=1e-5
    )
    assert again.path.stat().st_mtime_ns == mtime


def test_onnx_query_path_falls_back_to_torch(model_encoder: TransformerEncoder, tmp_path: Path) -> None:
    from recsys.model.onnxquery import OnnxQueryEncoder

    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    fast = OnnxQueryEncoder(model_encoder, blocked)  # the export cannot be written here
    assert fast.runtime == "onnx" and fast.fallback is None
    np.testing.assert_allclose(
        fast.encode_queries(["boots"]), model_encoder.encode_queries(["boots"]), atol=1e-6
    )
    assert fast.runtime == "torch" and fast.fallback is not None and "Error" in fast.fallback


def test_int8_query_path_stays_close_to_the_exact_vectors(
    model_encoder: TransformerEncoder, tmp_path: Path
) -> None:
    from recsys.model.onnxquery import OnnxQueryEncoder

    fast = OnnxQueryEncoder(model_encoder, tmp_path / "onnx", int8=True)
    queries = ["16 gb memory card", "affordable wireless headphones", "black leather ankle boots women"]
    cosines = (fast.encode_queries(queries) * model_encoder.encode_queries(queries)).sum(axis=1)
    assert fast.path.name.endswith("-int8.onnx") and fast._session is not None  # not the torch fallback
    assert cosines.min() >= 0.97, cosines


def test_query_caches_tell_the_int8_path_from_the_exact_one(
    model_encoder: TransformerEncoder, tmp_path: Path
) -> None:
    from recsys.model.onnxquery import OnnxQueryEncoder

    exact = OnnxQueryEncoder(model_encoder, tmp_path)
    int8 = OnnxQueryEncoder(model_encoder, tmp_path, int8=True)
    assert exact.query_identity == model_encoder.query_identity == model_encoder.identity
    assert int8.query_identity != exact.query_identity and int8.identity == model_encoder.identity


def test_bf16_documents_stay_within_their_cosine_tolerance(model_encoder: TransformerEncoder) -> None:
    """The default document path on CPUs with native bf16: vectors within cosine 0.995 of float32."""
    bf16 = TransformerEncoder(model_encoder.spec.path, document_precision="bf16")
    exact = model_encoder.encode_documents(TEXTS)
    cosines = (bf16.encode_documents(TEXTS) * exact).sum(axis=1)
    assert cosines.mean() >= 0.999 and cosines.min() >= 0.995
    assert bf16.document_identity != model_encoder.document_identity  # the embedding cache keeps them apart
    assert bf16.identity == model_encoder.identity  # the same model: an index serves either's queries


def test_documents_shared_by_threads_come_out_as_from_one(model_encoder: TransformerEncoder) -> None:
    """Documents on two threads of one core each (batches shared out, vectors put back in order) are
    the vectors one thread gives, every batch is reported, and a thread started afterwards gets the
    encoder's thread count, not the one core each of the pool's threads had."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    texts = [*TEXTS, *(f"{t} with a padded collar, size {n}" for n, t in enumerate(TEXTS))]
    one = TransformerEncoder(model_encoder.spec.path, threads=1, batch_tokens=64)
    two = TransformerEncoder(model_encoder.spec.path, threads=2, batch_tokens=64)
    before, done = torch.get_num_threads(), []
    try:
        shared = two.encode_documents(texts, progress=done.append)
        with ThreadPoolExecutor(1) as later:
            assert later.submit(torch.get_num_threads).result() == 2
        assert np.allclose(shared, one.encode_documents(texts), atol=1e-6)
    finally:
        torch.set_num_threads(before)  # each encoder set the process's count when it loaded
    assert len(done) > 2 and sum(done) == len(texts)  # several batches, each reported once


def test_documents_are_cut_to_their_token_budget(model_encoder: TransformerEncoder) -> None:
    """RECSYS_DOCUMENT_TOKENS cuts documents, never queries, and the embedding cache keeps cut vectors
    apart from whole ones."""
    cut = TransformerEncoder(model_encoder.spec.path, document_tokens=16)
    short, long = "red cotton t-shirt", " ".join(["waterproof hiking boots with a padded collar"] * 10)
    whole = model_encoder.tokenize([long])[0]
    assert len(whole) > 16 and cut.tokenize([long], cut.document_tokens)[0] == [*whole[:15], whole[-1]]
    ours, theirs = cut.encode_documents([short, long]), model_encoder.encode_documents([short, long])
    assert np.allclose(ours[0], theirs[0], atol=1e-5)  # under the budget: the same vector
    assert float(ours[1] @ theirs[1]) < 0.999
    assert np.allclose(cut.encode_queries([long]), model_encoder.encode_queries([long]), atol=1e-5)
    assert cut.document_identity != model_encoder.document_identity and cut.identity == model_encoder.identity
    beyond = TransformerEncoder(model_encoder.spec.path, document_tokens=100_000)  # the model's maximum
    assert beyond.document_tokens == model_encoder.spec.max_length
    assert beyond.document_identity == model_encoder.document_identity


@pytest.mark.parametrize("value", ["3", "-1", "many"])
def test_a_document_token_budget_with_no_room_for_text_is_refused(value: str) -> None:
    from recsys.errors import SettingsError
    from recsys.settings import Settings

    with pytest.raises(SettingsError, match="RECSYS_DOCUMENT_TOKENS"):
        Settings.from_env({"RECSYS_DOCUMENT_TOKENS": value})
    assert Settings.from_env({"RECSYS_DOCUMENT_TOKENS": "0"}).document_tokens == 0


@pytest.fixture(scope="module")
def int8_encoder(
    model_encoder: TransformerEncoder, tmp_path_factory: pytest.TempPathFactory
) -> TransformerEncoder:
    """An encoder whose documents run in int8 on ONNX Runtime, exported once for this module."""
    onnx_dir = tmp_path_factory.mktemp("onnx")
    return TransformerEncoder(model_encoder.spec.path, document_precision="int8", onnx_dir=onnx_dir)


def test_int8_documents_stay_within_their_cosine_tolerance(
    model_encoder: TransformerEncoder,
    int8_encoder: TransformerEncoder,
    template: Template,
    fixture_catalogue: Path,
) -> None:
    """The default document path on CPUs without native bf16: ONNX Runtime, int8 weights but for each
    layer's feed-forward output, catalogue documents within mean cosine 0.995 of float32."""
    from recsys.build.texts import render
    from recsys.catalogue import load_catalogue

    rendered = render(load_catalogue(fixture_catalogue).products[:40], template)
    texts = [*rendered.search, *rendered.similar]
    int8 = int8_encoder
    exact = model_encoder.encode_documents(texts)
    cosines = (int8.encode_documents(texts) * exact).sum(axis=1)
    assert cosines.mean() >= 0.995 and cosines.min() >= 0.98, (cosines.mean(), cosines.min())
    assert int8.onnx_dir and list(int8.onnx_dir.glob("*-documents-int8.onnx"))  # beside the query models
    assert int8.document_identity != model_encoder.document_identity
    assert int8.identity == model_encoder.identity


def test_int8_documents_shared_by_streams_come_out_as_from_one(int8_encoder: TransformerEncoder) -> None:
    """int8 documents on two threads, one ONNX Runtime core each, are the vectors one thread gives, in
    order, every batch reported once."""
    texts = [*TEXTS, *(f"{t} with a padded collar, size {n}" for n, t in enumerate(TEXTS))]
    path, onnx_dir = int8_encoder.spec.path, int8_encoder.onnx_dir
    one, two = (
        TransformerEncoder(path, threads=n, batch_tokens=64, document_precision="int8", onnx_dir=onnx_dir)
        for n in (1, 2)
    )
    done: list[int] = []
    shared = two.encode_documents(texts, progress=done.append)
    assert np.allclose(shared, one.encode_documents(texts), atol=1e-6)
    assert len(done) > 2 and sum(done) == len(texts)


def test_token_ids_come_from_tokenizer_json_as_transformers_gives_them(
    model_encoder: TransformerEncoder, template: Template, fixture_catalogue: Path
) -> None:
    from transformers import AutoTokenizer

    from recsys.build.texts import render
    from recsys.catalogue import load_catalogue

    rendered = render(load_catalogue(fixture_catalogue).products[:200], template)
    odd = [
        "",
        " ",
        "Café crème brûlée",
        'ＴＶ 65" – 4K',
        "naïve 日本語 😀",
        "a\tb\nc",
        "x" * 3000,
        "great sound " * 300,
    ]
    texts = [*rendered.search, *rendered.similar, *TEXTS, *odd]
    spec = model_encoder.spec
    reference = AutoTokenizer.from_pretrained(spec.path, local_files_only=True)
    expected = reference(texts, truncation=True, max_length=spec.max_length)["input_ids"]
    assert model_encoder.tokenize(texts) == expected
    assert max(len(ids) for ids in expected) == spec.max_length  # long texts were cut alike


def test_onnx_runtime_paths_never_import_torch(int8_encoder: TransformerEncoder) -> None:
    """With the exports in place, a process whose queries and documents run on ONNX Runtime loads
    neither torch nor transformers (a build's start, and each serving worker's memory)."""
    import subprocess
    import sys

    from recsys.model.onnxquery import OnnxQueryEncoder

    onnx_dir = int8_encoder.onnx_dir
    OnnxQueryEncoder(int8_encoder, onnx_dir, int8=True).encode_queries(["export it"])
    int8_encoder.encode_documents(["export it"])
    script = f"""
import sys
from pathlib import Path
from recsys.model.encoder import TransformerEncoder
from recsys.model.onnxquery import OnnxQueryEncoder
torch_encoder = TransformerEncoder(Path({str(int8_encoder.spec.path)!r}), document_precision="int8",
                                   onnx_dir=Path({str(onnx_dir)!r}))
encoder = OnnxQueryEncoder(torch_encoder, Path({str(onnx_dir)!r}), int8=True)
encoder.encode_documents(["a red wool scarf"]), encoder.encode_queries(["red scarf", "wool"])
assert encoder.fallback is None, encoder.fallback
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_document_precision_resolves_to_what_the_cpu_can_do() -> None:
    from recsys.model.encoder import bf16_supported, resolve_precision

    assert resolve_precision("auto", True) == ("bf16" if bf16_supported() else "int8")
    assert resolve_precision("auto", False) in ("bf16", "fp32")  # int8 needs somewhere to export to
    assert resolve_precision("auto", True, "qwen3") in ("bf16", "fp32")  # int8 was measured on BERT only
    assert resolve_precision("fp32", True) == "fp32"
    with pytest.raises(ModelError, match="ONNX Runtime"):
        resolve_precision("int8", False)


def test_int8_documents_that_cannot_be_exported_say_what_to_set(
    model_encoder: TransformerEncoder, tmp_path: Path
) -> None:
    blocked = tmp_path / "onnx"
    blocked.write_text("a file where the export directory should be")
    int8 = TransformerEncoder(model_encoder.spec.path, document_precision="int8", onnx_dir=blocked)
    with pytest.raises(ModelError, match="RECSYS_DOCUMENT_PRECISION=fp32"):
        int8.encode_documents(TEXTS)


def test_workers_starting_together_export_once(
    model_encoder: TransformerEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each caller holds the lock file while it checks and exports, so whoever comes second finds the
    first one's file (the export itself is replaced: what is tested is who runs it)."""
    import threading

    from recsys.model import onnxquery

    made: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def export(encoder: TransformerEncoder, path: Path, **options: bool) -> None:
        made.append(threading.current_thread().name)
        inside.set()
        release.wait(timeout=30)
        path.write_bytes(b"model")

    monkeypatch.setattr(onnxquery, "export", export)
    target = tmp_path / "onnx" / "model.onnx"
    first = threading.Thread(target=onnxquery.exported, args=(model_encoder, target), name="first")
    second = threading.Thread(target=onnxquery.exported, args=(model_encoder, target), name="second")
    first.start()
    assert inside.wait(timeout=30)  # the first is exporting, holding the lock
    second.start()
    release.set()
    first.join(timeout=30), second.join(timeout=30)
    assert made == ["first"] and target.read_bytes() == b"model"


def test_a_tokenizer_config_that_overrides_tokenizer_json_is_honoured(tmp_path: Path) -> None:
    """transformers rebuilds a BERT normaliser from tokenizer_config.json: where the two files disagree,
    the ids come from transformers, so they stay what it gives."""
    import json
    import shutil

    from transformers import AutoTokenizer

    from recsys.model.tokenizer import load_tokenizer

    source = default_model_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, tmp_path / name)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    texts = ["Café ABC Headphones", "WIRELESS earbuds", "plain words"]
    expected = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)(texts)["input_ids"]
    assert load_tokenizer(tmp_path, 256, "bert")(texts) == expected
    assert expected != load_tokenizer(source, 256, "bert")(texts)  # casing kept: other ids
