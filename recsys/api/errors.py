"""The one place where domain errors and HTTP errors become JSON ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from recsys.errors import (
    AuditNotFoundError,
    BuildError,
    CatalogueError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidRequestError,
    JobNotFoundError,
    ProductNotFoundError,
    QueueUnavailableError,
    RecsysError,
    ReindexRunningError,
)

log = logging.getLogger(__name__)

STATUS: dict[type[RecsysError], int] = {
    InvalidRequestError: 400,
    CatalogueError: 400,
    ProductNotFoundError: 404,
    JobNotFoundError: 404,
    AuditNotFoundError: 404,
    ReindexRunningError: 409,
    BuildError: 409,
    IndexNotFoundError: 503,
    QueueUnavailableError: 503,
    IndexMismatchError: 503,
}


class ApiError(RecsysError):
    """An error only the HTTP edge knows about (authentication, an unavailable admin action)."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param


def status_of(exc: RecsysError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def register(app: Flask) -> None:
    from recsys.api.views import reply  # views imports nothing from here at import time

    @app.errorhandler(RecsysError)
    def domain_error(exc: RecsysError) -> Response:
        error: dict[str, str] = {"code": exc.code, "message": str(exc)}
        param = getattr(exc, "param", None)
        if param:
            error["param"] = param
        status = status_of(exc)
        if status >= 500:
            log.warning("request failed: %s", exc)
        response = reply({"error": error}, status)
        retry = getattr(exc, "retry_after_s", None)
        if retry is not None:
            response.headers["Retry-After"] = str(retry)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        response = reply({"error": {"code": code, "message": exc.description or exc.name}}, exc.code or 500)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return reply({"error": {"code": "internal", "message": "internal error; see the server log"}}, 500)
