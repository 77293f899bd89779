"""The API served by gunicorn (2 preloaded workers): a publish under load fails no request."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.build.pipeline import build_index
from recsys.model.encoder import TransformerEncoder
from recsys.model.templates import Template
from recsys.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.model  # worker and server processes load the real model from their settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, timeout: float = 30) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def server(model_small_build: Settings, redis_url: str, tmp_path: Path) -> Iterator[tuple[int, Settings]]:
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(model_small_build.data_dir),
        "RECSYS_EMBEDDINGS_DIR": str(model_small_build.resolved_embeddings_dir),
        "RECSYS_REDIS_URL": redis_url,
        "RECSYS_TORCH_THREADS": "1",
        "RECSYS_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    (tmp_path / "prom").mkdir()
    with gunicorn(env, port, tmp_path / "gunicorn.log", ready_within=90):
        yield port, model_small_build


WEB = [sys.executable, "-m", "gunicorn", "-c", "recsys/api/gunicorn_conf.py", "recsys.api:create_app()"]


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, log_path: Path, ready_within: float) -> Iterator[None]:
    """The Procfile's web process with ``env``, ready (``/readyz`` 200) before it yields; its output goes
    to ``log_path``, shown if it dies while starting."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            WEB,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + ready_within
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if get(port, "/readyz", timeout=5)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not become ready"
                time.sleep(0.2)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_publish_under_load_fails_no_request(
    server: tuple[int, Settings], model_encoder: TransformerEncoder, template: Template, small_catalogue: Path
) -> None:
    port, settings = server
    old = get(port, "/v1/index")[1]["version"]
    queries = ["running shoes", "wireless headphones", "leather boots", "laptop", "jigsaw puzzle", "hoodie"]
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()
    sent = [0]

    def load(worker: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = worker
        while not stop.is_set() and sent[0] < 20_000:  # bounded
            q = queries[i % len(queries)].replace(" ", "+")
            i += 1
            try:
                conn.request("GET", f"/v1/search?q={q}&k=5")
                response = conn.getresponse()
                body = json.loads(response.read())
                if response.status != 200:
                    failures.append(f"{response.status} {body}")
                else:
                    versions.add(body["index_version"])
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            sent[0] += 1
        conn.close()

    threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while sent[0] < 10:  # traffic is flowing on the old version before the publish
            assert time.monotonic() < deadline and not failures, failures
            time.sleep(0.05)
        new = build_index(
            small_catalogue, settings=settings, encoder=model_encoder, template=template
        ).version
        assert new != old
        # every worker follows the publish: poll until several consecutive answers are on the new version
        deadline = time.monotonic() + 60
        streak = 0
        while streak < 20:
            assert time.monotonic() < deadline, "the workers did not switch to the new version"
            status, body = get(port, "/v1/search?q=hoodie&k=3")
            assert status == 200
            streak = streak + 1 if body["index_version"] == new else 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert sent[0] > 0 and old in versions and new in versions
    status, ready = get(port, "/readyz")
    assert status == 200 and ready["status"] == "ready" and ready["index_version"] == new
    metrics = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    metrics.request("GET", "/metrics")
    text = metrics.getresponse().read().decode()
    metrics.close()
    assert 'recsys_request_seconds_count{endpoint="/v1/search",status="200"}' in text
