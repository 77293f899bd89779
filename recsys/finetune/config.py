"""The knobs of a fine-tune, with their defaults and ranges (one typed model, recorded in finetune.json).

The defaults were measured on this project's 2-core CPU (see README, "Fine-tuning"): they keep a
catalogue of ~10,000 products under 15 minutes, and ``time_budget_s`` stops the training early (and
says so in finetune.json) on a slower or busier machine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Targets = Literal["attention", "attention+ffn"]
SOURCES = ("judged", "generated", "similar")

# LoRA target modules of a BERT-style encoder (peft matches them as suffixes of module names).
TARGET_MODULES: dict[str, list[str]] = {
    "attention": ["query", "key", "value"],
    "attention+ffn": [
        "query",
        "key",
        "value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ],
}


class FinetuneConfig(BaseModel):
    """How to train: LoRA shape, contrastive loss, the pair mix, lengths, validation and budgets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(150, ge=1, le=100_000)  # optimiser steps at most (early stopping may end sooner)
    seed: int = 0
    batch_size: int = Field(32, ge=2, le=1024)  # queries per step; in-batch negatives come with them
    learning_rate: float = Field(3e-4, gt=0.0, le=0.1)
    warmup: float = Field(0.1, ge=0.0, lt=1.0)  # share of the steps with a linear warm-up
    rank: int = Field(16, ge=1, le=256)
    alpha: int = Field(32, ge=1)  # LoRA scaling is alpha / rank
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    targets: Targets = "attention"
    # LoRA on the top N transformer layers only (0: every layer); the layers below run without
    # gradients, so a step's backward pass stops where the adapters start and costs less
    top_layers: int = Field(0, ge=0, le=256)
    temperature: float = Field(0.05, gt=0.0, le=1.0)  # softmax temperature (scale = 1 / temperature)
    learn_temperature: bool = False  # learn the scale, starting from 1 / temperature
    hard_negatives: int = Field(1, ge=0, le=8)  # per query, besides the in-batch ones
    dense_negatives: bool = True  # also mine the base model's own near misses
    dense_skip: int = Field(0, ge=0, le=1000)  # neighbours skipped first (likely unjudged positives)
    dense_depth: int = Field(30, ge=1, le=1000)  # how deep the near misses are looked for
    mine_pool: int = Field(60_000, ge=100)  # products searched for near misses (a seeded sample beyond)
    # relative shares of the steps per pair source (renormalised over the sources present)
    mix_judged: float = Field(3.0, ge=0.0)
    mix_generated: float = Field(2.0, ge=0.0)
    mix_similar: float = Field(2.0, ge=0.0)
    positives: Literal["top", "top-third"] = "top"  # judged products that count as positives
    short_loss: bool = True  # also train the query against the short (similar-template) text
    query_max_length: int = Field(32, ge=4, le=512)
    doc_max_length: int = Field(128, ge=8, le=512)
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5)  # of the training queries, never trained on
    val_queries: int = Field(200, ge=0)  # at most this many held-out queries
    val_pool: int = Field(600, ge=10)  # products each validation ranks
    validate_every: int = Field(0, ge=0)  # steps between validations (0: about 5 per run)
    patience: int = Field(2, ge=1)  # validations without improvement before stopping
    select_best: bool = True  # keep the adapter of the best validation (the base model included)
    time_budget_s: float | None = Field(840.0, gt=0)  # wall-clock cap for the whole fine-tune
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...

    def mix(self, available: set[str]) -> dict[str, float]:
        """The share of steps per pair source present (summing to 1); empty when none is present."""
        raw = {"judged": self.mix_judged, "generated": self.mix_generated, "similar": self.mix_similar}
        kept = {s: w for s, w in raw.items() if s in available and w > 0}
        total = sum(kept.values())
        return {s: w / total for s, w in kept.items()} if total else {}

    def every(self) -> int:
        return self.validate_every or max(1, self.steps // 5)
