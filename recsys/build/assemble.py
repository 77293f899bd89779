"""Writing one index version: products, vectors, Annoy files with a tuned ``search_k``, BM25, price
bands and the manifest, into a staging directory; checking it; publishing it by a pointer flip.

The reindex pipeline (:mod:`recsys.build.pipeline`) calls these in its last step, after the shards
have embedded every text into the shared cache.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys import __version__
from recsys.build.texts import Rendered
from recsys.catalogue import PriceBands, Product, RowError, Spelling, Vocabulary, catalogue_hash
from recsys.errors import BuildError
from recsys.index.ann import (
    EXACT,
    annoy_top,
    build_annoy,
    exact_top,
    load_annoy,
    sample_queries,
    save_vectors,
    tune_search_k,
)
from recsys.index.lexical import Lexical
from recsys.index.manifest import Counts, Identity, Manifest, SpaceTuning
from recsys.index.products import write_products
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.model.tokenizer import whole_words
from recsys.query.filters import FilterColumns
from recsys.query.fusion import dense
from recsys.settings import Settings

TUNING_QUERIES = 200
SMOKE_QUERIES = 5
Phase = Callable[[str], None]


@dataclass
class BuildResult:
    version: str
    path: Path
    manifest: Manifest
    errors: list[RowError] = field(default_factory=list)


def assemble(
    staged: Path,
    products: Sequence[Product],
    rendered: Rendered,
    search_vectors: np.ndarray,
    similar_vectors: np.ndarray,
    *,
    settings: Settings,
    encoder: Encoder,
    template: Template,
    errors: Sequence[RowError] = (),
    phase: Phase | None = None,
) -> Manifest:
    """Write every artifact of a version into ``staged``. Returns its manifest (also written there)."""
    started = time.time()
    if not products:
        raise BuildError("the catalogue has no valid product; nothing to index")
    say = phase or (lambda _: None)
    rows = [product.to_dict() for product in products]
    write_products(rows, staged)
    FilterColumns.of(rows).save(staged / "columns")
    del rows
    with (staged / "rejected.jsonl").open("w", encoding="utf-8") as fh:
        for error in errors:
            fh.write(json.dumps({"line": error.line, "id": error.product_id, "reason": error.reason}) + "\n")
    (staged / "hashes.json").write_text(json.dumps(rendered.hashes))
    bands = PriceBands.fit(products)
    bands.save(staged / "bands.json")
    assigned = bands.assign(products)
    np.save(staged / "bands.npy", np.array([assigned.get(p.id, -1) for p in products], dtype=np.int8))
    Vocabulary.fit(products).save(staged / "vocabulary.json")
    model_dir = getattr(getattr(encoder, "spec", None), "path", None)
    Spelling.fit(products, whole_words(Path(model_dir)) if model_dir else ()).save(staged / "spelling.json")
    tuning: dict[str, SpaceTuning] = {}
    for name, vectors in (("search", search_vectors), ("similar", similar_vectors)):
        _check_vectors(name, vectors, len(products), encoder.dim)
        say(f"building {name} index")
        save_vectors(vectors, staged / f"{name}.npy")
        build_annoy(vectors, staged / f"{name}.annoy", settings.annoy_trees)
        say(f"tuning {name} search_k")
        index = load_annoy(staged / f"{name}.annoy", encoder.dim)
        tuned = tune_search_k(
            index,
            vectors,
            settings.annoy_trees,
            settings.target_recall,
            sample_queries(vectors, TUNING_QUERIES),
        )
        index.unload()
        tuning[name] = SpaceTuning(
            search_k=tuned.search_k, recall_at_10=round(tuned.recall, 4), probe_queries=tuned.queries
        )
    # the dense score as one matrix: a search that scans every row reads half the bytes of the two
    # spaces (see LoadedIndex.dense_space)
    dense_weight = settings.short_vector_weight
    save_vectors(dense(search_vectors, similar_vectors, dense_weight), staged / "dense.npy")
    say("building BM25 index")
    # the search text with the title once more: a title-field boost for BM25 (+0.01 nDCG@10 measured)
    lexical = [f"{text} | {product.title}" for text, product in zip(rendered.search, products, strict=True)]
    (staged / "lexical").mkdir()
    Lexical.build(lexical, [product.title for product in products], staged / "lexical")
    manifest = Manifest(
        **Identity.of(encoder, template).model_dump(),
        model_name=getattr(getattr(encoder, "spec", None), "name", "unknown"),
        template_name=template.name,
        trees=settings.annoy_trees,
        tuning=tuning,
        dense_weight=dense_weight,
        counts=Counts(products=len(products), rejected=len(errors), distinct_texts=len(set(rendered.search))),
        catalogue_hash=catalogue_hash(products),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        assemble_seconds=round(time.time() - started, 2),
        versions=_library_versions(),
    )
    manifest.record_files(staged)
    manifest.save(staged)
    return manifest


def check_build(
    staged: Path, manifest: Manifest, products: Sequence[Product], vectors: np.ndarray, settings: Settings
) -> None:
    """Refuse to publish a build whose counts, recall or smoke queries are off."""
    if manifest.counts.products != len(products):
        raise BuildError(f"built {manifest.counts.products} products, expected {len(products)}")
    for name, tuning in manifest.tuning.items():
        if tuning.search_k != EXACT and tuning.recall_at_10 < settings.target_recall - 0.02:
            raise BuildError(f"{name} recall@10 {tuning.recall_at_10} is below {settings.target_recall}")
    index = load_annoy(staged / "search.annoy", manifest.dim)
    try:
        search_k = manifest.tuning["search"].search_k
        rng = np.random.default_rng(11)
        for row in rng.choice(len(products), size=min(SMOKE_QUERIES, len(products)), replace=False):
            query = np.asarray(vectors[row], dtype=np.float32)
            found = (
                exact_top(vectors, query, 1) if search_k == EXACT else annoy_top(index, query, 1, search_k)
            )
            if not len(found[1]) or found[1][0] < 0.99:
                raise BuildError(f"smoke query for {products[row].id!r} does not find itself")
    finally:
        index.unload()


def publish(store: IndexStore, staged: Path, settings: Settings, manifest: Manifest) -> str:
    """Commit a checked staged build and flip the pointer to it. Returns the version name."""
    version = store.new_version_name()
    manifest.version = version
    manifest.save(staged)
    store.commit(staged, version)
    store.publish(version)
    store.prune(settings.keep_versions)
    return version


def _check_vectors(name: str, vectors: np.ndarray, count: int, dim: int) -> None:
    if vectors.shape != (count, dim):
        raise BuildError(f"{name} vectors have shape {vectors.shape}, expected ({count}, {dim})")
    if not np.isfinite(vectors).all():
        raise BuildError(f"{name} vectors contain NaN or infinity")


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"recsys": __version__, "python": platform.python_version()}
    for package in ("annoy", "torch", "transformers", "numpy", "bm25s"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out
