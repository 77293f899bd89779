"""The training loop: LoRA adapters (peft) on the encoder, InfoNCE with in-batch and hard negatives,
validation on held-out training queries with early stopping, then the adapters merged into the weights.

Deterministic: every random draw comes from generators seeded with ``config.seed`` (``random.Random``
for the batches, torch's generator, forked so the caller's state is untouched, for LoRA's initial
weights and dropout) and, on CPU, torch's deterministic algorithms; the same seed, data and thread
count give the same weights bit for bit.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys.errors import InvalidRequestError
from recsys.finetune.config import TARGET_MODULES, FinetuneConfig
from recsys.finetune.device import deterministic, resolve_device
from recsys.finetune.encoding import Corpus, Tower
from recsys.finetune.loss import MAX_SCALE, info_nce, scale_parameter
from recsys.finetune.pairs import Example
from recsys.finetune.validation import Validation
from recsys.model.encoder import ModelSpec

log = logging.getLogger(__name__)
SHORT_CAP = 64  # tokens of a short (similar-template) text: attributes and title


@dataclass(frozen=True)
class StepReport:
    """Where training stands, after each step (the progress bar's and the job record's source)."""

    step: int
    steps: int
    loss: float
    validation: float | None  # the latest validation nDCG@10
    best: float | None  # the best so far (step 0 is the base model)


Progress = Callable[[StepReport], None]


@dataclass
class Trained:
    """The merged model (on CPU, eval mode), its tokenizer and how the training went."""

    model: Any
    tokenizer: Any
    steps: int
    best_step: int
    stopped: str  # "steps", "early_stopping" or "time_budget"
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    scale: float = 0.0


class Batches:
    """Batches of one source at a time, the source drawn by the mix; each source's examples are
    shuffled and cycled through (seeded)."""

    def __init__(
        self, train: dict[str, list[Example]], mix: dict[str, float], size: int, rng: random.Random
    ) -> None:
        self.sources = [s for s in mix if train.get(s)]
        self.weights = [mix[s] for s in self.sources]
        self.train = train
        self.size = size
        self.rng = rng
        self._order: dict[str, list[int]] = {s: [] for s in self.sources}

    def next(self) -> list[Example]:
        source = self.rng.choices(self.sources, weights=self.weights)[0]
        examples = self.train[source]
        batch: list[Example] = []
        while len(batch) < min(self.size, len(examples)):
            if not self._order[source]:
                order = list(range(len(examples)))
                self.rng.shuffle(order)
                self._order[source] = order
            batch.append(examples[self._order[source].pop()])
        return batch


def train(
    base_dir: Path,
    spec: ModelSpec,
    corpus: Corpus,
    examples: dict[str, list[Example]],
    validation: Validation,
    config: FinetuneConfig,
    *,
    lengths: dict[str, int],
    threads: int = 0,
    deadline: float | None = None,
    progress: Progress | None = None,
) -> Trained:
    """Train LoRA adapters on ``examples`` and return the model with them merged into its weights.

    ``lengths``: token caps for ``query``, ``doc`` and ``short`` texts; ``threads``: torch's CPU threads
    (0: as they are). ``deadline`` (a ``time.monotonic()`` value): training stops in time for one last
    validation before it.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(config.device)
    mix = config.mix({s for s, e in examples.items() if e})
    if not mix:
        raise InvalidRequestError("no training pairs: the catalogue and queries gave none", param="catalogue")
    rng = random.Random(config.seed)
    started = time.monotonic()
    with deterministic(config.seed, device):
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
        base = AutoModel.from_pretrained(base_dir, local_files_only=True)
        layers = int(getattr(base.config, "num_hidden_layers", 0) or 0)
        lora = LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.lora_dropout,
            target_modules=TARGET_MODULES[config.targets],
            layers_to_transform=(
                list(range(layers - config.top_layers, layers)) if 0 < config.top_layers < layers else None
            ),
            bias="none",
        )
        model = get_peft_model(base, lora).to(device)
        model.train()
        tower = Tower(tokenizer, model, spec, device)
        log_scale = scale_parameter(config.temperature, config.learn_temperature).to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": trainable, "lr": config.learning_rate}]
        if config.learn_temperature:
            log_scale = torch.nn.Parameter(log_scale.detach())
            groups.append({"params": [log_scale], "lr": 1e-2, "weight_decay": 0.0})
        optimiser = torch.optim.AdamW(groups, weight_decay=0.01)
        warm = max(1, int(config.steps * config.warmup))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser,
            lambda s: min((s + 1) / warm, max(0.0, (config.steps - s) / max(1, config.steps - warm))),
        )
        loop = _Loop(tower, corpus, validation, config, lengths, rng, log_scale)
        result = loop.run(
            Batches(examples, mix, config.batch_size, rng), optimiser, schedule, deadline, progress
        )
        if config.select_best and loop.best_state is not None and loop.best_step != result[0]:
            _load_trainable(model, loop.best_state)
        merged = model.merge_and_unload().to("cpu").eval()
    steps, stopped = result
    return Trained(
        merged,
        tokenizer,
        steps=steps,
        best_step=loop.best_step if config.select_best else steps,
        stopped=stopped,
        history=loop.history,
        seconds=round(time.monotonic() - started, 2),
        device=device,
        scale=round(float(log_scale.detach().exp().clamp(max=MAX_SCALE)), 4),
    )


