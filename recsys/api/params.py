"""Strict parsing of query strings and JSON bodies: junk is a 400 naming the parameter and its range."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import MultiDict

from recsys.engine import MAX_K, MAX_OFFSET, check_query
from recsys.errors import InvalidRequestError
from recsys.filters import ATTR_PREFIX, FILTER_KEYS, Filters

DEFAULT_K = 10
MAX_ID_CHARS = 256
MAX_BATCH = 1000
_INT = re.compile(r"^[+]?\d{1,9}$")


def single(args: MultiDict[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    """One value per parameter, every name known (``allowed``, filter keys or ``attr.<name>``)."""
    out: dict[str, str] = {}
    for name in args:
        if name not in allowed and name not in FILTER_KEYS and not _is_attr(name):
            raise InvalidRequestError(
                f"unknown parameter {name!r}; allowed: {', '.join((*allowed, *FILTER_KEYS))} and "
                f"{ATTR_PREFIX}<name>",
                param=name,
            )
        values = args.getlist(name)
        if len(values) != 1:
            raise InvalidRequestError(f"parameter {name!r} must be given once", param=name)
        out[name] = values[0]
    return out


def page(raw: Mapping[str, Any], text: bool = True) -> tuple[int, int]:
    """``k`` and ``offset``: digits in a query string (``text``), JSON integers in a body."""
    return (integer(raw, "k", DEFAULT_K, 1, MAX_K, text), integer(raw, "offset", 0, 0, MAX_OFFSET, text))


def integer(raw: Mapping[str, Any], name: str, default: int, low: int, high: int, text: bool = True) -> int:
    value = raw.get(name)
    if value is None:
        return default
    strict = isinstance(value, int) or (text and isinstance(value, str) and _INT.match(value))
    if isinstance(value, bool) or not strict:
        raise InvalidRequestError(f"{name} must be an integer in {low}..{high}, got {value!r}", param=name)
    number = int(value)
    if not low <= number <= high:
        raise InvalidRequestError(f"{name} must be an integer in {low}..{high}, got {number}", param=name)
    return number


def query(raw: Mapping[str, Any]) -> str:
    q = raw.get("q")
    check_query("" if q is None else q)
    return str(q)


def filters(raw: Mapping[str, Any]) -> Filters:
    return Filters.parse({k: v for k, v in raw.items() if k in FILTER_KEYS or _is_attr(k)})


def json_object(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequestError("the body must be a JSON object", param="body")
    for name in body:
        if name not in allowed:
            raise InvalidRequestError(f"unknown field {name!r}; allowed: {', '.join(allowed)}", param=name)
    return body


def id_list(body: Mapping[str, Any], name: str, required: bool) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and 0 < len(v) <= MAX_ID_CHARS for v in value
    ):
        raise InvalidRequestError(f"{name} must be a list of product ids (strings)", param=name)
    if required and not value:
        raise InvalidRequestError(f"{name} must list at least one product id", param=name)
    if len(value) > MAX_K:
        raise InvalidRequestError(f"{name} may list at most {MAX_K} product ids", param=name)
    return value


def body_filters(body: Mapping[str, Any]) -> Filters:
    value = body.get("filters", {})
    if not isinstance(value, dict):
        raise InvalidRequestError("filters must be a JSON object", param="filters")
    return Filters.parse(value)


def product_id(value: str) -> str:
    if not value or len(value) > MAX_ID_CHARS:
        raise InvalidRequestError(f"product id must have 1..{MAX_ID_CHARS} characters", param="id")
    return value


def _is_attr(name: str) -> bool:
    return name.startswith(ATTR_PREFIX) and len(name) > len(ATTR_PREFIX)
