"""A Celery worker in a child process, configured by passing settings as ``RECSYS_*`` variables: what
the worker tests and the reindex benchmark run against (a real worker, not an eager app)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from recsys.settings import PROJECT_ROOT, Settings

CELERY = Path(sys.executable).with_name("celery")
DEADLINE_S = 120.0


def settings_env(settings: Settings) -> dict[str, str]:
    names = (
        "data_dir",
        "embeddings_dir",
        "broker_url",
        "result_backend",
        "annoy_trees",
        "shard_size",
        "torch_threads",
        "catalogue_path",
        "reindex_cron",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            env["RECSYS_" + name.upper()] = str(value)
    env["RECSYS_TORCH_THREADS"] = str(settings.torch_threads or 1)
    return env


class WorkerProcess:
    def __init__(self, settings: Settings, log: Path, concurrency: int = 2) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "workers.worker",
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=PROJECT_ROOT,
            env=settings_env(settings),
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: b"ready." in log.read_bytes(), "the worker to be ready", self)

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill_children(self) -> list[int]:
        """SIGKILL the pool processes (the ones running tasks); the main process replaces them."""
        pids = self.children()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool), as the OOM killer would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._fh.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if not self._fh.closed:
            self._fh.close()


def wait_for(
    check: Callable[[], object],
    what: str,
    worker: WorkerProcess | None = None,
    deadline_s: float = DEADLINE_S,
    every_s: float = 0.05,
) -> object:
    """Poll ``check`` until it returns something truthy; fail with the worker's log tail on the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        if worker is not None and worker.proc.poll() is not None:
            break
        time.sleep(every_s)
    tail = worker.log.read_text(errors="replace")[-3000:] if worker is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")
