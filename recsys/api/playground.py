"""The playground: one page at ``/`` (and ``/playground``) to try search, facets, similar items,
recommendations and the index panel in a browser, using only the public API (and the admin API with a
token the user types in; it is kept in the tab's ``sessionStorage``, never in the page).

Plain HTML, CSS and one script under ``static/playground/``: no build step, nothing from a CDN. The page
is sent with a Content-Security-Policy that allows only this origin's script and style (no inline
script), images from this origin or ``blob:`` (the audit charts, fetched with the token), and requests
to this origin. A plain Flask blueprint, so it stays out of the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

STATIC = Path(__file__).parent / "static" / "playground"
bp = Blueprint("playground", __name__, static_folder=STATIC, static_url_path="/playground/static")
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


@bp.get("/")
@bp.get("/playground")
def page() -> Response:
    response = Response((STATIC / "index.html").read_bytes(), mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.after_request
def static_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
