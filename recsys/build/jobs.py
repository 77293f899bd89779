"""Reindex job records and locks: the typed :class:`JobRecord`, and where it lives (:class:`Control`):
Redis when configured, else the data dir.

Both implementations honour one small interface and one contract test:

* a *job record* per job id, stored as flat string fields (a Redis hash, a JSON file) and read back
  through :meth:`JobRecord.decode`; updates write only the fields they change, so a shard's progress
  never overwrites a concurrent cancel; per-shard results are recorded idempotently (a redelivered
  shard overwrites its own entry);
* a *lock* per catalogue key, held by a job id with a TTL that the holder refreshes and releases
  (only the holder can refresh or release it; an expired lock can be taken by anyone);
* the id of the latest job, for ``recsys index status`` without an id.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from recsys.settings import Settings

DEFAULT_NAMESPACE = "recsys"
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED = ("succeeded", "failed", "cancelled")


class JobRecord(BaseModel):
    """One reindex job: what it reads, where it stands, and how it ended."""

    id: str
    kind: str = "reindex"  # or "finetune" (recsys.finetune.jobs): only a reindex is ever resumed
    catalogue: str
    status: Status = "queued"
    phase: str = "queued"
    shard_size: int
    shards_total: int = 0
    shards_done: int = 0
    embedded: int = 0  # texts run through the model so far
    products: int = 0
    rejected: int = 0
    created_at: float
    updated_at: float
    cancel: bool = False
    launched: bool = False  # the shards were queued (a redelivered plan must not queue them again)
    base_version: str = ""  # the version served when the job planned; its delta is folded in
    delta_seq: int = 0
    delta_folded: int = 0
    ledger: int = 0
    version: str = ""  # what the job published
    error: str = ""
    heartbeat_at: float = 0.0  # last sign of life from whoever runs the job; a stale one means orphaned
    resumed: int = 0  # times the job was picked up again after its runner died

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def decode(cls, raw: dict[str, str]) -> JobRecord:
        """From stored string fields (the one way back from storage)."""
        return cls.model_validate({k: v for k, v in raw.items() if k in cls.model_fields})

    def encode(self) -> dict[str, str]:
        return encode_fields(self.model_dump())


def encode_fields(fields: dict[str, Any]) -> dict[str, str]:
    """Stored string form of record fields (the one way into storage); unknown names are refused."""
    unknown = set(fields) - set(JobRecord.model_fields)
    if unknown:
        raise ValueError(f"not job record fields: {sorted(unknown)}")
    return {k: _str(v) for k, v in fields.items()}


class Control(Protocol):
    def create_job(self, record: JobRecord) -> None: ...

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Change only ``fields`` of the record (names and types of :class:`JobRecord`)."""
        ...

    def job(self, job_id: str) -> JobRecord | None: ...

    def latest_job(self) -> str | None: ...

    def active_jobs(self) -> list[str]:
        """Ids of the jobs created and not yet finished (what an orphan sweep looks at)."""
        ...

    def shard_done(self, job_id: str, shard: int, embedded: int) -> None: ...

    def shard_results(self, job_id: str) -> dict[int, int]: ...

    def acquire(self, key: str, job_id: str, ttl_s: int) -> str | None:
        """Take the lock for ``job_id``; returns None on success, else the holder's job id."""
        ...

    def refresh(self, key: str, job_id: str, ttl_s: int) -> bool: ...

    def release(self, key: str, job_id: str) -> bool: ...

    def holder(self, key: str) -> str | None: ...


