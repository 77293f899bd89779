"""From products to vectors: rendering each product through the templates, and embedding the texts
once (each distinct text once, and only if the content-addressed cache lacks it)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsys.catalogue import Product, price_bands
from recsys.index.embcache import EmbeddingCache
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import Settings


@dataclass(frozen=True)
class Rendered:
    """What the model sees for each product, and the content hash of it."""

    search: list[str]
    similar: list[str]
    hashes: list[str]


def render(products: Sequence[Product], template: Template, bands: dict[str, int] | None = None) -> Rendered:
    """Render ``products``; ``bands`` are the catalogue's price bands when rendering only a part of it."""
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


def embed_rendered(
    rendered: Rendered, encoder: Encoder, cache: EmbeddingCache | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Both templates' vectors from one length-sorted stream (a text both templates render alike, such
    as a bare title, is embedded once). Returns (search, similar, texts run through the model)."""
    vectors, embedded = embed([*rendered.search, *rendered.similar], encoder, cache=cache)
    return vectors[: len(rendered.search)], vectors[len(rendered.search) :], embedded


def embedding_cache(settings: Settings, encoder: Encoder) -> EmbeddingCache:
    return EmbeddingCache(settings.resolved_embeddings_dir, encoder.document_identity, encoder.dim)
