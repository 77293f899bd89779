"""The OpenAPI 3 document of the API, as data, served at ``/openapi.json``.

A test keeps it and the URL map equal.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from recsys.api.params import DEFAULT_K, MAX_BATCH
from recsys.engine import MAX_K, MAX_OFFSET, MAX_QUERY_CHARS

bp = Blueprint("openapi", __name__)

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


PAGE = [
    _query(
        "k", {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K}, "results per page"
    ),
    _query(
        "offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}, "results to skip"
    ),
]
FILTERS = [
    _query("category", {"type": "string"}, "category path prefix, 'A > B'"),
    _query("brand", {"type": "string"}, "brand, case-insensitive"),
    _query("price_min", {"type": "number", "minimum": 0}, "lowest price"),
    _query("price_max", {"type": "number", "minimum": 0}, "highest price"),
    _query("in_stock", {"type": "boolean"}, "stock status"),
    {
        "name": "attr",
        "in": "query",
        "required": False,
        "style": "deepObject",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "description": "attribute equality, written attr.<name>=<value> (e.g. attr.colour=red)",
    },
]
ERRORS = {
    "400": _json(_ref("Error"), "invalid parameter; the message names it and its allowed range"),
    "404": _json(_ref("Error"), "unknown product"),
    "503": _json(_ref("Error"), "no index is published"),
}
ADMIN_ERRORS = {
    "401": _json(_ref("Error"), "missing or wrong bearer token"),
    "403": _json(_ref("Error"), "admin endpoints are disabled (RECSYS_ADMIN_TOKEN unset)"),
    "501": _json(_ref("Error"), "the operation is not available in this build"),
}
SECURE: list[dict[str, list[str]]] = [{"bearer": []}]
META = {"index_version": {"type": ["string", "null"]}, "took_ms": {"type": "number"}}


def _envelope(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**properties, **META},
        "required": [*required, "index_version", "took_ms"],
    }


SCHEMAS: dict[str, Any] = {
    "Error": _envelope(
        {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "param": {"type": "string"},
                },
            }
        },
        ("error",),
    ),
    "Product": {
        "type": "object",
        "required": ["id"],
        "additionalProperties": True,
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "brand": {"type": ["string", "null"]},
            "category": {"type": "array", "items": {"type": "string"}},
            "price": {"type": ["number", "null"]},
            "in_stock": {"type": ["boolean", "null"]},
            "attributes": {"type": "object"},
        },
    },
    "Hit": {
        "allOf": [
            _ref("Product"),
            {"type": "object", "required": ["score"], "properties": {"score": {"type": "number"}}},
        ]
    },
    "Page": _envelope(
        {
            "results": {"type": "array", "items": _ref("Hit")},
            "k": {"type": "integer"},
            "offset": {"type": "integer"},
            "count": {"type": "integer"},
            "cached": {"type": "boolean"},
        },
        ("results", "k", "offset", "count", "cached"),
    ),
    "Filters": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "category": {"type": "string"},
            "brand": {"type": "string"},
            "price_min": {"type": "number"},
            "price_max": {"type": "number"},
            "in_stock": {"type": "boolean"},
            "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "patternProperties": {"^attr\\..+$": {"type": "string"}},
    },
    "Recommend": {
        "type": "object",
        "additionalProperties": False,
        "required": ["positive"],
        "properties": {
            "positive": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_K},
            "negative": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_K},
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K},
            "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            "filters": _ref("Filters"),
        },
    },
    "Status": _envelope(
        {"status": {"type": "string", "enum": ["ok", "ready", "degraded", "unavailable"]}}, ("status",)
    ),
    "Object": _envelope({}),
}

PATHS: dict[str, Any] = {
    "/v1/search": {
        "get": {
            "summary": "Hybrid product search",
            "parameters": [
                _query(
                    "q", {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}, "the query", True
                ),
                *PAGE,
                *FILTERS,
            ],
            "responses": {"200": _json(_ref("Page"), "a page of results"), **ERRORS},
        }
    },
    "/v1/products/{product_id}/similar": {
        "get": {
            "summary": "Products similar to one product",
            "parameters": [_path("product_id", "product id"), *PAGE, *FILTERS],
            "responses": {"200": _json(_ref("Page"), "a page of results"), **ERRORS},
        }
    },
    "/v1/recommend": {
        "post": {
            "summary": "Recommendations from liked (positive) and disliked (negative) products",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Recommend")}}},
            "responses": {"200": _json(_ref("Page"), "a page of results"), **ERRORS},
        }
    },
    "/v1/products/{product_id}": {
        "get": {
            "summary": "One product",
            "parameters": [_path("product_id", "product id")],
            "responses": {
                "200": _json(_envelope({"product": _ref("Product")}, ("product",)), "the product"),
                **ERRORS,
            },
        },
        "delete": {
            "summary": "Delete a product (live delta)",
            "security": SECURE,
            "parameters": [_path("product_id", "product id")],
            "responses": {"200": _json(_ref("Object"), "deleted"), **ERRORS, **ADMIN_ERRORS},
        },
    },
    "/v1/products": {
        "put": {
            "summary": "Insert or update products (live delta)",
            "security": SECURE,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["products"],
                            "additionalProperties": False,
                            "properties": {
                                "products": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_BATCH,
                                    "items": _ref("Product"),
                                }
                            },
                        }
                    }
                },
            },
            "responses": {"200": _json(_ref("Object"), "applied"), **ERRORS, **ADMIN_ERRORS},
        }
    },
    "/v1/index": {
        "get": {
            "summary": "The served index: version, model, counts, build time, delta",
            "responses": {
                "200": _json(
                    _envelope(
                        {
                            "version": {"type": "string"},
                            "state_key": {"type": "string"},
                            "model": {"type": "object"},
                            "template": {"type": "object"},
                            "counts": {"type": "object"},
                            "built_at": {"type": ["string", "null"]},
                            "delta": {"type": "object"},
                            "cache": {"type": "string"},
                        }
                    ),
                    "index info",
                ),
                "503": ERRORS["503"],
            },
        }
    },
    "/v1/reindex": {
        "post": {
            "summary": "Start a full reindex",
            "security": SECURE,
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"catalogue": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "202": _json(_envelope({"task_id": {"type": "string"}}, ("task_id",)), "started"),
                "400": ERRORS["400"],
                **ADMIN_ERRORS,
            },
        }
    },
    "/v1/reindex/{task_id}": {
        "get": {
            "summary": "Progress of a reindex",
            "security": SECURE,
            "parameters": [_path("task_id", "task id")],
            "responses": {
                "200": _json(
                    _envelope({"task_id": {"type": "string"}, "task": {"type": "object"}}), "the task record"
                ),
                "404": ERRORS["404"],
                **ADMIN_ERRORS,
            },
        }
    },
    "/v1/cache/purge": {
        "post": {
            "summary": "Drop every cached query embedding and result",
            "security": SECURE,
            "responses": {"200": _json(_envelope({"purged": {"type": "integer"}}), "purged"), **ADMIN_ERRORS},
        }
    },
    "/healthz": {
        "get": {"summary": "The process is alive", "responses": {"200": _json(_ref("Status"), "alive")}}
    },
    "/readyz": {
        "get": {
            "summary": "Index loaded; cache reachable (else 'degraded')",
            "responses": {
                "200": _json(_ref("Status"), "ready or degraded"),
                "503": _json(_ref("Status"), "no index"),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "recsys",
        "version": "1",
        "description": "Product search, similar items and "
        "recommendations. Every JSON response carries index_version and took_ms (also in the "
        "X-Index-Version and X-Took-Ms headers).",
    },
    "paths": PATHS,
    "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
}


@bp.get("/openapi.json")
def document() -> Response:
    return jsonify(DOCUMENT)
