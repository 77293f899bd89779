"""Encoding inside training: the same pooling and normalisation as the served encoder (read from the model
directory by :class:`~recsys.model.encoder.ModelSpec`), with gradients when training and without when
validating or mining, and the sequence lengths cut to what the rendered texts need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys.model.encoder import ModelSpec, pool


class Tower:
    """A tokenizer and a (LoRA-wrapped) model on a device, encoding the way the service does."""

    def __init__(self, tokenizer: Any, model: Any, spec: ModelSpec, device: Any) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.spec = spec
        self.device = device

    def encode(self, texts: Sequence[str], max_length: int) -> Any:
        """Unit vectors (a torch tensor on the device) of ``texts``, in the model's current mode."""
        import torch

        encoded = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=min(max_length, self.spec.max_length),
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
        vectors = pool(hidden.last_hidden_state, encoded["attention_mask"], self.spec.pooling)
        return torch.nn.functional.normalize(vectors, p=2, dim=1) if self.spec.normalize else vectors

    def embed(self, texts: Sequence[str], max_length: int, batch: int = 64) -> np.ndarray:
        """Vectors of ``texts`` without gradients, in eval mode (dropout off), as float32 numpy."""
        import torch

        was_training = self.model.training
        self.model.eval()
        out = np.zeros((len(texts), self.spec.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        try:
            with torch.no_grad():
                for start in range(0, len(order), batch):
                    rows = order[start : start + batch]
                    out[rows] = self.encode([texts[i] for i in rows], max_length).float().cpu().numpy()
        finally:
            self.model.train(was_training)
        return out


def fitted_length(tokenizer: Any, texts: Sequence[str], cap: int, quantile: float = 0.95) -> int:
    """The token length that holds ``quantile`` of ``texts`` whole, at most ``cap`` (a multiple of 8)."""
    if not texts:
        return min(cap, 8)
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=cap)["input_ids"]]
    needed = int(np.quantile(lengths, quantile))
    return max(8, min(cap, -(-needed // 8) * 8))


class Corpus:
    """What the model sees, exactly as served: each product's two renderings with the model's document
    prompt, and a query rendered through the template with the model's query prompt."""

    def __init__(
        self, full: Sequence[str], short: Sequence[str], spec: ModelSpec, query_template: Any
    ) -> None:
        self.full = [spec.document_prefix + t for t in full]
        self.short = [spec.document_prefix + t for t in short]
        self.spec = spec
        self.query_template = query_template  # a Template: its render_query is what search embeds

    def query(self, text: str) -> str:
        return self.spec.query_prefix + self.query_template.render_query(text)