class _Loop:
    """One training run's state: steps, validations, the best adapter so far."""

    def __init__(
        self,
        tower: Tower,
        corpus: Corpus,
        validation: Validation,
        config: FinetuneConfig,
        lengths: dict[str, int],
        rng: random.Random,
        log_scale: Any,
    ) -> None:
        self.tower = tower
        self.corpus = corpus
        self.validation = validation
        self.config = config
        self.lengths = lengths
        self.rng = rng
        self.log_scale = log_scale
        self.history: list[dict[str, float]] = []
        self.best: float | None = None
        self.best_step = 0
        self.best_state: dict[str, Any] | None = None
        self.started = time.monotonic()

    def run(
        self,
        batches: Batches,
        optimiser: Any,
        schedule: Any,
        deadline: float | None,
        progress: Progress | None,
    ) -> tuple[int, str]:
        import torch

        config = self.config
        every = config.every()
        validate = bool(self.validation.groups)
        last_score = self._validate(0, None) if validate else None
        stale, step, stopped, losses, last_loss = 0, 0, "steps", [], 0.0
        step_s = val_s = 0.0
        while step < config.steps:
            if deadline is not None and step and time.monotonic() + step_s + val_s > deadline:
                stopped = "time_budget"
                break
            began = time.monotonic()
            loss = self._loss(batches.next())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in optimiser.param_groups for p in g["params"]], 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            last_loss = float(loss.detach())
            losses.append(last_loss)
            step_s = time.monotonic() - began
            if validate and (step % every == 0 or step == config.steps):
                began = time.monotonic()
                before = self.best
                last_score = self._validate(step, sum(losses) / len(losses))
                losses = []
                val_s = time.monotonic() - began
                stale = 0 if before is None or (self.best or 0.0) > before else stale + 1
                if stale >= config.patience and step < config.steps:
                    stopped = "early_stopping"
            if progress is not None:
                progress(StepReport(step, config.steps, last_loss, last_score, self.best))
            if stopped == "early_stopping":
                break
        if validate and (not self.history or self.history[-1]["step"] != step):
            self._validate(step, sum(losses) / len(losses) if losses else None)
        return step, stopped

    def _validate(self, step: int, loss: float | None) -> float:
        score = self.validation.score(
            self.tower, self.corpus, self.lengths["query"], max(self.lengths["doc"], self.lengths["short"])
        )
        entry = {
            "step": float(step),
            "ndcg@10": round(score, 4),
            "seconds": round(time.monotonic() - self.started, 1),
        }
        if loss is not None:
            entry["loss"] = round(loss, 4)
        self.history.append(entry)
        if self.best is None or score > self.best + 1e-4:
            self.best, self.best_step = score, step
            self.best_state = {
                name: p.detach().clone() for name, p in self.tower.model.named_parameters() if p.requires_grad
            }
        log.info(
            "fine-tune step %d: validation nDCG@10 %.4f (best %.4f at step %d)",
            step,
            score,
            self.best,
            self.best_step,
        )
        return score

    def _loss(self, batch: list[Example]) -> Any:
        import torch

        corpus, lengths = self.corpus, self.lengths
        columns = [e.positive for e in batch]
        for e in batch:
            columns += self._negatives(e)
        positives = list(range(len(batch)))
        masked = [[j for j, p in enumerate(columns) if p in e.known or p == e.positive] for e in batch]
        if batch[0].kind == "similar":
            anchors = self.tower.encode([corpus.short[e.anchor] for e in batch], lengths["short"])
            docs = self.tower.encode([corpus.short[p] for p in columns], lengths["short"])
            return info_nce(anchors, docs, positives, masked, self.log_scale)
        queries = self.tower.encode([corpus.query(e.query) for e in batch], lengths["query"])
        docs = self.tower.encode([corpus.full[p] for p in columns], lengths["doc"])
        loss = info_nce(queries, docs, positives, masked, self.log_scale)
        if self.config.short_loss:
            # a product whose short text is its full text (titles only) is encoded once
            differ = [j for j, p in enumerate(columns) if corpus.short[p] != corpus.full[p]]
            shorts = docs
            if differ:
                encoded = self.tower.encode([corpus.short[columns[j]] for j in differ], lengths["short"])
                shorts = docs.index_copy(0, torch.tensor(differ, device=docs.device), encoded)
            loss = (loss + info_nce(queries, shorts, positives, masked, self.log_scale)) / 2
        return loss

    def _negatives(self, e: Example) -> list[int]:
        """``hard_negatives`` products for ``e``: its mined or judged ones first, else random ones."""
        picked: list[int] = []
        pool = list(e.negatives)
        total = len(self.corpus.full)
        for _ in range(self.config.hard_negatives):
            if pool:
                picked.append(pool.pop(self.rng.randrange(len(pool))))
                continue
            for _attempt in range(20):
                j = self.rng.randrange(total)
                if j not in e.known and j != e.anchor:
                    picked.append(j)
                    break
        return picked


def _load_trainable(model: Any, state: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in state:
                p.copy_(state[name])
