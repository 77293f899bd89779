"""The ANN layer's tuning, and the million-product benchmark's code paths on a small size."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from recsys.index.ann import EXACT, build_annoy, exact_kth, exact_top, load_annoy, tune_search_k

ROOT = Path(__file__).resolve().parent.parent


def unit(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_kth_is_each_querys_kth_best_cosine_across_chunks() -> None:
    vectors, queries = unit(1000), unit(7, seed=1)
    kth = exact_kth(vectors, queries, 10, chunk=64)
    for q, floor in zip(queries, kth, strict=True):
        assert floor == pytest.approx(exact_top(vectors, q, 10)[1][-1], abs=1e-6)


def test_tuning_counts_tied_duplicates_as_right(tmp_path: Path) -> None:
    """A catalogue listing every product many times over: the exact top 10 is an arbitrary pick among
    ties, so recall must count any equally close product, or no search_k short of exact would do."""
    vectors = np.repeat(unit(40), 25, axis=0)  # 1,000 rows, each product 25 times
    build_annoy(vectors, tmp_path / "t.annoy", trees=8, jobs=1)
    index = load_annoy(tmp_path / "t.annoy", vectors.shape[1])
    tuned = tune_search_k(index, vectors, 8, 0.95, unit(20, seed=2))
    assert tuned.search_k != EXACT and tuned.recall >= 0.95


def _million() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_million", ROOT / "bench" / "million.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_million_benchmark_runs_its_paths_on_a_small_size(tmp_path: Path) -> None:
    bench = _million()
    docs = unit(60, dim=48, seed=3)
    vectors = bench.stand_in_vectors(3000, docs)
    assert vectors.shape == (3000, 48) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # every stand-in sits near a prototype, not anywhere on the sphere
    assert float(np.max(vectors @ docs.T, axis=1).mean()) > 0.6
    np.save(tmp_path / "search.npy", vectors)
    queries = unit(12, dim=48, seed=4)
    np.save(tmp_path / "queries.npy", queries)
    kth = exact_kth(vectors, queries, bench.K)
    row = bench.measure_trees(tmp_path, vectors, queries, kth, trees=4)
    index = row.pop("_index")
    assert row["picked_search_k"] > 0 and row["file_mb"] > 0
    recalls = [s["recall@10"] for s in row["sweep"]]
    assert [s["picked"] for s in row["sweep"]].count(True) == 1
    assert recalls == sorted(recalls) and recalls[0] > 0 and recalls[-1] <= 1  # more search_k, more recall
    filters = bench.measure_filters(vectors, index, row["picked_search_k"], queries)
    assert [f["selectivity"] for f in filters] == list(bench.SELECTIVITIES)
    assert all(f["rows_outside_filter"] == 0 for f in filters)
    assert all(f["recall@10"] == 1.0 for f in filters if f["selectivity"] <= 0.1)  # scored exactly
    half = bench.measure_float16(vectors, queries, kth)
    assert half["float16_mb"] == pytest.approx(half["float32_mb"] / 2, abs=0.1)
    assert half["float16_top40_rescored_float32"]["recall@10"] >= half["float16_scan"]["recall@10"]
    memory = bench.probe_memory(tmp_path, 4, row["picked_search_k"])
    assert len(memory) == 2 and all(0 < m["pss_mb"] <= m["rss_mb"] for m in memory)
    index.unload()
