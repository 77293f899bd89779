"""Text encoders: the transformer one for real use, and the interface the rest of the core sees.

Everything about the model (pooling, normalisation, maximum length, query/document prefixes) is read
from the model directory's own sentence-transformers files, so any local Hugging Face model directory
works by setting ``RECSYS_MODEL_DIR``. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recsys.errors import ModelError
from recsys.model.tokenizer import Tokenize, load_tokenizer

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
BATCH_TOKENS = 8192  # padded tokens per forward pass when embedding documents
FINETUNE_FILE = "finetune.json"  # written by ``recsys finetune``: part of the identity
Progress = Callable[[int], None]
Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]  # token ids and mask -> vectors
Hidden = Callable[[Any, Any], Any]  # token ids and mask (torch tensors) -> the last hidden state


class Encoder(Protocol):
    """Turns text into unit-length float32 vectors."""

    @property
    def identity(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def query_identity(self) -> str:
        """What query vectors depend on (the identity, plus any lossy query-path option)."""
        ...

    @property
    def document_identity(self) -> str:
        """What document vectors depend on (the identity, plus any lossy document-path option)."""
        ...

    @property
    def runtime(self) -> str:
        """What queries run on now ("torch", "onnx", ...)."""
        ...

    @property
    def fallback(self) -> str | None:
        """Why queries do not run on the configured runtime, once that happened; None while they do."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelSpec:
    """What the model directory declares about itself."""

    path: Path
    name: str
    dim: int
    max_length: int
    pooling: str  # "mean", "cls", "max" or "lasttoken"
    normalize: bool
    query_prefix: str
    document_prefix: str
    identity: str
    # what the directory's finetune.json says (base model, data hashes, steps, seed, validation); None
    # for a model that was not fine-tuned here. Its hash is folded into ``identity``.
    finetune: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    kind: str = ""  # config.json's model_type ("bert" for all-MiniLM-L6-v2)

    @property
    def finetuned(self) -> bool:
        return self.finetune is not None

    @classmethod
    def read(cls, path: Path) -> ModelSpec:
        path = Path(path)
        config = _read_json(path / "config.json")
        if config is None:
            raise ModelError(f"{path} is not a Hugging Face model directory (no config.json)")
        weights = next((path / f for f in WEIGHT_FILES if (path / f).is_file()), None)
        if weights is None:
            raise ModelError(f"{path} has no weights ({' or '.join(WEIGHT_FILES)})")
        modules = _read_json(path / "modules.json") or []
        pooling_dir = next(
            (m.get("path", "") for m in modules if m.get("type", "").endswith("Pooling")), None
        )
        pooling_cfg = _read_json(path / (pooling_dir or "1_Pooling") / "config.json") or {}
        pooling = "mean"
        for mode, key in (
            ("cls", "pooling_mode_cls_token"),
            ("max", "pooling_mode_max_tokens"),
            ("lasttoken", "pooling_mode_lasttoken"),
            ("mean", "pooling_mode_mean_tokens"),
        ):
            if pooling_cfg.get(key):
                pooling = mode
                break
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules) or not modules
        st_config = _read_json(path / "sentence_bert_config.json") or {}
        max_length = int(
            st_config.get("max_seq_length") or min(config.get("max_position_embeddings", 512), 512)
        )
        prompts = (_read_json(path / "config_sentence_transformers.json") or {}).get("prompts") or {}
        dim = int(pooling_cfg.get("word_embedding_dimension") or config.get("hidden_size") or 0)
        digest = hashlib.sha256()
        digest.update(json.dumps([config, pooling, normalize, max_length, prompts], sort_keys=True).encode())
        digest.update(_file_digest(weights).encode())
        finetune = _read_json(path / FINETUNE_FILE)
        if finetune is not None:  # two fine-tunes differ in identity even where their weights agree
            digest.update(b"finetune\x00" + _file_digest(path / FINETUNE_FILE).encode())
        return cls(
            path=path,
            name=path.parent.name if path.name == "model" else path.name,
            dim=dim,
            max_length=max_length,
            pooling=pooling,
            normalize=normalize,
            query_prefix=str(prompts.get("query", "")),
            document_prefix=str(prompts.get("document", prompts.get("passage", ""))),
            identity=digest.hexdigest()[:16],
            finetune=finetune if isinstance(finetune, dict) else None,
            kind=str(config.get("model_type", "")),
        )


