"""The evaluation index: built beside the served one, keyed by the catalogue's hash, and reused while
the model and template match, so evaluating never replaces what is served and never builds twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.settings import Settings

if TYPE_CHECKING:
    from recsys.catalogue import Product
    from recsys.index.store import IndexStore
    from recsys.model.encoder import Encoder
    from recsys.model.templates import Template

Build = Callable[[Path, Settings], Any]  # (catalogue, settings) -> builds and publishes a version


@dataclass(frozen=True)
class EvalIndex:
    settings: Settings  # the evaluation index's settings (data dir under <data_dir>/eval/<key>)
    store: IndexStore
    products: list[Product]  # the catalogue as read (bad rows skipped)
    built: bool  # whether this call built it


def eval_settings(settings: Settings, products: list[Product]) -> Settings:
    """Where the evaluation index of this catalogue lives; the embedding cache stays shared."""
    from recsys.catalogue import catalogue_hash

    key = catalogue_hash(products)[:16]
    return settings.replace(
        data_dir=settings.data_dir / "eval" / key, embeddings_dir=settings.resolved_embeddings_dir
    )


def open_eval_index(
    catalogue: Path,
    settings: Settings,
    encoder: Encoder,
    template: Template,
    build: Build,
    rebuild: bool = False,
    products: list[Product] | None = None,
) -> EvalIndex:
    """The published evaluation index of ``catalogue``, built with ``build`` when none matches.
    ``products``: the catalogue already read, if the caller has it."""
    from recsys.catalogue import load_catalogue
    from recsys.errors import IndexMismatchError
    from recsys.index.manifest import Identity
    from recsys.index.store import IndexStore

    if products is None:
        products = load_catalogue(catalogue).products
    here = eval_settings(settings, products)
    store = IndexStore(here.index_dir)
    current = store.current()
    try:
        reusable = current is not None and store.manifest(current).identity == Identity.of(encoder, template)
    except IndexMismatchError:  # an older index format: build anew (the embedding cache still holds)
        reusable = False
    if rebuild or not reusable:
        build(catalogue, here)
    return EvalIndex(here, store, products, built=rebuild or not reusable)
