"""What the API accepts and answers, declared once as pydantic models: APIFlask validates requests
with them and generates the OpenAPI document (``/openapi.json``) from them.

Request parameters are the core's own (:mod:`recsys.query.requests`), so the CLI checks the same
ranges; these add the admin bodies and the response shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from recsys.audit.service import FINDING_KINDS, MAX_PER_PAGE, PER_PAGE, check_kind
from recsys.build.updates import MAX_BATCH
from recsys.errors import InvalidRequestError
from recsys.query.facets import MAX_VALUES as MAX_FACET_VALUES
from recsys.query.requests import MAX_QUERY_CHARS, FilterFields


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
    corrections: dict[str, str] | None = Field(
        None,
        description="misspelt words as typed -> the catalogue words searched instead "
        '("Showing results for ..."); absent when nothing was corrected',
    )


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


class AuditQuery(Strict):
    """``GET /v1/audit``."""

    version: str | None = Field(None, description="an index version (default: the published one)")


class AuditFindingsQuery(AuditQuery):
    """``GET /v1/audit/findings``: one kind (or every defect), a page of them."""

    kind: str | None = Field(
        None,
        description=f"one of {', '.join(FINDING_KINDS)} (default: every defect, best first)",
        json_schema_extra={"enum": list(FINDING_KINDS)},
    )
    page: int = Field(1, ge=1, description="the page, from 1 to the answer's pages")
    per_page: int = Field(
        PER_PAGE, ge=1, le=MAX_PER_PAGE, description=f"findings per page, 1..{MAX_PER_PAGE}"
    )

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        """Out-of-range or malformed values are refused with the range, before pydantic sees them."""
        if not isinstance(data, dict):
            return data
        check_kind(data.get("kind"))
        out = dict(data)
        for name, low, high in (("page", 1, None), ("per_page", 1, MAX_PER_PAGE)):
            if name not in out:
                continue
            value = str(out[name]).strip()
            number = int(value) if value.lstrip("+").isdigit() else None
            if number is None or number < low or (high is not None and number > high):
                must = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
                raise InvalidRequestError(f"{name} must be {must}, got {out[name]!r}", param=name)
            out[name] = number
        return out


class AuditSummary(Stamped):
    model_config = ConfigDict(extra="allow")

    version: str
    created_at: str
    products: int
    counts: dict[str, int] = Field(description="findings per kind")
    clusters: int = Field(description="clusters found inside the large categories")
    thresholds: dict[str, Any]
    seconds: dict[str, float] = Field(description="time per check, and in total")


class AuditPage(Stamped):
    version: str
    kind: str | None
    page: int
    per_page: int
    pages: int
    total: int
    findings: list[dict[str, Any]] = Field(
        description="findings {kind, ids, score, evidence, suggested_category?, field?}, best first; "
        "clusters {kind: cluster, category, label, size, share, terms, examples, ids} for kind=cluster"
    )


# -- the playground's endpoints: facets (public), the index panel's admin reads -----------------------


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class FacetParams(FilterFields):
    """``GET /v1/facets``: the search's parameters less paging; no ``q`` counts the whole catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: Annotated[
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_QUERY_CHARS)] | None,
        BeforeValidator(_blank_is_none),
    ] = Field(
        None,
        description=f"the shopper's query (at most {MAX_QUERY_CHARS} characters); empty or absent: the "
        "facets of every product that passes the filters",
    )
    intent: Literal["on", "off"] = Field(
        "on", description="on: understand q as search does (its price bounds filter the matching set)"
    )


class FacetValue(BaseModel):
    value: str = Field(description="as the catalogue spells it; filters compare case-insensitively")
    count: int


class FacetValues(BaseModel):
    values: list[FacetValue] = Field(description=f"the most frequent first, at most {MAX_FACET_VALUES}")
    more: int = Field(description="distinct values left off the list")


class AttributeFacet(FacetValues):
    name: str = Field(description="the attribute, as attr.<name>=<value> filters it")


class CategoryFacet(BaseModel):
    path: list[str] = Field(description="root first; filter with category=<path joined by ' > '>")
    value: str
    depth: int = Field(description="0 for a root category")
    count: int


class PriceBucket(BaseModel):
    min: float = Field(description="price_min of the bucket (inclusive)")
    max: float | None = Field(description="its upper bound (exclusive); null: none")
    count: int


class PriceFacet(BaseModel):
    min: float | None
    max: float | None
    unpriced: int = Field(description="matching products without a price")
    buckets: list[PriceBucket] = Field(description="round-priced buckets of about equal size")


class Facets(BaseModel):
    total: int = Field(description="products in the matching set")
    category: list[CategoryFacet] = Field(description="every level of the tree, depth first")
    brand: FacetValues
    price: PriceFacet
    in_stock: dict[str, int] = Field(description="true, false and unknown")
    attributes: list[AttributeFacet] = Field(description="the attributes most mentioned first")


class FacetsReply(Stamped):
    matching: Literal["pool", "filtered"] = Field(
        description="pool: the search's candidate pool after filters (with q); filtered: every product "
        "that passes the filters (without q)"
    )
    filters: dict[str, Any] = Field(description="the filters applied, the intent's price bounds included")
    intent: Intent | None = Field(None, description="what q was understood to ask (intent=on)")
    facets: Facets


class LatestJob(Stamped):
    task_id: str
    task: dict[str, Any] = Field(description="the job's record: kind, status, phase, shards, texts embedded")


class ChartsQuery(Strict):
    version: str | None = Field(None, description="an index version (default: the published one)")


class Chart(BaseModel):
    name: str = Field(description="file name; GET /v1/audit/charts/<name> answers the PNG")
    bytes: int


class ChartList(Stamped):
    version: str
    charts: list[Chart]
