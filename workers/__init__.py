"""The Celery edge: tasks that turn messages into calls of the core (``recsys.build``).

Build the app with :func:`create_celery` from :class:`~recsys.settings.Settings`; nothing is created at
import time. ``workers.worker`` is the two-line entry point that ``celery -A workers.worker`` loads.
"""

from workers.app import RecsysCelery, WorkerContext, create_celery

__all__ = ["RecsysCelery", "WorkerContext", "create_celery"]
