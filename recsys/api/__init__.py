"""The Flask edge: ``create_app`` builds an app from settings; nothing is created at import time.

Served by gunicorn (see ``recsys/api/gunicorn_conf.py``)::

    gunicorn -c recsys/api/gunicorn_conf.py 'recsys.api:create_app()'
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request

from recsys.cache import Cache, make_cache
from recsys.engine import Engine
from recsys.serving import REFRESH_EVERY_S, Service
from recsys.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    cache: Cache | None = None,
    admin: Any = None,
    metrics: Any = None,
    refresh_every_s: float = REFRESH_EVERY_S,
    environ: dict[str, str] | None = None,
) -> Flask:
    """Defaults, then the environment (``Settings.from_env``), then what the caller passes.

    ``engine``, ``cache``, ``admin`` (an :class:`~recsys.api.admin.AdminOps`) and ``metrics`` replace the
    services the settings would build. The encoder is not run here: it loads on the first query, in the
    process that serves it (gunicorn forks after this returns).
    """
    from recsys.api import admin as admin_views
    from recsys.api import errors, openapi, views
    from recsys.api.metrics import Metrics
    from recsys.runtime import make_engine

    settings = settings if settings is not None else Settings.from_env(environ)
    engine = engine if engine is not None else make_engine(settings)
    if cache is None:
        cache = make_cache(settings.cache, settings.redis_url, settings.redis_timeout_ms)
    metrics = metrics if metrics is not None else Metrics()
    if admin is None:
        admin = admin_views.CoreAdminOps(settings, engine)
    service = Service(
        engine, cache, settings.cache_ttl_s, on_cache=metrics.cache_event, refresh_every_s=refresh_every_s
    )

    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["recsys"] = views.State(
        engine=engine,
        service=service,
        cache=cache,
        metrics=metrics,
        admin=admin,
        admin_token=settings.admin_token,
    )
    app.register_blueprint(views.bp)
    app.register_blueprint(admin_views.bp)
    app.register_blueprint(openapi.bp)
    errors.register(app)

    @app.before_request
    def start() -> None:
        g.started = time.perf_counter()
        if request.endpoint not in ("public.healthz", "public.metrics"):
            try:
                service.maybe_refresh()
            except Exception:  # a broken new version must not stop the served one
                app.logger.exception("index refresh failed; still serving the loaded version")

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.get("started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.latency.labels(rule, str(response.status_code)).observe(time.perf_counter() - started)
        return response

    return app
