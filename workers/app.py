"""The Celery application factory: broker, result backend, reliability knobs and the nightly schedule."""

from __future__ import annotations

import functools
from typing import Any

from celery import Celery
from celery.schedules import crontab

from recsys.build.jobs import Control, make_control
from recsys.build.pipeline import ORPHAN_SWEEP_S
from recsys.build.updates import DeltaWriter
from recsys.errors import SettingsError
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import Settings

NIGHTLY = "nightly-reindex"
SWEEP = "resume-orphans"


class WorkerContext:
    """What the tasks of one worker process share: settings, and the encoder loaded on first use
    (after the prefork pool has forked, never in the parent)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def encoder(self) -> Encoder:
        from recsys.factories import make_encoder

        return make_encoder(self.settings)

    @functools.cached_property
    def template(self) -> Template:
        from recsys.factories import load_template

        return load_template(self.settings)

    @functools.cached_property
    def control(self) -> Control:
        return make_control(self.settings)

    @functools.cached_property
    def writer(self) -> DeltaWriter:
        return DeltaWriter(self.settings, self.encoder, self.template)


class RecsysCelery(Celery):
    context: WorkerContext


def create_celery(settings: Settings) -> RecsysCelery:
    """A Celery app for ``settings``. With no broker, tasks run eagerly in-process (the embedded default)."""
    app = RecsysCelery("recsys", set_as_current=True)
    app.context = WorkerContext(settings)
    broker = settings.broker_url
    if broker is None:
        app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_always_eager=True,
            task_eager_propagates=True,
        )
    else:
        app.conf.update(broker_url=broker, result_backend=result_backend(settings))
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
        # a request that queues work must answer fast when the broker is down (a 503, not a hang)
        broker_connection_timeout=2,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        # Redis brokers redeliver an unacknowledged task after this; it must outlast the longest task
        # (a shard of RECSYS_SHARD_SIZE products) but not hold a lost one for the default hour. The
        # orphan sweep resumes a dead worker's job well before (RabbitMQ requeues at once anyway).
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    from workers import tasks  # noqa: F401  (registers the shared tasks with this app)

    return app


def result_backend(settings: Settings) -> str:
    """The chord needs a real result backend: the configured one, else a Redis broker or RECSYS_REDIS_URL."""
    if settings.result_backend:
        return settings.result_backend
    broker = settings.broker_url or ""
    if broker.startswith(("redis://", "rediss://")):
        return broker
    if settings.redis_url:
        return settings.redis_url
    raise SettingsError(
        f"RECSYS_BROKER_URL={broker!r} needs RECSYS_RESULT_BACKEND "
        "(e.g. redis://host:6379/0) for the reindex chord"
    )


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """The orphan sweep every ORPHAN_SWEEP_S (workers also sweep on their own), and the nightly
    reindex of ``RECSYS_CATALOGUE_PATH`` on ``RECSYS_REINDEX_CRON`` (none without a path)."""
    sweep = {"task": "recsys.resume_orphans", "schedule": float(ORPHAN_SWEEP_S)}
    schedule: dict[str, Any] = {SWEEP: sweep}
    if settings.catalogue_path is not None:
        schedule[NIGHTLY] = {
            "task": "recsys.reindex",
            "schedule": parse_cron(settings.reindex_cron),
            "args": (str(settings.catalogue_path),),
        }
    return schedule


def parse_cron(expression: str) -> crontab:
    fields = expression.split()
    if len(fields) != 5:
        raise SettingsError(
            f"RECSYS_REINDEX_CRON={expression!r} must have 5 fields: "
            "minute hour day-of-month month day-of-week"
        )
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week
        )
    except ValueError as exc:
        raise SettingsError(f"RECSYS_REINDEX_CRON={expression!r} is not a valid crontab: {exc}") from None
