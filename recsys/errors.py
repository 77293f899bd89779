"""Domain errors. The edges (CLI, API, tasks) map these to exit codes and HTTP statuses in one place each."""


class RecsysError(Exception):
    """Base class for every error the core raises on purpose."""

    code = "error"


class SettingsError(RecsysError):
    """A setting from the environment could not be parsed."""

    code = "bad_setting"


class CatalogueError(RecsysError):
    """A catalogue could not be read at all (as opposed to a bad row, which is skipped and reported)."""

    code = "bad_catalogue"


class TemplateError(RecsysError):
    """The instruction templates are missing or malformed."""

    code = "bad_template"


class ModelError(RecsysError):
    """The model directory is missing or incomplete."""

    code = "bad_model"


class IndexNotFoundError(RecsysError):
    """No index has been published yet, or the requested version does not exist."""

    code = "no_index"


class IndexMismatchError(RecsysError):
    """The index was built with another model or template than the running encoder."""

    code = "index_mismatch"


class IndexCorruptError(IndexMismatchError):
    """An index version's files are missing, truncated or do not match its manifest."""

    code = "index_corrupt"


class BuildError(RecsysError):
    """A build failed its checks; nothing was published."""

    code = "build_failed"


class InvalidRequestError(RecsysError):
    """A request parameter is out of range or malformed. ``param`` names it."""

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ProductNotFoundError(RecsysError):
    """A product id is not in the published index."""

    code = "product_not_found"

    def __init__(self, product_id: str) -> None:
        super().__init__(f"unknown product id {product_id!r}")
        self.product_id = product_id


class ReindexRunningError(BuildError):
    """A reindex of the same catalogue is already running; ``job_id`` names it (a conflict, like a
    failed build: nothing new is published)."""

    code = "reindex_running"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"a reindex of this catalogue is already running: job {job_id}")
        self.job_id = job_id


class JobNotFoundError(RecsysError):
    """No reindex job with that id (or none at all) is on record."""

    code = "job_not_found"


class QueueUnavailableError(RecsysError):
    """The task queue (the Celery broker) does not answer; nothing was queued. Search is unaffected."""

    code = "queue_unavailable"
    retry_after_s = 30


class AuditNotFoundError(RecsysError):
    """No audit of the requested (or the published) index version is stored."""

    code = "audit_not_found"
