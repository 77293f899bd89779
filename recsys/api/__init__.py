"""The Flask edge: ``create_app`` builds an app from settings; nothing is created at import time.

Served by gunicorn (see ``recsys/api/gunicorn_conf.py``)::

    gunicorn -c recsys/api/gunicorn_conf.py 'recsys.api:create_app()'
"""

from __future__ import annotations

import time
from typing import Any

from apiflask import APIFlask
from flask import Flask, Response, g, request

from recsys import __version__
from recsys.build.jobs import Control, make_control
from recsys.build.runner import JobRunner, ThreadRunner
from recsys.query.cache import Cache, make_cache
from recsys.query.engine import Engine
from recsys.query.service import REFRESH_EVERY_S, Service
from recsys.settings import Settings

MAX_BODY_BYTES = 16 * 2**20  # an upsert batch of 1,000 products with long descriptions fits
ERROR_REFS = "#/components/schemas/ValidationError/$defs/{model}"  # the error schema's nested model


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    cache: Cache | None = None,
    admin: Any = None,
    runner: JobRunner | None = None,
    metrics: Any = None,
    refresh_every_s: float = REFRESH_EVERY_S,
    environ: dict[str, str] | None = None,
) -> Flask:
    """Defaults, then the environment (``Settings.from_env``), then what the caller passes.

    ``engine``, ``cache``, ``admin`` (an :class:`~recsys.api.admin.AdminOps`), ``runner`` (who runs a
    reindex: Celery's with a broker, else a thread of this process) and ``metrics`` replace the services
    the settings would build. The encoder is not run here: it loads on the first query, in the
    process that serves it (gunicorn forks after this returns).
    """
    from recsys.api import admin as admin_views
    from recsys.api import audit as audit_views
    from recsys.api import errors, facets, panel, playground, views
    from recsys.api.metrics import Metrics
    from recsys.api.schemas import ErrorReply
    from recsys.factories import make_engine

    settings = settings if settings is not None else Settings.from_env(environ)
    engine = engine if engine is not None else make_engine(settings)
    if cache is None:
        cache = make_cache(settings.cache, settings.redis_url, settings.redis_timeout_ms, settings.namespace)
    metrics = metrics if metrics is not None else Metrics()
    if admin is None:
        control = make_control(settings)
        if runner is None:
            runner = _runner(settings, control, engine)
        admin = admin_views.CoreAdminOps(settings, engine, control, runner)
    service = Service(
        engine, cache, settings.cache_ttl_s, on_cache=metrics.cache_event, refresh_every_s=refresh_every_s
    )

    app = APIFlask(
        __name__,
        title="recsys",
        version=__version__,
        spec_path="/openapi.json",
        docs_path=None,
        json_errors=False,  # errors keep the project's shape (recsys.api.errors)
    )
    error_schema = ErrorReply.model_json_schema(ref_template=ERROR_REFS)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,  # larger bodies are a 413 before they are read
        VALIDATION_ERROR_STATUS_CODE=400,
        VALIDATION_ERROR_DESCRIPTION="a parameter is missing, unknown or out of range; the message names it",
        VALIDATION_ERROR_SCHEMA=error_schema,
        HTTP_ERROR_SCHEMA=error_schema,
        SECURITY_SCHEMES={"bearer": {"type": "http", "scheme": "bearer"}},
        INFO={
            "description": "Product search, similar items and recommendations. Filters are query "
            "parameters (category, brand, price_min, price_max, in_stock) and attr.<name>=<value> for "
            'any catalogue attribute. Errors are {"error": {"code", "message", "param"}}.'
        },
    )
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
    app.register_blueprint(audit_views.bp)
    app.register_blueprint(facets.bp)
    app.register_blueprint(panel.bp)
    app.register_blueprint(playground.bp)
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


def _runner(settings: Settings, control: Control, engine: Engine) -> JobRunner:
    """Celery's runner when a broker is configured, else a thread that reuses the engine's model."""
    if settings.broker_url:
        from workers.runner import CeleryRunner

        return CeleryRunner.from_settings(settings)
    return ThreadRunner(settings, control, lambda: (engine.encoder, engine.template))
