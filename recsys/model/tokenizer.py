"""Token ids for texts, without the model.

The ONNX Runtime paths (every query by default, and int8 documents) need only token ids, so a process
that runs them never loads the torch model. For a BERT-type model with a ``tokenizer.json`` (such as
the default) the ids come from the ``tokenizers`` library directly: the same ids transformers' fast
tokenizer gives (it wraps that file), without importing torch and transformers, about 4 s of a
build's start and the torch model's memory in each serving worker. Other models use transformers'
``AutoTokenizer``, whose model classes may adjust the file's post-processing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

Tokenize = Callable[[Sequence[str]], list[list[int]]]  # texts -> token ids, truncated
DIRECT_KINDS = {"bert"}  # model types whose tokenizer.json is used as it is (the kind tested)
# tokenizer_config.json settings that transformers' BERT tokenizer applies over tokenizer.json's normaliser
NORMALISER_SETTINGS = {
    "do_lower_case": "lowercase",
    "strip_accents": "strip_accents",
    "tokenize_chinese_chars": "handle_chinese_chars",
}


def load_tokenizer(path: Path, max_length: int, kind: str) -> Tokenize:
    """A function from texts to their token ids (special tokens included), each cut to ``max_length``."""
    text = _self_sufficient_file(path) if kind in DIRECT_KINDS else None
    if text is not None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(text)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        return lambda texts: [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]

    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def tokenize(texts: Sequence[str]) -> list[list[int]]:
        ids: list[list[int]] = auto(list(texts), truncation=True, max_length=max_length)["input_ids"]
        return ids

    return tokenize


def _self_sufficient_file(path: Path) -> str | None:
    """The text of ``tokenizer.json`` if it alone gives transformers' ids: it is there and its normaliser
    agrees with what ``tokenizer_config.json`` asks for (transformers would rebuild the normaliser
    otherwise); else None."""
    try:
        text = (path / "tokenizer.json").read_text(encoding="utf-8")
        normaliser = json.loads(text).get("normalizer") or {}
        config_path = path / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    except (OSError, ValueError, AttributeError):
        return None
    if normaliser.get("type") != "BertNormalizer":
        agrees = not any(key in config for key in NORMALISER_SETTINGS)
    else:
        agrees = all(
            normaliser.get(ours) == config[key] for key, ours in NORMALISER_SETTINGS.items() if key in config
        )
    return text if agrees else None


def whole_words(path: Path) -> frozenset[str]:
    """The lowercase words the model's tokenizer holds whole (WordPiece's entries without ``##``,
    SentencePiece's and byte-level BPE's word-initial pieces without their marker): words the model
    knows, which spelling correction leaves alone. Empty when the directory has no tokenizer file."""
    vocab: list[str] = []
    try:
        data = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
        entries = (data.get("model") or {}).get("vocab") or []
        vocab = [e[0] if isinstance(e, list) else str(e) for e in entries]
    except (OSError, ValueError, AttributeError):
        try:
            vocab = (path / "vocab.txt").read_text(encoding="utf-8").split()
        except OSError:
            return frozenset()
    words = (entry.lstrip("\u2581\u0120") for entry in vocab if not entry.startswith("##"))
    return frozenset(word.lower() for word in words if len(word) > 1 and word.isascii() and word.isalpha())
