"""Concurrent query encodes are coalesced into shared forward passes, and each caller gets its row."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from recsys.model.batching import QueryBatcher


class Gated:
    """An encoder whose first pass waits until every other caller has queued behind it."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            assert self.release.wait(30)
        if "boom" in texts:
            raise ValueError("model failed")
        return np.array([[float(len(t)), float(ord(t[0]))] for t in texts], dtype=np.float32)


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)


def test_waiting_queries_share_one_pass_and_get_their_own_rows() -> None:
    gated = Gated()
    batcher = QueryBatcher(gated, max_batch=4)
    texts = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"]
    with ThreadPoolExecutor(len(texts)) as pool:
        first = pool.submit(batcher.encode, texts[0])
        until(lambda: bool(gated.batches))
        rest = [pool.submit(batcher.encode, t) for t in texts[1:]]
        until(lambda: len(batcher._pending) == len(texts) - 1)
        gated.release.set()
        results = [first.result(30)] + [f.result(30) for f in rest]
    for text, vector in zip(texts, results, strict=True):
        assert vector.tolist() == [float(len(text)), float(ord(text[0]))]
    assert gated.batches[0] == ["a"]
    assert sorted(len(b) for b in gated.batches[1:]) == [1, 4]  # 5 waiters, at most 4 a pass
    assert sorted(t for b in gated.batches for t in b) == sorted(texts)


def test_a_failed_pass_fails_every_query_in_it_and_the_batcher_recovers() -> None:
    gated = Gated()
    gated.release.set()
    batcher = QueryBatcher(gated)
    with pytest.raises(ValueError, match="model failed"):
        batcher.encode("boom")
    assert batcher.encode("ok").tolist() == [2.0, float(ord("o"))]
