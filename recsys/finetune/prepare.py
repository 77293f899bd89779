"""Everything before training: read the catalogue (and judged queries), render what the model sees, make
the pairs from each source, mine the base model's near misses, hold out the validation slice and cut
the sequence lengths to what the rendered texts need."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys.build.texts import embed, render
from recsys.catalogue import Product, load_catalogue, price_bands
from recsys.errors import InvalidRequestError
from recsys.finetune.config import FinetuneConfig
from recsys.finetune.encoding import Corpus, fitted_length
from recsys.finetune.negatives import mine, mining_pool
from recsys.finetune.pairs import (
    Example,
    FieldIndex,
    Group,
    as_groups,
    generated_examples,
    hold_out,
    judged_examples,
    similar_examples,
)
from recsys.finetune.train import SHORT_CAP
from recsys.finetune.validation import Validation
from recsys.index.embcache import EmbeddingCache
from recsys.model.encoder import ModelSpec, TransformerEncoder
from recsys.model.templates import Template
from recsys.settings import Settings

Phase = Callable[[str], None]
LENGTH_SAMPLE = 2000  # texts whose token lengths decide the sequence caps


@dataclass(frozen=True)
class FinetuneData:
    """What to learn from: the catalogue, optionally judged (or logged) queries, similar-items fields."""

    catalogue: Path
    queries: Path | None = None
    qrels: Path | None = None
    similar_same: tuple[str, ...] = ()

    def check(self) -> None:
        if (self.queries is None) != (self.qrels is None):
            raise InvalidRequestError("--queries and --qrels go together", param="queries")
        for path in (self.catalogue, self.queries, self.qrels):
            if path is not None and not Path(path).is_file():
                raise InvalidRequestError(f"file not found: {path}", param="catalogue")


@dataclass
class Prepared:
    """Everything training needs, before any training: the texts, the pairs (hard negatives mined), the
    validation slice and the sequence lengths; and what finetune.json says about them."""

    base_dir: Path
    spec: ModelSpec
    corpus: Corpus
    train_set: dict[str, list[Example]]
    validation: Validation
    lengths: dict[str, int]
    counts: dict[str, Any]
    products: int
    rejected: int
    rng: random.Random
    seconds: dict[str, float] = field(default_factory=dict)


def prepare(
    data: FinetuneData,
    *,
    settings: Settings,
    template: Template,
    config: FinetuneConfig,
    phase: Phase | None = None,
) -> Prepared:
    """Read the data, make the pairs, mine the base model's near misses, hold out the validation slice."""
    say = phase or (lambda text: None)
    data.check()
    started = time.monotonic()
    base_dir = settings.resolved_model_dir
    spec = ModelSpec.read(base_dir)
    seconds: dict[str, float] = {}
    say("pairs")
    loaded = load_catalogue(data.catalogue)
    products = loaded.products
    if len(products) < 2:
        raise InvalidRequestError(f"{data.catalogue} has fewer than 2 valid products", param="catalogue")
    bands = price_bands(products)
    rendered = render(products, template, bands)
    corpus = Corpus(rendered.search, rendered.similar, spec, template)
    rng = random.Random(config.seed)
    train_set, groups, counts = _pairs(data, products, bands, config, rng)
    seconds["pairs"] = round(time.monotonic() - started, 2)

    mined = 0
    if config.dense_negatives and config.hard_negatives > 0:
        say("mining near misses")
        began = time.monotonic()
        encoder = TransformerEncoder(base_dir, threads=settings.torch_threads, batch_size=settings.batch_size)
        cache = EmbeddingCache(settings.resolved_embeddings_dir, spec.identity, spec.dim)
        must = sorted(
            {i for examples in train_set.values() for e in examples for i in (e.positive, *e.negatives)}
        )
        pool = mining_pool(len(products), must, config.mine_pool, rng)
        vectors, counts["embedded_for_mining"] = embed([rendered.similar[i] for i in pool], encoder, cache)
        for source, examples in train_set.items():
            train_set[source], n = mine(
                examples,
                vectors,
                pool,
                encoder,
                template.render_query,
                [p.title for p in products],
                depth=config.dense_depth,
                skip=config.dense_skip,
                rng=rng,
            )
            mined += n
        seconds["mining"] = round(time.monotonic() - began, 2)
    counts["mined_negatives"] = mined

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    queries = sorted({e.query for examples in train_set.values() for e in examples if e.query})
    lengths = {
        "query": fitted_length(
            tokenizer, [corpus.query(q) for q in _sample(queries, rng)], config.query_max_length
        ),
        "doc": fitted_length(tokenizer, _sample(corpus.full, rng), config.doc_max_length),
        "short": fitted_length(tokenizer, _sample(corpus.short, rng), min(SHORT_CAP, config.doc_max_length)),
    }
    validation = Validation.build(groups, len(products), config.val_pool, settings.short_vector_weight, rng)
    counts.update(validation_queries=len(validation.groups), validation_pool=len(validation.pool))
    return Prepared(
        base_dir,
        spec,
        corpus,
        train_set,
        validation,
        lengths,
        counts,
        len(products),
        len(loaded.errors),
        rng,
        seconds,
    )


