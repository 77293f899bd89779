"""The catalogue: products and the files they come in, and what a build learns over them: the price
bands per category, the vocabulary of attribute values and the words spelling correction knows."""

from recsys.catalogue.bands import PriceBands, price_bands
from recsys.catalogue.products import (
    LoadResult,
    Product,
    RowError,
    catalogue_hash,
    load_catalogue,
    validate_rows,
)
from recsys.catalogue.spelling import Spelling
from recsys.catalogue.vocabulary import Vocabulary

__all__ = [
    "LoadResult",
    "PriceBands",
    "Product",
    "RowError",
    "Spelling",
    "Vocabulary",
    "catalogue_hash",
    "load_catalogue",
    "price_bands",
    "validate_rows",
]
