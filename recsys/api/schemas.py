"""What the API accepts and answers, declared once as pydantic models: APIFlask validates requests
with them and generates the OpenAPI document (``/openapi.json``) from them.

Request parameters are the core's own (:mod:`recsys.query.requests`), so the CLI checks the same
ranges; these add the admin bodies and the response shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from recsys.build.updates import MAX_BATCH


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Empty(Strict):
    """No parameters."""


class ReindexBody(Strict):
    catalogue: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = Field(
        None, description="catalogue path (default RECSYS_CATALOGUE_PATH)"
    )


class UpsertBody(Strict):
    products: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_BATCH, description="products in the catalogue format"
    )


class Stamped(BaseModel):
    """Every answer carries the served version and the time taken (also as X-Index-Version, X-Took-Ms)."""

    index_version: str | None = None
    took_ms: float


class Hit(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    score: float


class Intent(BaseModel):
    """What the query was understood to ask for (search with intent=on)."""

    model_config = ConfigDict(extra="allow")

    text: str = Field(description="the query left after taking out price phrases: what was searched")
    price_min: float | None = Field(None, description="a lower price bound the shopper typed (a filter)")
    price_max: float | None = Field(None, description="an upper price bound the shopper typed (a filter)")
    price_band: Literal["low", "high"] | None = Field(
        None, description="cheap/affordable/budget: low; premium/luxury/high-end: high (within each category)"
    )
    colour: str | None = None
    brand: str | None = None
    gender: str | None = None
    size: str | None = None
    material: str | None = None
    category: str | None = Field(None, description="a category name the query mentions")
    note: str | None = Field(None, description="what was not applied and why (a contradiction, say)")


class ResultPage(Stamped):
    results: list[Hit] = Field(description="products, best first, with every catalogue field but description")
    k: int
    offset: int
    count: int
    cached: bool
    intent: Intent | None = Field(None, description="search only")


class ProductReply(Stamped):
    product: dict[str, Any]


class IndexInfo(Stamped):
    version: str
    state_key: str = Field(description="the version plus the live delta's sequence: what caches key on")
    model: dict[str, Any]
    template: dict[str, Any]
    counts: dict[str, int]
    built_at: str
    delta: dict[str, int]
    cache: str
    query_runtime: str
    query_runtime_fallback: str | None = None


class Health(Stamped):
    status: str


class Readiness(Stamped):
    status: str = Field(description="ready; degraded (no cache, or queries fell back to torch); unavailable")
    index: str
    cache: str
    cache_reachable: bool | None = None
    query_runtime: str | None = None
    query_runtime_fallback: str | None = None
    refused: dict[str, str] | None = Field(
        None, description="a published version that failed its checks at load; the previous one serves"
    )


class Started(Stamped):
    task_id: str
    status: str
    catalogue: str | None = None


class JobReply(Stamped):
    task_id: str
    task: dict[str, Any]


class DeltaReply(Stamped):
    model_config = ConfigDict(extra="allow")


class Purged(Stamped):
    purged: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    param: str | None = None


class ErrorReply(Stamped):
    error: ErrorDetail
