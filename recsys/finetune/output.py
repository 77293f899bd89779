"""The fine-tuned model directory: a complete sentence-transformers directory with the LoRA adapters merged
into the weights, plus ``finetune.json`` (what it was trained from and how), whose hash is part of the
model's identity (:class:`~recsys.model.encoder.ModelSpec`).

Like an index version, it is written in a staging directory beside the target and renamed into
place, so a reader (``RECSYS_MODEL_DIR``) never sees half a model.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from recsys.errors import InvalidRequestError
from recsys.model.encoder import FINETUNE_FILE, ModelSpec
from recsys.model.templates import Template

FORMAT = 1
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
)
DEFAULT_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]
POOLING_KEYS = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


class FinetuneRecord(BaseModel):
    """``finetune.json``: the base model, the data (with hashes), the knobs and what validation saw."""

    format: int = FORMAT
    base_model: dict[str, str]  # name, identity, path
    template: dict[str, str]  # name, hash, query instruction
    data: dict[str, Any]  # catalogue / queries / qrels: path, sha256, counts; similar_same
    pairs: dict[str, Any]  # examples per source, hard negatives, validation queries
    config: dict[str, Any]  # every FinetuneConfig knob
    training: dict[str, Any]  # steps run, best step, why it stopped, seconds, device, lengths, versions
    validation: list[dict[str, float]]  # nDCG@10 on the held-out training queries per validation
    created_at: str


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse to replace an existing directory unless asked (a served model must not change under it)."""
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise InvalidRequestError(
            f"{out} exists; choose another --out (or pass --force to replace it)", param="out"
        )


def write_model_dir(
    out: Path,
    model: Any,
    base_dir: Path,
    spec: ModelSpec,
    template: Template,
    record: FinetuneRecord,
    overwrite: bool = False,
) -> Path:
    """Write the merged ``model`` as a complete model directory at ``out`` (staged, then renamed)."""
    out = Path(out)
    check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.staging-{uuid.uuid4().hex[:8]}")
    try:
        model.save_pretrained(staging, safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (base_dir / name).is_file():
                shutil.copyfile(base_dir / name, staging / name)
        modules = _json(base_dir / "modules.json") or DEFAULT_MODULES
        (staging / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
        pooling_dir = str(
            next(
                (m.get("path") or "1_Pooling" for m in modules if str(m.get("type", "")).endswith("Pooling")),
                "1_Pooling",
            )
        )
        pooling = _json(base_dir / pooling_dir / "config.json") or {
            "word_embedding_dimension": spec.dim,
            **{key: mode == spec.pooling for mode, key in POOLING_KEYS.items()},
        }
        (staging / pooling_dir).mkdir(parents=True, exist_ok=True)
        (staging / pooling_dir / "config.json").write_text(json.dumps(pooling, indent=2), encoding="utf-8")
        st_config = _json(base_dir / "sentence_bert_config.json") or {}
        st_config["max_seq_length"] = spec.max_length
        (staging / "sentence_bert_config.json").write_text(json.dumps(st_config, indent=2), encoding="utf-8")
        (staging / "config_sentence_transformers.json").write_text(
            json.dumps(_st_prompts(base_dir, template), indent=2), encoding="utf-8"
        )
        (staging / FINETUNE_FILE).write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def read_record(model_dir: Path) -> FinetuneRecord | None:
    """The ``finetune.json`` of a model directory; None for a model that was not fine-tuned here."""
    raw = _json(Path(model_dir) / FINETUNE_FILE)
    return None if raw is None else FinetuneRecord.model_validate(raw)


def _st_prompts(base_dir: Path, template: Template) -> dict[str, Any]:
    """The base's sentence-transformers config, with the template's query instruction as a named prompt
    (``recsys_query``: what ``encode(..., prompt_name="recsys_query")`` prepends). The ``query`` and
    ``document`` prompts, which recsys itself prepends, stay the base model's: the template already
    carries the instruction."""
    config = _json(base_dir / "config_sentence_transformers.json") or {}
    prompts = dict(config.get("prompts") or {})
    prefix, _, suffix = template.query.partition("{query}")
    if not suffix.strip():
        prompts["recsys_query"] = prefix
    config["prompts"] = prompts
    config.setdefault("default_prompt_name", None)
    return config


def _swap(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    if not out.exists():
        os.replace(staging, out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
