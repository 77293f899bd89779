"""A version's products, memory-mapped: ``products.jsonl`` with ``offsets.npy`` (where each line starts)
and an id index (``ids.npy``: ids hashed to 64 bits, sorted, beside their rows).

A worker parses only the products it answers with, and every worker on a machine shares the pages:
at a million products the parsed dicts would otherwise cost each worker gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import mmap
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

PRODUCTS = "products.jsonl"
OFFSETS = "offsets.npy"
IDS = "ids.npy"
ID_DTYPE = np.dtype([("hash", "<u8"), ("row", "<i8")])


def id_hash(product_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(product_id.encode(), digest_size=8).digest(), "little")


def write_products(products: Iterable[dict[str, Any]], folder: Path) -> int:
    """Write the products, their offsets and the id index into ``folder``; returns how many."""
    offsets = [0]
    hashes: list[int] = []
    with (folder / PRODUCTS).open("wb") as fh:
        for product in products:
            line = json.dumps(product, ensure_ascii=False).encode("utf-8") + b"\n"
            fh.write(line)
            offsets.append(offsets[-1] + len(line))
            hashes.append(id_hash(str(product["id"])))
    np.save(folder / OFFSETS, np.array(offsets, dtype=np.int64))
    ids = np.empty(len(hashes), dtype=ID_DTYPE)
    ids["hash"], ids["row"] = hashes, np.arange(len(hashes))
    np.save(folder / IDS, np.sort(ids, order=("hash", "row")))
    return len(hashes)


class ProductStore(Sequence[dict[str, Any]]):
    """The products of a version folder, read on demand from a shared memory map."""

    def __init__(self, folder: Path) -> None:
        self.offsets = np.load(Path(folder) / OFFSETS, mmap_mode="r")
        with (Path(folder) / PRODUCTS).open("rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._ids = np.load(Path(folder) / IDS, mmap_mode="r")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, row: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, row: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, row: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        product: dict[str, Any] = json.loads(self._map[int(self.offsets[row]) : int(self.offsets[row + 1])])
        return product

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in range(len(self)):
            yield self[row]

    def row_of(self, product_id: str) -> int | None:
        """The row of ``product_id``, or None."""
        wanted = id_hash(product_id)
        hashes = self._ids["hash"]
        at = int(np.searchsorted(hashes, wanted))
        while at < len(hashes) and int(hashes[at]) == wanted:
            row = int(self._ids["row"][at])
            if self[row]["id"] == product_id:  # a 64-bit collision is possible, however unlikely
                return row
            at += 1
        return None


class RowsById:
    """``{id: row}`` for the product store, without the dict: ``rows.get(id)``, ``id in rows``."""

    def __init__(self, store: ProductStore) -> None:
        self.store = store

    def get(self, product_id: str, default: int | None = None) -> int | None:
        row = self.store.row_of(product_id)
        return default if row is None else row

    def __getitem__(self, product_id: str) -> int:
        row = self.store.row_of(product_id)
        if row is None:
            raise KeyError(product_id)
        return row

    def __contains__(self, product_id: object) -> bool:
        return isinstance(product_id, str) and self.store.row_of(product_id) is not None

    def __len__(self) -> int:
        return len(self.store)
