"""What a request may ask, declared once: the API validates and documents its parameters with these
models (``recsys/api``), the CLI checks its arguments with the same ones, and the engine trusts what
reaches it. A refusal is an :class:`~recsys.errors.InvalidRequestError` that names the parameter and
says what it must be.

Filters come as named parameters (``category``, ``brand``, ``price_min``, ``price_max``,
``in_stock``) and as ``attr.<name>=<value>`` for any attribute; :meth:`FilterFields.filters` turns
them into the engine's :class:`~recsys.query.filters.Filters`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from recsys.errors import InvalidRequestError
from recsys.query.filters import ATTR_PREFIX, Filters

DEFAULT_K = 10
MAX_K = 100
MAX_OFFSET = 1000
MAX_QUERY_CHARS = 512
MAX_ID_CHARS = 256
FILTER_NAMES = ("category", "brand", "price_min", "price_max", "in_stock")


def _scalar_text(value: Any) -> Any:
    """Attribute values may be JSON numbers; compare them as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float | int) and not isinstance(value, bool) and not math.isfinite(value):
        raise ValueError("not finite")
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity"):
        raise ValueError("not finite")
    return value


def _digits(value: Any) -> Any:
    """A query-string integer is digits only ("1.0" and "1e3" are refused, as a JSON float would be)."""
    if isinstance(value, str) and not value.strip().lstrip("+").isdigit():
        raise ValueError("not an integer")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), BeforeValidator(_scalar_text)]
Price = Annotated[float, BeforeValidator(_finite), Field(ge=0)]
QueryInt = Annotated[int, BeforeValidator(_digits)]
ProductId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
Query = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS)]

MUST = {
    "q": f"a non-empty search query of at most {MAX_QUERY_CHARS} characters",
    "k": f"an integer in 1..{MAX_K}",
    "offset": f"an integer in 0..{MAX_OFFSET}",
    "positive": f"a list of 1..{MAX_K} product ids (strings of 1..{MAX_ID_CHARS} characters)",
    "negative": f"a list of at most {MAX_K} product ids (strings of 1..{MAX_ID_CHARS} characters)",
    "filters": "a JSON object of filters",
    "category": "a category path such as 'Footwear > Boots'",
    "brand": "a non-empty brand name",
    "price_min": "a number >= 0",
    "price_max": "a number >= 0",
    "in_stock": "true or false",
    "intent": "on or off",
    "explain": "true or false",
    "attr": "a non-empty text value",
    "attributes": "an object of attribute names to non-empty text values",
}


