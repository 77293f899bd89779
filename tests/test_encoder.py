"""The torch + transformers encoder against sentence-transformers, on the embedded model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.encoder import ModelSpec, TransformerEncoder
from recsys.errors import ModelError
from recsys.settings import default_model_dir

TEXTS = [
    "16 gb memory card",
    "Auralix | Electronics > Audio > Headphones | black | Halo Wireless Headphones | " + "Great sound. " * 60,
    "a",
    "Hearthly King Cotton Duvet Cover Set, Artisan, White",
]


def test_vectors_match_sentence_transformers(encoder: TransformerEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_model_dir()), device="cpu")
    expected = reference.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=False)
    ours = encoder.encode_documents(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(encoder.encode_queries(TEXTS[:1]), expected[:1], atol=1e-5)


def test_vectors_are_unit_length_and_order_is_kept(encoder: TransformerEncoder) -> None:
    shuffled = [TEXTS[i] for i in (2, 0, 3, 1)]
    a = encoder.encode_documents(TEXTS)
    b = encoder.encode_documents(shuffled)
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
