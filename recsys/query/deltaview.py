"""The read side of the live delta: a version's segments replayed into the products to serve.

Replay keeps the last operation on each id: an upsert with its product and vectors, or a delete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.index import deltalog
from recsys.query.filters import FilterColumns


@dataclass
class DeltaView:
    """The replayed state of one version's delta: live upserted products with vectors, deleted ids."""

    seq: int = 0
    products: list[dict[str, Any]] = field(default_factory=list)
    search: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    similar: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    deleted: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=dict)
    columns: FilterColumns | None = None
    at: dict[str, float] = field(default_factory=dict)  # when each id was last touched

    @property
    def touched(self) -> set[str]:
        """Ids whose base row must never be served: upserted (overridden) or deleted."""
        return self.deleted | set(self.rows)

    def __len__(self) -> int:
        return len(self.products)

    @classmethod
    def load(cls, folder: Path, after: int = 0, upto: int | None = None) -> DeltaView:
        """Replay ``folder``'s segments with ``after < seq <= upto``."""
        latest: dict[str, tuple[dict[str, Any], np.ndarray, np.ndarray] | None] = {}
        seq = after
        at: dict[str, float] = {}
        for number, segment in deltalog.segments(folder):
            if number <= after or (upto is not None and number > upto):
                continue
            seq = number
            vectors = deltalog.load_vectors(folder, segment)
            for op in segment["ops"]:
                at[op["id"]] = float(segment.get("at", 0.0))
                latest.pop(op["id"], None)  # keep replay order: a re-upsert moves to the end
                if op["op"] == "delete":
                    latest[op["id"]] = None
                elif vectors is not None:
                    latest[op["id"]] = (op["product"], vectors[0][op["row"]], vectors[1][op["row"]])
        view = cls(seq=seq, at=at)
        live = [(pid, item) for pid, item in latest.items() if item is not None]
        view.deleted = {pid for pid, item in latest.items() if item is None}
        view.products = [item[0] for _, item in live]
        view.rows = {pid: row for row, (pid, _) in enumerate(live)}
        if live:
            view.search = np.stack([item[1] for _, item in live]).astype(np.float32)
            view.similar = np.stack([item[2] for _, item in live]).astype(np.float32)
            view.columns = FilterColumns.of(view.products)
        return view
