"""recsys.model.bert: BERT's forward pass in plain torch, against transformers' BertModel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recsys.model import bert
from recsys.model.encoder import TransformerEncoder, padded

TEXTS = [
    "Sony WH-1000XM4 wireless noise cancelling headphones, black",
    "men's leather chelsea boots size 10",
    "a",
    'Ünïcödé café — 65" 4K UHD smart TV with HDR10+ and Dolby Vision ' * 8,  # cut at the maximum
]


def test_the_same_hidden_states_as_transformers(model_encoder: TransformerEncoder) -> None:
    from transformers import AutoModel

    ours = bert.load(model_encoder.spec.path)
    assert ours is not None  # all-MiniLM-L6-v2 is a plain BERT
    theirs = AutoModel.from_pretrained(model_encoder.spec.path, local_files_only=True).eval()
    ids, mask = (torch.from_numpy(x) for x in padded(model_encoder.tokenize(TEXTS)))
    with torch.inference_mode():
        expected = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    real = mask.bool()  # padding positions are never pooled
    assert torch.allclose(got[real], expected[real], atol=1e-4), (got[real] - expected[real]).abs().max()


def test_the_encoder_runs_it_without_importing_transformers(model_encoder: TransformerEncoder) -> None:
    """Documents (bf16 and float32) and queries on torch: transformers' model stack is never imported."""
    script = f"""
import sys
from pathlib import Path
from recsys.model.encoder import TransformerEncoder
for precision in ("bf16", "fp32"):
    encoder = TransformerEncoder(Path({str(model_encoder.spec.path)!r}), document_precision=precision)
    encoder.encode_documents(["a red wool scarf"]), encoder.encode_queries(["red scarf"])
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['torch']", out.stdout + out.stderr


@pytest.mark.parametrize(
    "change",
    [
        {"position_embedding_type": "relative_key"},
        {"hidden_act": "relu"},
        {"is_decoder": True},
        {"model_type": "roberta"},
    ],
)
def test_variants_it_does_not_cover_load_through_transformers(
    model_encoder: TransformerEncoder, tmp_path: Path, change: dict[str, object]
) -> None:
    source = model_encoder.spec.path
    for item in source.iterdir():
        (tmp_path / item.name).symlink_to(item)
    (tmp_path / "config.json").unlink()
    config = json.loads((source / "config.json").read_text()) | change
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert bert.load(tmp_path) is None


def test_weights_named_otherwise_load_through_transformers(
    model_encoder: TransformerEncoder, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    source = model_encoder.spec.path
    (tmp_path / "config.json").symlink_to(source / "config.json")
    weights = load_file(source / "model.safetensors")
    save_file(
        {k.replace("attention.self.query", "attn.q"): v for k, v in weights.items()},
        tmp_path / "model.safetensors",
    )
    assert bert.load(tmp_path) is None
