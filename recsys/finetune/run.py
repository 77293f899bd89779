"""What ``recsys finetune`` and the ``recsys.finetune`` task do: pairs → hard negatives → LoRA training →
merged model directory with its ``finetune.json``. The edges pass settings, the template and callbacks
for progress; nothing here knows who called it."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys.finetune.config import FinetuneConfig
from recsys.finetune.output import FinetuneRecord, check_target, write_model_dir
from recsys.finetune.prepare import FinetuneData, Phase, prepare
from recsys.finetune.train import Progress, train
from recsys.model.encoder import ModelSpec
from recsys.model.templates import Template
from recsys.settings import Settings

__all__ = ["FinetuneData", "FinetuneResult", "Phase", "finetune"]

WRITE_RESERVE_S = 30.0  # of the time budget, kept for merging and writing the directory


@dataclass(frozen=True)
class FinetuneResult:
    out: Path
    record: FinetuneRecord
    identity: str  # the fine-tuned model's identity (what an index built with it records)
    seconds: dict[str, float] = field(default_factory=dict)


def finetune(
    data: FinetuneData,
    out: Path,
    *,
    settings: Settings,
    template: Template,
    config: FinetuneConfig | None = None,
    progress: Progress | None = None,
    phase: Phase | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune the model of ``settings`` (``RECSYS_MODEL_DIR``) on ``data`` and write it to ``out``."""
    config = config or FinetuneConfig()
    started = time.monotonic()
    budget = config.time_budget_s
    deadline = None if budget is None else started + max(budget - WRITE_RESERVE_S, 1.0)
    say = phase or (lambda text: None)
    data.check()
    check_target(Path(out), overwrite)
    ready = prepare(data, settings=settings, template=template, config=config, phase=phase)
    seconds = ready.seconds

    say("training")
    trained = train(
        ready.base_dir,
        ready.spec,
        ready.corpus,
        ready.train_set,
        ready.validation,
        config,
        lengths=ready.lengths,
        threads=settings.torch_threads,
        deadline=deadline,
        progress=progress,
    )
    seconds["training"] = trained.seconds

    say("writing")
    began = time.monotonic()
    seconds["total"] = round(time.monotonic() - started, 2)
    spec = ready.spec
    record = FinetuneRecord(
        base_model={"name": spec.name, "identity": spec.identity, "path": str(ready.base_dir)},
        template={"name": template.name, "hash": template.hash, "query": template.query},
        data=_data_facts(data, ready.products, ready.rejected),
        pairs=ready.counts,
        config=config.model_dump(),
        training={
            "steps": trained.steps,
            "best_step": trained.best_step,
            "stopped": trained.stopped,
            "improved": _improved(trained.history, trained.best_step),
            "device": trained.device,
            "threads": settings.torch_threads,
            "lengths": ready.lengths,
            "final_scale": trained.scale,
            "seconds": dict(seconds),  # the directory's record; the result's adds the writing time
            "versions": _versions(),
        },
        validation=trained.history,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_model_dir(Path(out), trained.model, ready.base_dir, spec, template, record, overwrite)
    seconds["writing"] = round(time.monotonic() - began, 2)
    say("done")
    return FinetuneResult(Path(out), record, ModelSpec.read(Path(out)).identity, seconds)


def kept_score(history: list[dict[str, float]], step: int) -> float | None:
    """The validation nDCG@10 of the adapter kept at ``step`` (0: the base model); None if not validated."""
    return next((h["ndcg@10"] for h in history if h["step"] == step), None)


def _improved(history: list[dict[str, float]], best_step: int) -> bool:
    base, kept = kept_score(history, 0), kept_score(history, best_step)
    return base is not None and kept is not None and kept > base


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _data_facts(data: FinetuneData, products: int, rejected: int) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "catalogue": {
            "path": str(Path(data.catalogue).resolve()),
            "sha256": file_digest(data.catalogue),
            "products": products,
            "rejected": rejected,
        },
        "similar_same": list(data.similar_same),
    }
    for name in ("queries", "qrels"):
        path = getattr(data, name)
        facts[name] = (
            None if path is None else {"path": str(Path(path).resolve()), "sha256": file_digest(path)}
        )
    return facts


def _versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
