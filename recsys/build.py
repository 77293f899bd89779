"""Building an index version: catalogue → rendered texts → vectors → Annoy + BM25 → checks → publish.

The steps are separate functions so the reindex pipeline (:mod:`recsys.reindex`) can run the
embedding in shards, in-process or on many Celery workers, and call :func:`assemble` and
:func:`publish` in its last step.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys import __version__
from recsys.catalogue import Product, RowError, catalogue_hash
from recsys.embcache import EmbeddingCache
from recsys.encoder import Encoder
from recsys.errors import BuildError
from recsys.lexical import Lexical
from recsys.settings import Settings
from recsys.store import MANIFEST, IndexStore
from recsys.templates import Template, price_bands
from recsys.vectors import METRIC, build_annoy, load_annoy, sample_queries, save_vectors, tune_search_k

FORMAT = 1
TUNING_QUERIES = 200
Phase = Callable[[str], None]


@dataclass(frozen=True)
class Rendered:
    """What the model sees for each product, and the content hash of it."""

    search: list[str]
    similar: list[str]
    hashes: list[str]


@dataclass
class BuildResult:
    version: str
    path: Path
    manifest: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)


def render(products: Sequence[Product], template: Template, bands: dict[str, int] | None = None) -> Rendered:
    """Render ``products``; ``bands`` are the catalogue's price bands when rendering only a shard of it."""
    bands = price_bands(products) if bands is None else bands
    search = [template.render_document(p, bands.get(p.id)) for p in products]
    similar = [template.render_similar(p, bands.get(p.id)) for p in products]
    hashes = [
        hashlib.sha256(f"{s}\x00{m}".encode()).hexdigest()[:24] for s, m in zip(search, similar, strict=True)
    ]
    return Rendered(search, similar, hashes)


def embed(
    texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache | None = None
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts``, embedding each distinct text once and only if the cache lacks it.

    Returns the vectors and how many texts were actually run through the model.
    """
    unique = list(dict.fromkeys(texts))
    if cache is None:
        vectors, missing = np.zeros((len(unique), encoder.dim), dtype=np.float32), list(range(len(unique)))
    else:
        vectors, missing = cache.get(unique)
    if missing:
        fresh = encoder.encode_documents([unique[i] for i in missing])
        vectors[missing] = fresh
        if cache is not None:
            cache.put([unique[i] for i in missing], fresh)
    position = {text: i for i, text in enumerate(unique)}
    out = vectors[[position[t] for t in texts]] if len(unique) != len(texts) else vectors
    return out, len(missing)


def embedding_cache(settings: Settings, encoder: Encoder) -> EmbeddingCache:
    return EmbeddingCache(settings.resolved_embeddings_dir, encoder.identity, encoder.dim)


def identity(settings: Settings, encoder: Encoder, template: Template) -> dict[str, Any]:
    """What an index must share with the running encoder to be usable."""
    return {"model": encoder.identity, "template": template.hash, "dim": encoder.dim, "metric": METRIC}


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
) -> dict[str, Any]:
    """Write every artifact of a version into ``staged`` and check it. Returns the manifest."""
    started = time.time()
    if not products:
        raise BuildError("the catalogue has no valid product; nothing to index")
    say = phase or (lambda _: None)
    with (staged / "products.jsonl").open("w", encoding="utf-8") as fh:
        for product in products:
            fh.write(json.dumps(product.to_dict(), ensure_ascii=False) + "\n")
    with (staged / "rejected.jsonl").open("w", encoding="utf-8") as fh:
        for error in errors:
            fh.write(json.dumps({"line": error.line, "id": error.product_id, "reason": error.reason}) + "\n")
    (staged / "hashes.json").write_text(json.dumps(rendered.hashes))
    tuning: dict[str, Any] = {}
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
        tuning[name] = {
            "search_k": tuned.search_k,
            "recall_at_10": round(tuned.recall, 4),
            "probe_queries": tuned.queries,
        }
    say("building BM25 index")
    Lexical.build(rendered.search, staged / "lexical")
    manifest = {
        "format": FORMAT,
        **identity(settings, encoder, template),
        "model_name": getattr(getattr(encoder, "spec", None), "name", "unknown"),
        "template_name": template.name,
        "trees": settings.annoy_trees,
        "tuning": tuning,
        "counts": {
            "products": len(products),
            "rejected": len(errors),
            "distinct_texts": len(set(rendered.search)),
        },
        "catalogue_hash": catalogue_hash(products),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "assemble_seconds": round(time.time() - started, 2),
        "versions": _library_versions(),
    }
    (staged / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def publish(store: IndexStore, staged: Path, settings: Settings, manifest: dict[str, Any]) -> str:
    """Commit a checked staged build and flip the pointer to it. Returns the version name."""
    version = store.new_version_name()
    manifest["version"] = version
    (staged / MANIFEST).write_text(json.dumps(manifest, indent=2))
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
