"""Cached queries over an :class:`~recsys.query.engine.Engine`: what the API calls for every read.

Two caches share one backend:

* query embeddings, keyed by (model identity, template hash, normalised query): they survive index
  publishes, since the same model and template give the same vector;
* result pages, keyed by ``engine.state_key()`` (index version plus delta sequence), the request kind,
  its arguments and filters. A publish or an upsert changes the state key, so older entries become
  unreachable at once and expire on their own.

The state key is read *before* computing, so a cached page is never older than its key.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.model.templates import normalise_query
from recsys.query.cache import Cache, NullCache, get_or_compute
from recsys.query.engine import Engine, Results
from recsys.query.filters import Filters

EMBEDDING_TTL_S = 24 * 3600
REFRESH_EVERY_S = 0.5

CacheEvent = Callable[[str, bool], None]  # (cache kind, hit)


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    index_version: str
    cached: bool
    intent: dict[str, Any] | None = None  # what the query was understood to ask for (search only)


class Service:
    def __init__(
        self,
        engine: Engine,
        cache: Cache | None = None,
        ttl_s: float = 300,
        on_cache: CacheEvent | None = None,
        refresh_every_s: float = REFRESH_EVERY_S,
    ) -> None:
        self.engine = engine
        self.cache: Cache = cache if cache is not None else NullCache()
        self.ttl_s = ttl_s
        self.on_cache = on_cache or (lambda kind, hit: None)
        self.refresh_every_s = refresh_every_s
        self._next_refresh = 0.0
        self._refreshing = threading.Lock()
        self._embedding_prefix = f"emb:{engine.encoder.query_identity}:{engine.template.hash}:"

    # -- index lifecycle ---------------------------------------------------------------------------

    def maybe_refresh(self) -> bool:
        """Follow a publish at most every ``refresh_every_s``; one thread refreshes, the others go on."""
        now = time.monotonic()
        if now < self._next_refresh or not self._refreshing.acquire(blocking=False):
            return False
        try:
            self._next_refresh = now + self.refresh_every_s
            return self.engine.refresh()
        finally:
            self._refreshing.release()

    # -- reads -------------------------------------------------------------------------------------

    def query_vector(self, query: str) -> np.ndarray:
        normalised = normalise_query(query)
        key = self._embedding_prefix + _digest(normalised)
        raw, hit = get_or_compute(
            self.cache,
            key,
            lambda: self.engine.embed_query(query).astype(np.float32).tobytes(),
            EMBEDDING_TTL_S,
        )
        self.on_cache("embedding", hit)
        return np.frombuffer(raw, dtype=np.float32)

    def search(
        self, query: str, k: int, offset: int, filters: Filters, intent: bool = True, explain: bool = False
    ) -> Page:
        """A page of search results; with ``intent``, the query is understood first (only on a cache
        miss: a cached page carries what was understood)."""
        args = {
            "q": normalise_query(query),
            "k": k,
            "offset": offset,
            "filters": filters.to_dict(),
            "intent": intent,
            "explain": explain,
        }

        def run() -> Results:
            understood = self.engine.understand(query) if intent else None
            text = query if understood is None else understood.text
            vector = self.query_vector(text)
            return self.engine.search(
                query, k, offset, filters, query_vector=vector, intent=understood, explain=explain
            )

        return self._page("search", args, run)

    def similar(self, product_id: str, k: int, offset: int, filters: Filters) -> Page:
        args = {"id": product_id, "k": k, "offset": offset, "filters": filters.to_dict()}
        return self._page("similar", args, lambda: self.engine.similar(product_id, k, offset, filters))

    def recommend(
        self, positive: Sequence[str], negative: Sequence[str], k: int, offset: int, filters: Filters
    ) -> Page:
        args = {
            "positive": list(positive),
            "negative": list(negative),
            "k": k,
            "offset": offset,
            "filters": filters.to_dict(),
        }
        return self._page(
            "recommend", args, lambda: self.engine.recommend(positive, negative, k, offset, filters)
        )

    def _page(self, kind: str, args: dict[str, Any], run: Callable[[], Results]) -> Page:
        state = self.engine.state_key()
        key = f"res:{state}:{kind}:{_digest(json.dumps(args, sort_keys=True, default=str))}"
        raw, hit = get_or_compute(self.cache, key, lambda: _encode(run()), self.ttl_s)
        self.on_cache("result", hit)
        data = json.loads(raw)
        return Page(data["results"], data["index_version"], hit, data.get("intent"))


def _encode(results: Results) -> bytes:
    page: dict[str, Any] = {"results": results.to_list(), "index_version": results.version}
    if results.intent is not None:
        page["intent"] = results.intent.to_dict()
    return json.dumps(page, separators=(",", ":")).encode()


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