def _pairs(
    data: FinetuneData,
    products: Sequence[Product],
    bands: dict[str, int],
    config: FinetuneConfig,
    rng: random.Random,
) -> tuple[dict[str, list[Example]], list[Group], dict[str, Any]]:
    """Training examples per source, validation groups, and counts for finetune.json."""
    fields = FieldIndex(products, bands)
    position = {p.id: i for i, p in enumerate(products)}
    train_set: dict[str, list[Example]] = {}
    validation: list[Group] = []
    counts: dict[str, Any] = {}
    judged_present = data.queries is not None and data.qrels is not None
    if judged_present:
        from recsys.evaluation.metrics import read_qrels, read_queries

        assert data.queries is not None and data.qrels is not None
        examples, by_query = judged_examples(
            read_queries(data.queries), read_qrels(data.qrels), position, config.positives
        )
        kept, held = hold_out(examples, config.val_fraction, config.val_queries, rng)
        train_set["judged"] = kept
        validation += [by_query[q] for q in sorted(held) if q in by_query]
        counts["judged_queries"] = len({e.group for e in kept})
    mix = config.mix({"judged", "generated"} | ({"similar"} if data.similar_same else set()))
    if "judged" in train_set and not train_set["judged"]:
        raise InvalidRequestError("no judged query has a product of the catalogue", param="qrels")
    wanted = config.steps * config.batch_size
    extra = 1.0 + config.val_fraction
    if mix.get("generated"):
        size = min(len(products), max(50, math.ceil(wanted * mix["generated"] * extra)))
        generated = generated_examples(products, bands, fields, rng.sample(range(len(products)), size), rng)
        kept, held = hold_out(
            generated, 0.0 if judged_present else config.val_fraction, config.val_queries, rng
        )
        train_set["generated"] = kept
        validation += as_groups(e for e in generated if e.group in held)
    if data.similar_same and mix.get("similar"):
        for name in data.similar_same:
            if not any(fields.key(i, (name,)) for i in range(len(products))):
                raise InvalidRequestError(
                    f"no product of the catalogue has a {name!r} value", param="similar_same"
                )
        size = min(len(products), max(50, math.ceil(wanted * mix["similar"] * extra)))
        similar = similar_examples(fields, data.similar_same, rng.sample(range(len(products)), size), rng)
        kept, held = hold_out(similar, config.val_fraction, config.val_queries, rng)
        train_set["similar"] = kept
        validation += as_groups(e for e in similar if e.group in held)
    counts.update({f"{source}_examples": len(examples) for source, examples in train_set.items()})
    counts["hard_negatives_per_query"] = config.hard_negatives
    return train_set, validation, counts


def _sample(texts: Sequence[str], rng: random.Random) -> list[str]:
    texts = list(texts)
    return texts if len(texts) <= LENGTH_SAMPLE else rng.sample(texts, LENGTH_SAMPLE)
