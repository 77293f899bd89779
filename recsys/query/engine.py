"""The search engine: hybrid product search, similar items and recommendations over the live index.

Requests reach it already validated (:mod:`recsys.query.requests`, at the edge that received them).
Which version is served, and how the delta merges in, is :mod:`recsys.query.live`'s business;
candidate retrieval is :mod:`recsys.query.retrieval`'s and scoring :mod:`recsys.query.fusion`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from recsys.errors import InvalidRequestError
from recsys.index.loaded import LoadedIndex
from recsys.index.manifest import Identity
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template, normalise_query
from recsys.query.deltaview import DeltaView
from recsys.query.filters import Filters
from recsys.query.fusion import CandidateScores, Fusion, breakdown, fuse
from recsys.query.intent import Intent, understand
from recsys.query.live import Follower, LiveIndex
from recsys.query.retrieval import POOL, candidates
from recsys.settings import Settings

NEGATIVE_WEIGHT = 0.5
HIDDEN_FIELDS = ("description",)


@dataclass(frozen=True)
class Hit:
    row: int
    score: float
    explain: dict[str, Any] | None = None  # the score's pieces, when asked for


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    live: LiveIndex
    intent: Intent | None = None

    @property
    def version(self) -> str:
        return self.live.version

    def to_list(self) -> list[dict[str, Any]]:
        out = []
        for hit in self.hits:
            product = self.live.product(hit.row)
            fields = {k: v for k, v in product.items() if k not in HIDDEN_FIELDS}
            item = {"id": product["id"], "score": round(hit.score, 6), **fields}
            if hit.explain is not None:
                item["explain"] = hit.explain
            out.append(item)
        return out


@dataclass(frozen=True)
class Pool:
    """A search's candidate pool: the live index it was drawn from, the rows (base rows first, then
    delta rows), their evidence, and the filters applied (the request's, narrowed by the intent)."""

    live: LiveIndex
    rows: np.ndarray
    scores: CandidateScores
    filters: Filters | None


class Engine:
    def __init__(
        self, settings: Settings, encoder: Encoder, template: Template, store: IndexStore | None = None
    ) -> None:
        self.settings = settings
        self.encoder = encoder
        self.template = template
        self.store = store or IndexStore(settings.index_dir)
        self.fusion = Fusion(settings.hybrid_weight, settings.short_vector_weight, settings.intent_weight)
        self.follower = Follower(self.store, settings.data_dir, Identity.of(encoder, template))

    # -- the served index --------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Follow a publish or a delta change; True if what is served changed."""
        return self.follower.refresh()

    def live(self) -> LiveIndex:
        return self.follower.current()

    @property
    def index(self) -> LoadedIndex:
        return self.live().index

    @property
    def delta(self) -> DeltaView:
        return self.live().delta

    def state_key(self) -> str:
        """What every cached result must be keyed by (see :attr:`LiveIndex.key`)."""
        return self.live().key

    # -- queries -----------------------------------------------------------------------------------

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = self.encoder.encode_queries([self.template.render_query(query)])[0]
        return vector

    def understand(self, query: str) -> Intent:
        """What ``query`` asks for beyond its text, read with the served catalogue's vocabulary."""
        live = self.live()
        index = live.index
        scored: dict[str, np.ndarray | None] = {}

        def agrees(name: str, value: str, rest: str) -> bool:
            """Some product with this value matches the rest of the query (or nothing else was typed)."""
            if not rest:
                return True
            if rest not in scored:
                scored[rest] = index.lexical.scores(normalise_query(rest))
            scores = scored[rest]
            if scores is None:
                return False
            return bool((scores[live.having(name, value)[: live.base_size]] > 0).any())

        def known(word: str) -> bool:
            """A stopword (BM25 drops it: nothing to correct), or a word of a product added since the
            build (the build's spelling data lacks it)."""
            terms = index.lexical.tokens(word)
            return not terms or bool(terms & live.delta_terms)

        return understand(
            query,
            index.vocabulary,
            agrees,
            prices=bool(index.bands.cuts),
            spelling=index.spelling,
            known=known,
        )

    def search(
        self,
        query: str,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
        intent: Intent | None = None,
        explain: bool = False,
    ) -> Results:
        """Hybrid search: dense candidates of both vector spaces and BM25's, fused (see fusion).

        With an ``intent`` (:meth:`understand`), its text is what is searched, its price bounds (and a
        colour, when the query is only a colour and a product type) filter, and its other constraints
        lift the products that meet them. ``query_vector`` must then embed ``intent.text``.
        ``explain``: each hit carries its score's pieces and the filters applied.
        """
        pool = self.pool(query, k + offset, filters, query_vector, intent)
        live, rows, scores, filters = pool.live, pool.rows, pool.scores, pool.filters
        if intent is not None:
            scores = CandidateScores(scores.full, scores.short, scores.lexical, _soft(live, rows, intent))
        fused = fuse(scores, self.fusion)
        order = np.argsort(-fused, kind="stable")[offset : k + offset]
        applied = (filters or Filters()).to_dict()
        hits = [
            Hit(
                int(rows[i]),
                float(fused[i]),
                {**breakdown(scores, self.fusion, int(i)), "filters": applied} if explain else None,
            )
            for i in order
        ]
        return Results(hits, live, intent)

    def pool(
        self,
        query: str,
        size: int = POOL,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
        intent: Intent | None = None,
    ) -> Pool:
        """The candidates a search of ``query`` fuses (:meth:`search` ranks them): the top ``max(size,
        POOL)`` rows of each retriever among the products that pass ``filters`` (narrowed by the
        ``intent``'s price bounds), plus the live-delta products that pass them."""
        live = self.live()
        text = query if intent is None else intent.text
        filters = _with_intent(filters, intent, live)
        vector = self.embed_query(text) if query_vector is None else query_vector
        rows, scores = candidates(
            live,
            vector,
            normalise_query(text),
            size,
            filters,
            short_weight=self.fusion.short_weight,
            with_lexical=self.fusion.lexical_weight > 0,
            exact_fraction=self.settings.exact_filter_fraction,
        )
        return Pool(live, rows, scores, filters)

    def similar(
        self, product_id: str, k: int = 10, offset: int = 0, filters: Filters | None = None
    ) -> Results:
        """Nearest products in the *similar* space, from the stored vector; never the product itself."""
        live = self.live()
        row, vector = live.locate(product_id)
        return self._nearest(live, vector, {row}, k, offset, filters)

    def recommend(
        self,
        positive: Sequence[str],
        negative: Sequence[str] = (),
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
    ) -> Results:
        """Products like the ``positive`` ones (a cart, a session) and unlike the ``negative`` ones."""
        live = self.live()
        pos_found = [live.locate(pid) for pid in positive]
        neg_found = [live.locate(pid) for pid in negative]
        vector = np.stack([v for _, v in pos_found]).mean(axis=0)
        if neg_found:
            vector = vector - NEGATIVE_WEIGHT * np.stack([v for _, v in neg_found]).mean(axis=0)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise InvalidRequestError(
                "positive and negative cancel out; give different products", param="negative"
            )
        exclude = {row for row, _ in pos_found} | {row for row, _ in neg_found}
        return self._nearest(live, vector / norm, exclude, k, offset, filters)

    def product(self, product_id: str) -> dict[str, Any]:
        live = self.live()
        row, _ = live.locate(product_id)
        return dict(live.product(row))

    def _nearest(
        self,
        live: LiveIndex,
        vector: np.ndarray,
        exclude: set[int],
        k: int,
        offset: int,
        filters: Filters | None,
    ) -> Results:
        n = k + offset + len(exclude)
        space = live.index.spaces["similar"]
        rows, scores = space.top(vector, n, live.mask(filters), self.settings.exact_filter_fraction)
        extra = live.delta_rows(filters)
        if len(extra):
            rows = np.concatenate([np.asarray(rows, dtype=np.int64), extra])
            scores = np.concatenate([scores, (live.vectors("similar", extra) @ vector).astype(np.float32)])
        order = np.argsort(-scores, kind="stable")
        hits = [Hit(int(rows[i]), float(scores[i])) for i in order if int(rows[i]) not in exclude]
        return Results(hits[offset : offset + k], live)


BANDS = {"low": 0, "high": 2}


def _with_intent(filters: Filters | None, intent: Intent | None, live: LiveIndex) -> Filters | None:
    """The request's filters narrowed by what the shopper typed: price bounds, and the colour of a
    query that is only a colour and a product type ("black boots")."""
    if intent is None:
        return filters
    base = filters or Filters()
    low = max((v for v in (base.price_min, intent.price_min) if v is not None), default=None)
    high = min((v for v in (base.price_max, intent.price_max) if v is not None), default=None)
    attributes = dict(base.attributes)
    if intent.only_attribute == "colour":
        source = live.index.vocabulary.sources.get("colour", ["colour"])[0]
        attributes.setdefault(source, intent.attributes["colour"])
    return replace(base, price_min=low, price_max=high, attributes=attributes)


def _soft(live: LiveIndex, rows: np.ndarray, intent: Intent) -> np.ndarray | None:
    """The share of the intent's soft constraints each candidate meets (None when there are none)."""
    met: list[np.ndarray] = []
    for name, value in intent.attributes.items():
        if not (name == "colour" and intent.only_attribute == "colour"):  # that one is a filter
            met.append(live.having(name, value)[rows])
    if intent.price_band in BANDS:
        met.append(live.band[rows] == BANDS[intent.price_band])
    if not met:
        return None
    return np.mean(np.stack(met), axis=0).astype(np.float32)
