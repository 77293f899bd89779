"""Entry point: ``celery -A workers.worker worker`` / ``celery -A workers.worker beat``."""

from recsys.settings import Settings
from workers import create_celery

app = create_celery(Settings.from_env())
