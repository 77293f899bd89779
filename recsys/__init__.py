"""recsys: e-commerce product search and recommendations.

The core package: it imports neither Flask nor Celery. The HTTP edge lives in ``recsys.api``
and the task edge in the top-level ``workers`` package.
"""

__version__ = "0.1.0"
