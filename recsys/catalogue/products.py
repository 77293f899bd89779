"""Products and catalogue files (JSONL and CSV): every row validated, bad rows reported and skipped.

Files are read line by line as bytes and decoded per line, so a byte-order mark, CRLF line ends, a
line of invalid UTF-8 or a truncated last line costs that row, never the file. Limits keep a hostile
row from costing unbounded memory downstream: a description is cut at ``MAX_DESCRIPTION`` characters,
while an id, title or attribute value over its limit, a price that is not a finite number in
``0..MAX_PRICE`` and nested attribute values are refused with the reason.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys.errors import CatalogueError

AttributeValue = str | float | int | list[str]
KNOWN_FIELDS = ("id", "title", "description", "brand", "category", "price", "in_stock", "attributes")
MAX_ID = 256  # the API addresses products by id in a URL path
MAX_TITLE = 1_000
MAX_TEXT = 1_000  # brand, a category part, an attribute value
MAX_DESCRIPTION = 20_000  # longer descriptions are cut: the model reads a few hundred tokens of them
MAX_PRICE = 1e9
BOM = "\ufeff"


@dataclass(frozen=True)
class Product:
    """One catalogue product, in the interchange format of docs/DATA.md."""

    id: str
    title: str
    description: str | None = None
    brand: str | None = None
    category: tuple[str, ...] = ()
    price: float | None = None
    in_stock: bool | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title}
        if self.description is not None:
            out["description"] = self.description
        if self.brand is not None:
            out["brand"] = self.brand
        if self.category:
            out["category"] = list(self.category)
        if self.price is not None:
            out["price"] = self.price
        if self.in_stock is not None:
            out["in_stock"] = self.in_stock
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Product:
        """Validate one row; raises ``ValueError`` with the reason."""
        if not isinstance(row, Mapping):
            raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        pid = row.get("id")
        if isinstance(pid, int) and not isinstance(pid, bool):
            pid = str(pid)
        if not isinstance(pid, str) or not pid.strip():
            raise ValueError("missing or empty 'id' (a non-empty string is required)")
        if len(pid.strip()) > MAX_ID:
            raise ValueError(f"'id' is {len(pid.strip())} characters long; at most {MAX_ID} are allowed")
        title = row.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ValueError("missing or empty 'title' (a non-empty string is required)")
        if len(title) > MAX_TITLE:
            raise ValueError(f"'title' is {len(title)} characters long; at most {MAX_TITLE} are allowed")
        description = _optional_str(row, "description", limit=None)
        return cls(
            id=pid.strip(),
            title=" ".join(title.split()),
            description=description[:MAX_DESCRIPTION] if description else description,
            brand=_optional_str(row, "brand"),
            category=_category(row.get("category")),
            price=_price(row.get("price")),
            in_stock=_in_stock(row.get("in_stock")),
            attributes=_attributes(row.get("attributes"), extra=_extra_fields(row)),
        )


@dataclass(frozen=True)
class RowError:
    """A skipped row: where it was and why."""

    line: int
    reason: str
    product_id: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (id {self.product_id!r})" if self.product_id else "")
        return f"{where}: {self.reason}"


@dataclass
class LoadResult:
    products: list[Product]
    errors: list[RowError]
    rows: int = -1  # non-blank rows read; every one is a product or an error (-1: not counted)

    @property
    def adds_up(self) -> bool:
        return self.rows in (-1, len(self.products) + len(self.errors))


def load_catalogue(path: Path | str) -> LoadResult:
    """Read a ``.jsonl`` or ``.csv`` catalogue. Unreadable files raise; bad rows are skipped and reported."""
    path = Path(path)
    if not path.is_file():
        raise CatalogueError(f"catalogue file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in {".jsonl", ".ndjson", ".json", ".csv", ".tsv"}:
        raise CatalogueError(f"unsupported catalogue format {suffix!r} for {path}: use .jsonl or .csv")
    with path.open("rb") as fh:
        lines = _decoded(fh)
        if suffix in {".csv", ".tsv"}:
            return validate_rows(_csv_rows(lines, "\t" if suffix == ".tsv" else ","))
        return validate_rows(_jsonl_rows(lines))


def validate_rows(rows: Iterable[tuple[int, Any]]) -> LoadResult:
    """Validate ``(line, row)`` pairs; a row is either a mapping or an exception explaining why it is bad."""
    products: list[Product] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    count = 0
    for line, row in rows:
        count += 1
        if isinstance(row, Exception):
            errors.append(RowError(line, str(row)))
            continue
        raw_id = row.get("id") if isinstance(row, Mapping) else None
        try:
            product = Product.from_dict(row)
        except ValueError as exc:
            errors.append(RowError(line, str(exc), raw_id if isinstance(raw_id, str) else None))
            continue
        if product.id in seen:
            errors.append(RowError(line, f"duplicate id, first seen on line {seen[product.id]}", product.id))
            continue
        seen[product.id] = line
        products.append(product)
    return LoadResult(products, errors, count)


def catalogue_hash(products: Iterable[Product]) -> str:
    digest = hashlib.sha256()
    for product in products:
        digest.update(json.dumps(product.to_dict(), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _decoded(raw: Iterable[bytes]) -> Iterator[tuple[int, str | ValueError]]:
    """Numbered lines, each decoded on its own: an undecodable line is a ValueError, not a dead file."""
    for number, chunk in enumerate(raw, start=1):
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, ValueError(f"not valid UTF-8 (byte {exc.start + 1} of the line)")
            continue
        if number == 1 and text.startswith(BOM):
            text = text[1:]
        yield number, text


def _jsonl_rows(lines: Iterable[tuple[int, str | ValueError]]) -> Iterator[tuple[int, Any]]:
    for number, line in lines:
        if isinstance(line, ValueError):
            yield number, line
            continue
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            yield number, ValueError(f"unparsable JSON: {exc.msg} at column {exc.colno}")
        except ValueError as exc:
            yield number, exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _csv_rows(lines: Iterable[tuple[int, str | ValueError]], delimiter: str) -> Iterator[tuple[int, Any]]:
    """CSV: the known columns by name, ``category`` as ``A > B > C``, any other column is an attribute."""
    broken: list[tuple[int, ValueError]] = []

    def text() -> Iterator[str]:
        for number, line in lines:
            if isinstance(line, ValueError):
                broken.append((number, line))
                yield "\n"  # keeps csv's line count; a blank row is skipped
            else:
                yield line

    reader = csv.DictReader(text(), delimiter=delimiter)
    if reader.fieldnames is None or "id" not in reader.fieldnames:
        raise CatalogueError("CSV catalogue needs a header row with at least 'id' and 'title'")
    for record in reader:
        line = reader.line_num
        while broken:
            yield broken.pop(0)
        if None in record:
            yield line, ValueError(f"{len(record[None])} more field(s) than the header has")
            continue
        row: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        for key, value in record.items():
            if value is None or value == "":
                continue
            if key == "category":
                row[key] = [part.strip() for part in value.split(">") if part.strip()]
            elif key == "price":
                row[key] = _number_or_text(value)
            elif key == "in_stock":
                row[key] = {
                    "true": True,
                    "1": True,
                    "yes": True,
                    "false": False,
                    "0": False,
                    "no": False,
                }.get(value.strip().lower(), value)
            elif key == "attributes":
                try:
                    row[key] = json.loads(value)
                except json.JSONDecodeError:
                    row[key] = value
            elif key in KNOWN_FIELDS:
                row[key] = value
            else:
                attributes[key] = value
        if attributes:
            row.setdefault("attributes", {})
            if isinstance(row["attributes"], dict):
                row["attributes"].update(attributes)
        yield line, row
    yield from broken


def _number_or_text(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def _optional_str(row: Mapping[str, Any], key: str, limit: int | None = MAX_TEXT) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string, got {type(value).__name__}")
    if limit is not None and len(value) > limit:
        raise ValueError(f"'{key}' is {len(value)} characters long; at most {limit} are allowed")
    value = value.strip()
    return value or None


def _category(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(">")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("'category' must be a list of strings, root first")
    return tuple(v.strip() for v in value if v.strip())


def _price(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'price' must be a number, got {value!r}")
    price = float(value)
    if not math.isfinite(price) or not 0 <= price <= MAX_PRICE:
        raise ValueError(f"'price' must be a number in 0..{MAX_PRICE:.0e}, got {value!r}")
    return price


def _in_stock(value: Any) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ValueError(f"'in_stock' must be true or false, got {value!r}")
    return value


def _extra_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level fields beyond the interchange format (``image_url``, ...) are kept as attributes."""
    return {key: value for key, value in row.items() if key not in KNOWN_FIELDS}


def _attributes(value: Any, extra: Mapping[str, Any] | None = None) -> dict[str, AttributeValue]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ValueError("'attributes' must be an object of name to string, number or list of strings")
    out: dict[str, AttributeValue] = {}
    for name, item in {**(extra or {}), **value}.items():
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float | list):
            shown = type(item).__name__
            raise ValueError(f"attribute {name!r} must be a string, number or list of strings, got a {shown}")
        if isinstance(item, list) and not all(isinstance(v, str) for v in item):
            raise ValueError(f"attribute {name!r} is a list, so every item must be a string")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"attribute {name!r} must be a finite number, got {item!r}")
        if len(str(item)) > MAX_TEXT * 10:
            raise ValueError(f"attribute {name!r} is longer than {MAX_TEXT * 10} characters")
        out[str(name)] = item
    return out
