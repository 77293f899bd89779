"""Evaluation modes on the fixture catalogue (hash encoder): each runs, each searches as it says, and
each query is embedded once across the modes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from recsys.build.assemble import BuildResult
from recsys.errors import InvalidRequestError
from recsys.evaluation.metrics import read_qrels, read_queries
from recsys.evaluation.modes import DEFAULT_MODE, MODES, mode_settings, parse_modes, run_modes, score_modes
from recsys.index.store import IndexStore
from recsys.model.hashing import HashEncoder
from recsys.model.templates import Template, normalise_query
from recsys.query.engine import Engine
from recsys.settings import PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "fixtures"


class CountingEncoder(HashEncoder):
    """The hash encoder, remembering every query text it embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.queries.extend(texts)
        return super().encode_queries(texts)


def test_parse_modes() -> None:
    assert parse_modes("all") == MODES == ("dense", "lexical", "hybrid", "hybrid+intent")
    assert parse_modes("lexical") == ("lexical",)
    assert DEFAULT_MODE == "hybrid+intent"
    with pytest.raises(InvalidRequestError, match="mode must be one of"):
        parse_modes("bm25")


def test_mode_settings(base_settings: Settings) -> None:
    assert mode_settings(base_settings, "dense").hybrid_weight == 0.0
    lexical = mode_settings(base_settings, "lexical")
    assert (lexical.hybrid_weight, lexical.short_vector_weight) == (1.0, 0.0)
    assert mode_settings(base_settings, "hybrid") == base_settings
    assert mode_settings(base_settings, "hybrid+intent") == base_settings


def test_every_mode_runs_and_each_query_is_embedded_once(
    full_build: tuple[Settings, BuildResult], template: Template
) -> None:
    settings, _ = full_build
    queries = read_queries(FIXTURES / "queries.tsv")
    encoder = CountingEncoder()
    store = IndexStore(settings.index_dir)
    runs = run_modes(settings, encoder, template, store, queries, MODES, k=100)

    assert set(runs) == set(MODES)
    for mode in MODES:
        assert set(runs[mode]) == set(queries)
        assert all(0 < len(ranking) <= 100 for ranking in runs[mode].values())
    # one embedding per distinct searched text per query: the query, and its text after understanding
    engine = Engine(settings, encoder, template, store)
    expected = sum(len({text, engine.understand(text).text}) for text in queries.values())
    assert len(encoder.queries) == expected
    assert expected < 2 * len(queries)  # most queries search their own words in every mode

    assert runs["hybrid"] != runs["dense"]
    assert runs["hybrid"] != runs["lexical"]
    changed = [q for q in queries if runs["hybrid+intent"][q] != runs["hybrid"][q]]
    assert changed  # understanding changed some rankings, and not every one
    assert len(changed) < len(queries)

    scores = score_modes(runs, read_qrels(FIXTURES / "qrels.tsv"))
    assert {s.queries for s in scores.values()} == {len(queries)}
    assert scores["hybrid"].ndcg_at_10 != scores["dense"].ndcg_at_10


def test_lexical_orders_by_bm25_and_intent_applies_price_bounds(
    full_build: tuple[Settings, BuildResult], encoder: HashEncoder, template: Template, full_engine: Engine
) -> None:
    settings, _ = full_build
    store = IndexStore(settings.index_dir)
    queries = {"q1": "wireless headphones", "q2": "dress under 40"}
    runs = run_modes(settings, encoder, template, store, queries, ("lexical", "hybrid+intent"), k=20)

    bm25 = full_engine.index.lexical.scores(normalise_query("wireless headphones"))
    rows = [full_engine.index.rows[pid] for pid in runs["lexical"]["q1"]]
    top = bm25[rows[:10]]
    assert (top > 0).all() and (np.diff(top) <= 1e-6).all()

    prices = [full_engine.product(pid).get("price") for pid in runs["hybrid+intent"]["q2"]]
    assert prices and all(price is not None and price <= 40 for price in prices)
