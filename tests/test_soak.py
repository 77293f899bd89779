"""A one-minute soak (bench/soak.py): gunicorn under the Zipf mix while versions are published, upserts
arrive and Redis is stopped and started again. No request may fail; the 10-minute run is the benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.model
def test_a_one_minute_soak_fails_no_request(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "soak.py"),
        "--minutes", "1",
        "--publish-every", "25",
        "--upsert-every", "5",
        "--redis-down", "5",
        "--data-dir", str(tmp_path / "data"),
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.is_file(), done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["requests"] > 0
    assert report["failed"] == 0, report["per_minute"]
    happened = [event["event"] for event in report["events"]]
    assert "redis stopped" in happened and "redis started" in happened, happened
    assert any("publish" in event for event in happened), happened
