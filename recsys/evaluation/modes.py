"""Search modes for offline evaluation, run over one index with each query embedded once.

* ``dense``: cosine only (``hybrid_weight`` 0), both vector spaces as served;
* ``lexical``: BM25 ordering (``hybrid_weight`` 1, ``short_vector_weight`` 0) over the pooled
  candidates; a query with no term in the BM25 vocabulary falls back to the dense score;
* ``hybrid``: the served fusion of dense and BM25, without query understanding;
* ``hybrid+intent``: what serving does: the query is understood first (price bounds and bands,
  attributes) and its remaining text is what is embedded and searched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from recsys.errors import InvalidRequestError
from recsys.evaluation.metrics import Qrels, Ranking, Scores, evaluate
from recsys.settings import Settings

if TYPE_CHECKING:
    import numpy as np

    from recsys.index.store import IndexStore
    from recsys.model.encoder import Encoder
    from recsys.model.templates import Template

DENSE, LEXICAL, HYBRID, INTENT = "dense", "lexical", "hybrid", "hybrid+intent"
MODES = (DENSE, LEXICAL, HYBRID, INTENT)
DEFAULT_MODE = INTENT  # what serving does
ALL = "all"
Runs = dict[str, dict[str, Ranking]]  # mode -> query id -> ranked product ids


def parse_modes(value: str) -> tuple[str, ...]:
    """``all`` or one mode name."""
    if value == ALL:
        return MODES
    if value not in MODES:
        raise InvalidRequestError(
            f"mode must be one of {', '.join((*MODES, ALL))}; got {value!r}", param="mode"
        )
    return (value,)


def mode_settings(settings: Settings, mode: str) -> Settings:
    """The settings that make the engine search the way ``mode`` says."""
    if mode == DENSE:
        return settings.replace(hybrid_weight=0.0)
    if mode == LEXICAL:
        return settings.replace(hybrid_weight=1.0, short_vector_weight=0.0)
    parse_modes(mode)
    return settings


def run_modes(
    settings: Settings,
    encoder: Encoder,
    template: Template,
    store: IndexStore,
    queries: Mapping[str, str],
    modes: Sequence[str] = MODES,
    k: int = 100,
    progress: Callable[[], None] | None = None,
) -> Runs:
    """The top ``k`` product ids of every query in every mode. Each distinct searched text is embedded
    once per query and its vector reused across modes (with intent, the searched text is the text left
    after understanding, which may differ from the query as typed)."""
    from recsys.query.engine import Engine

    engines = {mode: Engine(mode_settings(settings, mode), encoder, template, store) for mode in modes}
    first = next(iter(engines.values()))
    runs: Runs = {mode: {} for mode in modes}
    for qid, text in queries.items():
        vectors: dict[str, np.ndarray] = {}
        for mode, engine in engines.items():
            intent = engine.understand(text) if mode == INTENT else None
            searched = text if intent is None else intent.text
            if searched not in vectors:
                vectors[searched] = first.embed_query(searched)
            results = engine.search(text, k=k, intent=intent, query_vector=vectors[searched])
            runs[mode][qid] = [str(item["id"]) for item in results.to_list()]
        if progress is not None:
            progress()
    return runs


def score_modes(runs: Runs, qrels: Qrels) -> dict[str, Scores]:
    return {mode: evaluate(by_query, qrels) for mode, by_query in runs.items()}


def default_of(modes: Sequence[str]) -> str:
    """The mode a report ranks its worst queries by: the served one when it ran, else the first."""
    return DEFAULT_MODE if DEFAULT_MODE in modes else modes[0]
