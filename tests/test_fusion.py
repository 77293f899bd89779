"""Score fusion and the ANN backends, without a model: pure functions over arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.index.ann import EXACT, AnnoyBackend, ExactBackend, build_annoy, load_annoy, make_backend
from recsys.query.fusion import CandidateScores, Fusion, dense, fuse


def test_dense_mixes_the_short_vector_by_its_weight() -> None:
    full, short = np.array([0.8, 0.2], np.float32), np.array([0.0, 1.0], np.float32)
    np.testing.assert_allclose(dense(full, short, 0.0), full)
    np.testing.assert_allclose(dense(full, short, 0.25), [0.6, 0.4])
    assert dense(full, short, 0.25).dtype == np.float32


def test_fusion_is_convex_and_lexical_evidence_is_optional() -> None:
    scores = CandidateScores(
        full=np.array([0.9, 0.5, 0.1], np.float32),
        short=np.array([0.9, 0.5, 0.1], np.float32),
        lexical=np.array([0.0, 1.0, 0.5], np.float32),
    )
    fused = fuse(scores, Fusion(lexical_weight=0.3, short_weight=0.25))
    np.testing.assert_allclose(fused, [0.63, 0.65, 0.22], rtol=1e-6)
    assert list(np.argsort(-fused)) == [1, 0, 2]  # strong lexical evidence lifts the second candidate
    no_terms = CandidateScores(scores.full, scores.short, None)
    np.testing.assert_allclose(fuse(no_terms, Fusion(0.3, 0.25)), scores.full)
    np.testing.assert_allclose(fuse(scores, Fusion(lexical_weight=1.0, short_weight=0.0)), scores.lexical)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((2000, 32)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.fixture(params=["annoy", "exact"])
def backend(request: pytest.FixtureRequest, vectors: np.ndarray, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if request.param == "exact":
        return ExactBackend(vectors)
    path = tmp_path_factory.mktemp("ann") / "v.annoy"
    build_annoy(vectors, path, trees=16)
    return AnnoyBackend(load_annoy(path, vectors.shape[1]), vectors, search_k=4000)


def test_backend_contract(backend, vectors: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Both backends: n rows, best first, true cosines, near-exact recall, and only masked rows."""
    query = vectors[17]
    rows, scores = backend.top(query, 10)
    assert len(rows) == 10 and rows.dtype == np.int64 and rows[0] == 17
    assert np.all(np.diff(scores) <= 1e-6)
    np.testing.assert_allclose(scores, vectors[rows] @ query, atol=1e-5)
    truth = set(ExactBackend(vectors).top(query, 10)[0].tolist())
    assert len(truth & set(rows.tolist())) >= 8
    mask = np.zeros(len(vectors), dtype=bool)
    mask[::3] = True
    rows, _ = backend.top(query, 10, mask)
    assert len(rows) == 10 and mask[rows].all()


def test_the_build_choice_picks_the_backend(vectors: np.ndarray, tmp_path: Path) -> None:
    build_annoy(vectors, tmp_path / "v.annoy", trees=4)
    annoy = load_annoy(tmp_path / "v.annoy", vectors.shape[1])
    assert isinstance(make_backend(annoy, vectors, EXACT), ExactBackend)
    assert isinstance(make_backend(annoy, vectors, 640), AnnoyBackend)
