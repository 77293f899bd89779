"""The catalogue: products and the files they come in, and the price bands computed over them."""

from recsys.catalogue.bands import PriceBands, price_bands
from recsys.catalogue.products import (
    LoadResult,
    Product,
    RowError,
    catalogue_hash,
    load_catalogue,
    validate_rows,
)

__all__ = [
    "LoadResult",
    "PriceBands",
    "Product",
    "RowError",
    "catalogue_hash",
    "load_catalogue",
    "price_bands",
    "validate_rows",
]
