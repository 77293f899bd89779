"""API fuzzing against a real gunicorn: schemathesis generates requests from /openapi.json, valid and
invalid, for every operation, with the admin token (so upserts, deletes and reindex requests are fuzzed
too), and checks every answer: no 5xx, every 4xx a JSON {"error": ...}, every 2xx matching its schema,
invalid data refused.

    .venv/bin/python bench/fuzz.py [--requests 10000]

Writes bench/results/fuzz.json: requests sent per operation and mode, and every failure found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from load import ROOT, ensure_index, free_port, start_server  # bench/ is on sys.path when run as a script
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

TOKEN = "fuzz-token"


def json_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and {"code", "message"} <= set(body["error"]), body
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests to send, about")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/recsys-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = parser.parse_args()
    catalogue = ROOT / "fixtures" / "catalogue.jsonl"
    data_dir = args.data_dir / "fuzz"
    ensure_index(catalogue, data_dir)
    port = free_port()
    server = start_server(data_dir, port, {"RECSYS_ADMIN_TOKEN": TOKEN, "RECSYS_CACHE": "off"})
    base = f"http://127.0.0.1:{port}"
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[dict[str, str]] = []
    started = time.monotonic()
    try:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        per = max(1, args.requests // (2 * len(operations)))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            checks = [not_a_server_error, response_schema_conformance, content_type_conformance, json_errors]
            if mode is GenerationMode.NEGATIVE:
                checks.append(negative_data_rejection)
            for operation in operations:
                label = f"{operation.method.upper()} {operation.path} ({mode.value})"

                def fuzzer(label: str, checks: list[Any], strategy: Any) -> Any:
                    # a closure, not default arguments: hypothesis refuses @given on a function with defaults
                    @settings(
                        max_examples=per,
                        deadline=None,
                        suppress_health_check=list(HealthCheck),
                        database=None,
                    )
                    @given(strategy)
                    def call(case: Any) -> None:
                        response = case.call(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"})
                        sent[label] += 1
                        statuses[response.status_code] += 1
                        case.validate_response(response, checks=checks)

                    return call

                try:
                    fuzzer(label, checks, operation.as_strategy(generation_mode=mode))()
                except Unsatisfiable:
                    pass  # no parameters or body to get wrong
                except Exception as exc:  # a failure: record it and go on with the other operations
                    failures.append({"operation": label, "failure": str(exc)[:2000]})
                print(f"{label}: {sent[label]} requests", flush=True)
    finally:
        server.terminate()
        server.wait(30)
    report = {
        "requests": sum(sent.values()),
        "seconds": round(time.monotonic() - started, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "failures": failures,
        "per_operation": dict(sorted(sent.items())),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "per_operation"}, indent=2))
    return 1 if failures or report["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