class TransformerEncoder:
    """The transformer encoder: torch (or ONNX Runtime, see ``document_precision`` and
    :mod:`recsys.model.onnxquery`). The model loads on first use, so forking servers can import this."""

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = 0,
        batch_size: int = 32,
        batch_tokens: int = BATCH_TOKENS,
        document_precision: str = "fp32",
        document_tokens: int = 0,
        onnx_dir: Path | None = None,
    ) -> None:
        self.spec = ModelSpec.read(model_dir)
        # 0: the model's own maximum, as for queries
        self.document_tokens = min(document_tokens or self.spec.max_length, self.spec.max_length)
        self.threads = threads
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.document_precision = resolve_precision(document_precision, onnx_dir is not None, self.spec.kind)
        self.onnx_dir = onnx_dir
        self._models: dict[bool, Any] = {}  # bf16 or not -> the torch model, loaded on first use
        self._tokenizers: dict[int, Tokenize] = {}  # by the length ids are cut to
        self._documents: Any = None  # the ONNX Runtime session of int8 documents, made on first use
        self._lock = threading.Lock()
        self._documents_lock = threading.Lock()

    @property
    def identity(self) -> str:
        return self.spec.identity

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def query_identity(self) -> str:
        return self.spec.identity

    @property
    def document_identity(self) -> str:
        """What document vectors depend on: bf16 ones (cosine 0.9999 to float32), int8 ones (0.996) and
        ones cut shorter than the model's maximum differ from float32 ones, so the embedding cache keeps
        them apart."""
        parts = [self.spec.identity]
        if self.document_precision != "fp32":
            parts.append(self.document_precision)
        if self.document_tokens < self.spec.max_length:
            parts.append(f"t{self.document_tokens}")
        return "-".join(parts)

    @property
    def runtime(self) -> str:
        return "torch"

    @property
    def fallback(self) -> str | None:
        return None

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = [self.spec.query_prefix + t for t in texts]
        return self._encode(self.tokenize(texts), None, self._torch_forward(False))

    def encode_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        ids = self.tokenize([self.spec.document_prefix + t for t in texts], self.document_tokens)
        if self.document_precision == "int8":  # the session runs each call on one core
            streams = self.threads or _cores()
            return self._encode_streams(ids, progress, self._onnx_forward(), streams)
        return self._torch_streams(ids, progress, self._torch_forward(self.document_precision == "bf16"))

    def model(self, bf16: bool = False) -> Hidden:
        """The torch model (token ids and mask -> last hidden state), loaded on first use: BERT-type
        models in :mod:`recsys.model.bert`, others through transformers. ``bf16``: its weights held in
        bf16 (documents on CPUs that multiply bf16 natively: 6% faster than autocast, measured)."""
        with self._lock:
            if bf16 not in self._models:
                import torch

                from recsys.model import bert

                if self.threads:
                    torch.set_num_threads(self.threads)
                model: Any = bert.load(self.spec.path)
                if model is None:
                    model = _transformers_model(self.spec.path)
                self._models[bf16] = model.to(torch.bfloat16) if bf16 else model
        return self._models[bf16]

    def tokenize(self, texts: Sequence[str], max_length: int = 0) -> list[list[int]]:
        """Token ids of ``texts`` (prefixes included), cut to ``max_length`` (0: the model's maximum);
        the ONNX Runtime paths need nothing else, so the torch model is not loaded for them."""
        length = min(max_length or self.spec.max_length, self.spec.max_length)
        tokenize = self._tokenizers.get(length)  # loaded once: no lock on a query's path after that
        if tokenize is None:
            with self._lock:
                if length not in self._tokenizers:
                    self._tokenizers[length] = load_tokenizer(self.spec.path, length, self.spec.kind)
                tokenize = self._tokenizers[length]
        return tokenize(texts)

    def _encode(
        self, ids: list[list[int]], progress: Progress | None, forward: Forward, run: Any = map
    ) -> np.ndarray:
        """Token ``ids`` in batches of similar length, longest first, each run through ``forward`` by
        ``run`` (``map``, or a thread pool's), the vectors put back in order."""
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        batches = token_batches([len(x) for x in ids], self.batch_tokens, self.batch_size)
        done = run(lambda batch: forward(*padded([ids[i] for i in batch])), batches)
        for batch, vectors in zip(batches, done, strict=True):
            out[batch] = vectors
            if progress is not None:
                progress(len(batch))
        return out

    def _encode_streams(
        self,
        ids: list[list[int]],
        progress: Progress | None,
        forward: Forward,
        streams: int,
        start: Callable[[], None] | None = None,
    ) -> np.ndarray:
        """As :meth:`_encode`, with the batches shared by ``streams`` threads (each begun with ``start``),
        each running its forward passes on one core: faster than every operation split over all cores,
        since a BERT layer is many small operations each of which pays to split (on 2 cores, measured on
        crowdflower's documents: torch 15-24%, ONNX Runtime int8 7-12%). The same vectors as one stream."""
        if streams < 2:
            return self._encode(ids, progress, forward)
        with ThreadPoolExecutor(streams, "encode", start) as pool:
            return self._encode(ids, progress, forward, pool.map)

    def _torch_streams(self, ids: list[list[int]], progress: Progress | None, forward: Forward) -> np.ndarray:
        """:meth:`_encode_streams` on as many threads as torch may use, each limited to one core."""
        import torch

        streams = self.threads or torch.get_num_threads()
        try:
            return self._encode_streams(ids, progress, forward, streams, lambda: torch.set_num_threads(1))
        finally:
            torch.set_num_threads(streams)  # what threads started later take, not the pool's 1

    def _torch_forward(self, bf16: bool) -> Forward:
        import torch

        # bf16 matrix products on CPUs that have them (AVX-512 BF16, AMX): about 1.5x the texts a second
        model = self.model(bf16)
        spec = self.spec

        def forward(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                hidden = model(torch.from_numpy(input_ids), torch.from_numpy(mask))
                vectors = pool(hidden.float(), torch.from_numpy(mask), spec.pooling)
                if spec.normalize:
                    vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                result: np.ndarray = vectors.float().numpy()
            return result

        return forward

    def _onnx_forward(self) -> Forward:
        """Documents on ONNX Runtime with int8 weights but each layer's feed-forward output in float32
        (see :func:`recsys.model.onnxquery.export`), exported on first use."""
        from recsys.model.onnxquery import EXPORT_VERSION, exported, session

        with self._documents_lock:
            if self._documents is None:
                assert self.onnx_dir is not None
                path = self.onnx_dir / f"{self.identity}-v{EXPORT_VERSION}-documents-int8.onnx"
                try:
                    exported(self, path, int8=True, ffn_outputs_fp32=True)
                    self._documents = session(path, 1)  # one core a stream
                except Exception as exc:
                    raise ModelError(
                        f"int8 documents: could not export {self.spec.name} to ONNX Runtime at {path} "
                        f"({type(exc).__name__}: {exc}); set RECSYS_DOCUMENT_PRECISION=fp32"
                    ) from exc
        documents = self._documents

        def forward(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            result: np.ndarray = documents.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
            return result

        return forward


class _TransformersModel:
    """A transformers model behind :mod:`recsys.model.bert`'s interface (ids and mask -> hidden)."""

    def __init__(self, model: Any) -> None:
        self.model = model.eval()

    def __call__(self, input_ids: Any, mask: Any) -> Any:
        return self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state

    def to(self, dtype: Any) -> _TransformersModel:
        return _TransformersModel(self.model.to(dtype))


def _transformers_model(path: Path) -> _TransformersModel:
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return _TransformersModel(AutoModel.from_pretrained(path, local_files_only=True))


def _cores() -> int:
    """The cores this process may run on (all of the machine's where the OS cannot say)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def resolve_precision(asked: str, onnx: bool, kind: str = "bert") -> str:
    """The document precision ``asked`` means on this CPU: ``auto`` is bf16 where the CPU multiplies
    bf16 natively (AVX-512 BF16, AMX); else, for a BERT-type model (the kind it was measured on:
    1.6× float32's texts a second on AVX2, mean cosine 0.996), int8 on ONNX Runtime where that is
    available; else float32."""
    if asked != "auto":
        if asked == "int8" and not onnx:
            raise ModelError("int8 documents run on ONNX Runtime and need a directory for its model")
        return asked
    if bf16_supported():
        return "bf16"
    return "int8" if onnx and kind == "bert" and onnxruntime_available() else "fp32"


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def bf16_supported() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (elsewhere autocast to bf16 would be slower).
    Read from the kernel's CPU flags where there are some, so that a process whose documents and
    queries run on ONNX Runtime never imports torch; else asked of torch."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = next((line.split() for line in cpuinfo if line.startswith("flags")), None)
    except OSError:
        flags = None
    if flags is not None:
        return "avx512_bf16" in flags
    import torch

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe()) if probe is not None else False


def token_batches(lengths: Sequence[int], budget: int, most: int) -> list[list[int]]:
    """Positions grouped into batches of similar length, longest first, each at most ``budget`` padded
    tokens (batch size × its longest text) and ``most`` texts: far less padding than fixed-size batches
    of texts sorted by characters (measured: about 2× the texts a second on crowdflower)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget and len(batches[-1]) < most:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def padded(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id rows as one right-padded int64 matrix and its attention mask."""
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for n, row in enumerate(rows):
        ids[n, : len(row)] = row
        mask[n, : len(row)] = 1
    return ids, mask


def pool(hidden: Any, mask: Any, mode: str) -> Any:
    """Sentence vector from token states, as the model's pooling config says."""
    import torch

    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0]), last]
    expanded = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(expanded == 0, -1e9).max(dim=1).values
    return (hidden * expanded).sum(dim=1) / expanded.sum(dim=1).clamp(min=1e-9)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from None


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