class FilterFields(BaseModel):
    """Filters; every condition must hold. Text compares case-insensitively."""

    category: Text | list[Text] | None = Field(None, description="category path prefix, 'A > B'")
    brand: Text | None = Field(None, description="brand")
    price_min: Price | None = Field(None, description="lowest price")
    price_max: Price | None = Field(None, description="highest price")
    in_stock: bool | None = Field(None, description="stock status")
    attr: dict[str, Text] = Field(
        default={},
        description="attribute equality, given as attr.<name>=<value> for any attribute (attr.colour=red)",
        json_schema_extra={"x-key-pattern": r"^attr\..+$"},
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_attributes(cls, data: Any) -> Any:
        """``attr.<name>`` keys (and a JSON body's ``attributes`` object) become ``attr``."""
        if not isinstance(data, Mapping):
            return data
        out: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(key, str) and key.startswith(ATTR_PREFIX) and len(key) > len(ATTR_PREFIX):
                attributes[key[len(ATTR_PREFIX) :].lower()] = value
            elif key == "attributes" and isinstance(value, Mapping):
                attributes.update({str(k).lower(): v for k, v in value.items()})
            elif key == "attr":
                raise InvalidRequestError("give attribute filters as attr.<name>=<value>", param="attr")
            else:
                out[key] = value
        return {**out, "attr": attributes} if attributes else out

    @model_validator(mode="after")
    def _price_range(self) -> Any:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise InvalidRequestError("price_min must not exceed price_max", param="price_min")
        return self

    @property
    def filters(self) -> Filters:
        category = self.category
        path = category if isinstance(category, list) else (category or "").replace("/", ">").split(">")
        return Filters(
            category=tuple(p.strip() for p in path if p.strip()),
            brand=self.brand,
            price_min=self.price_min,
            price_max=self.price_max,
            in_stock=self.in_stock,
            attributes=dict(self.attr),
        )


class Page(BaseModel):
    """``k`` results from ``offset`` on."""

    k: QueryInt = Field(DEFAULT_K, ge=1, le=MAX_K, description=f"results per page, 1..{MAX_K}")
    offset: QueryInt = Field(0, ge=0, le=MAX_OFFSET, description=f"results to skip, 0..{MAX_OFFSET}")


class SearchParams(Page, FilterFields):
    """``GET /v1/search``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: Query = Field(description=f"the shopper's query, 1..{MAX_QUERY_CHARS} characters")
    intent: Literal["on", "off"] = Field(
        "on", description="on: understand prices, price intent and attributes in q; off: plain search"
    )
    explain: bool = Field(False, description="true: each result carries its score's pieces and the filters")


class SimilarParams(Page, FilterFields):
    """``GET /v1/products/<id>/similar``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BodyFilters(FilterFields):
    """The filters of a JSON body: the same names, ``attr.<name>`` keys or an ``attributes`` object."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RecommendBody(BaseModel):
    """``POST /v1/recommend``: products a shopper likes (and dislikes), a page and filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    positive: list[ProductId] = Field(min_length=1, max_length=MAX_K, description="product ids liked")
    negative: list[ProductId] = Field(default=[], max_length=MAX_K, description="product ids to avoid")
    k: StrictInt = Field(DEFAULT_K, ge=1, le=MAX_K, description=f"results per page, 1..{MAX_K}")
    offset: StrictInt = Field(0, ge=0, le=MAX_OFFSET, description=f"results to skip, 0..{MAX_OFFSET}")
    filters: BodyFilters = Field(default=BodyFilters(), description="the search filters")

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if len(self.positive) + len(self.negative) > MAX_K:
            raise InvalidRequestError(
                f"at most {MAX_K} product ids in positive and negative together", param="positive"
            )
        if set(self.positive) & set(self.negative):
            raise InvalidRequestError("a product id may not be both positive and negative", param="negative")
        return self


M = TypeVar("M", bound=BaseModel)


def check(model: type[M], data: Any) -> M:
    """``data`` validated as ``model``; the first problem becomes an InvalidRequestError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal(exc, model) from None


def refusal(exc: ValidationError, model: type[BaseModel]) -> InvalidRequestError:
    """The InvalidRequestError a pydantic ValidationError stands for, naming the parameter."""
    error = exc.errors(include_url=False)[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidRequestError):
        return cause
    loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
    loc = [p for p in loc if p not in ("str", "list[str]", "function-after[_scalar_text(), str]")]
    if len(loc) >= 2 and loc[-2] == "attr":
        loc = [*loc[:-2], ATTR_PREFIX + loc[-1]]
    param = ".".join(loc) or "body"
    name = loc[-1] if loc else "body"
    if error["type"] == "extra_forbidden":
        return InvalidRequestError(
            f"unknown parameter {param!r}; allowed: {_allowed(_nested(model, loc[:-1]))}", param=param
        )
    must = MUST.get("attr" if name.startswith(ATTR_PREFIX) else name, "valid")
    if error["type"] == "missing":
        return InvalidRequestError(f"{param} is required: {must}", param=param)
    got = error.get("input")
    shown = f"{len(got)} characters" if isinstance(got, str) and len(got) > 40 else repr(got)
    return InvalidRequestError(f"{param} must be {must}, got {shown}", param=param)


ORDER = ("q", "positive", "negative", "k", "offset", "intent", "explain", "filters", *FILTER_NAMES)


def _allowed(model: type[BaseModel]) -> str:
    fields = sorted(
        (f for f in model.model_fields if f != "attr"),
        key=lambda f: (f not in ORDER, ORDER.index(f) if f in ORDER else 0),
    )
    return ", ".join(fields) + (f" and {ATTR_PREFIX}<name>" if "attr" in model.model_fields else "")


def _nested(model: type[BaseModel], path: list[str]) -> type[BaseModel]:
    """The model that holds the field at ``path`` (a JSON body's ``filters``, say)."""
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return model


def check_product_id(value: str) -> str:
    """A product id from a URL path."""
    if not value or len(value) > MAX_ID_CHARS:
        raise InvalidRequestError(f"product id must have 1..{MAX_ID_CHARS} characters", param="id")
    return value