class RedisControl:
    """Job records as hashes, the lock as ``SET NX EX`` with compare-and-set refresh and release."""

    _REFRESH = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
    )
    _RELEASE = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
    )
    JOB_TTL_S = 7 * 24 * 3600

    def __init__(self, client: Any, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.redis = client
        self.prefix = f"{namespace}:"  # two shops on one Redis never see each other's jobs or locks

    @classmethod
    def from_url(cls, url: str, namespace: str = DEFAULT_NAMESPACE) -> RedisControl:
        import redis

        return cls(redis.Redis.from_url(url, decode_responses=True), namespace)

    def create_job(self, record: JobRecord) -> None:
        key = f"{self.prefix}job:{record.id}"
        pipe = self.redis.pipeline()
        pipe.delete(key, key + ":shards")
        pipe.hset(key, mapping=record.encode())
        pipe.expire(key, self.JOB_TTL_S)
        pipe.set(f"{self.prefix}job:latest", record.id)
        pipe.sadd(f"{self.prefix}jobs:active", record.id)
        pipe.execute()

    def update_job(self, job_id: str, **fields: Any) -> None:
        self.redis.hset(f"{self.prefix}job:{job_id}", mapping=encode_fields(fields))
        if fields.get("status") in FINISHED:
            self.redis.srem(f"{self.prefix}jobs:active", job_id)

    def active_jobs(self) -> list[str]:
        return sorted(self.redis.smembers(f"{self.prefix}jobs:active"))

    def job(self, job_id: str) -> JobRecord | None:
        raw: dict[str, str] = self.redis.hgetall(f"{self.prefix}job:{job_id}")
        return JobRecord.decode(raw) if raw else None

    def latest_job(self) -> str | None:
        value: str | None = self.redis.get(f"{self.prefix}job:latest")
        return value

    def shard_done(self, job_id: str, shard: int, embedded: int) -> None:
        key = f"{self.prefix}job:{job_id}:shards"
        self.redis.hset(key, str(shard), str(embedded))
        self.redis.expire(key, self.JOB_TTL_S)

    def shard_results(self, job_id: str) -> dict[int, int]:
        raw = self.redis.hgetall(f"{self.prefix}job:{job_id}:shards")
        return {int(k): int(v) for k, v in raw.items()}

    def acquire(self, key: str, job_id: str, ttl_s: int) -> str | None:
        name = f"{self.prefix}lock:{key}"
        if self.redis.set(name, job_id, nx=True, ex=ttl_s):
            return None
        holder: str | None = self.redis.get(name)
        if holder == job_id:
            return None
        return holder or self.acquire(key, job_id, ttl_s)

    def refresh(self, key: str, job_id: str, ttl_s: int) -> bool:
        return bool(self.redis.eval(self._REFRESH, 1, f"{self.prefix}lock:{key}", job_id, ttl_s))

    def release(self, key: str, job_id: str) -> bool:
        return bool(self.redis.eval(self._RELEASE, 1, f"{self.prefix}lock:{key}", job_id))

    def holder(self, key: str) -> str | None:
        value: str | None = self.redis.get(f"{self.prefix}lock:{key}")
        return value


class FileControl:
    """The same, as files under ``<data_dir>/jobs`` (one machine, or a shared POSIX file system)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _job_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def create_job(self, record: JobRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self._job_path(record.id), record.encode())
        _write_text(self.root / "LATEST", record.id)

    def update_job(self, job_id: str, **fields: Any) -> None:
        raw = self._raw(job_id) or {}
        raw.update(encode_fields(fields))
        _write_json(self._job_path(job_id), raw)

    def active_jobs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob("*.json")):
            record = self.job(path.stem)
            if record is not None and not record.finished:
                found.append(record.id)
        return found

    def job(self, job_id: str) -> JobRecord | None:
        raw = self._raw(job_id)
        return JobRecord.decode(raw) if raw else None

    def _raw(self, job_id: str) -> dict[str, str] | None:
        try:
            raw: dict[str, str] = json.loads(self._job_path(job_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return raw

    def latest_job(self) -> str | None:
        try:
            return (self.root / "LATEST").read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def shard_done(self, job_id: str, shard: int, embedded: int) -> None:
        folder = self.root / f"{job_id}.shards"
        folder.mkdir(parents=True, exist_ok=True)
        _write_text(folder / str(shard), str(embedded))

    def shard_results(self, job_id: str) -> dict[int, int]:
        folder = self.root / f"{job_id}.shards"
        if not folder.is_dir():
            return {}
        return {int(p.name): int(p.read_text()) for p in folder.iterdir() if p.name.isdigit()}

    def _lock_path(self, key: str) -> Path:
        return self.root / f"lock-{key}"

    def acquire(self, key: str, job_id: str, ttl_s: int) -> str | None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._lock_path(key)
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self.holder(key)
                if holder == job_id:
                    return None
                if holder is not None:
                    return holder
                continue  # expired and removed by holder(): try again
            with os.fdopen(fd, "w") as fh:
                fh.write(job_id)
            os.utime(path, (time.time() + ttl_s, time.time() + ttl_s))
            return None
        return self.holder(key) or "unknown"

    def refresh(self, key: str, job_id: str, ttl_s: int) -> bool:
        if self.holder(key) != job_id:
            return False
        os.utime(self._lock_path(key), (time.time() + ttl_s, time.time() + ttl_s))
        return True

    def release(self, key: str, job_id: str) -> bool:
        if self.holder(key) != job_id:
            return False
        self._lock_path(key).unlink(missing_ok=True)
        return True

    def holder(self, key: str) -> str | None:
        """The holder, or None; an expired lock (its mtime is the expiry) is removed."""
        path = self._lock_path(key)
        try:
            expires = path.stat().st_mtime
            holder = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if expires < time.time():
            stale = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            try:
                os.replace(path, stale)
                stale.unlink()
            except FileNotFoundError:
                pass
            return None
        return holder or None


def make_control(settings: Settings) -> Control:
    """Redis (``RECSYS_REDIS_URL``, else a ``redis://`` broker) when configured, else the data dir."""
    url = settings.redis_url
    if url is None and settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")):
        url = settings.broker_url
    if url is not None:
        return RedisControl.from_url(url, settings.namespace)
    return FileControl(settings.data_dir / "jobs")


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _write_text(path, json.dumps(data))
