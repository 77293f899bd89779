"""Attribute-focused instructions: what the model sees, and the template's identity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recsys.build.texts import render
from recsys.catalogue import Product, load_catalogue, price_bands
from recsys.errors import TemplateError
from recsys.model.encoder import ModelSpec
from recsys.model.templates import Template
from recsys.settings import Settings, default_model_dir

HEADPHONES = Product(
    id="h1",
    title="Halo Wireless Headphones",
    description="<p>Great&nbsp;sound.</p>",
    brand="Auralix",
    category=("Electronics", "Audio", "Headphones"),
    price=19.0,
    attributes={"color": "black", "connectivity": "wireless", "image_url": "http://x"},
)


def test_document_puts_shopper_attributes_before_title_and_description(template: Template) -> None:
    text = template.render_document(HEADPHONES, band=0)
    for earlier, later in (("Auralix", "Halo"), ("Headphones", "Halo"), ("black", "Halo"), ("Halo", "Great")):
        assert text.index(earlier) < text.index(later), text
    assert "affordable" in text  # the low price band's label
    assert "<p>" not in text and "Great sound." in text
    assert "connectivity: wireless" in text
    assert "http://x" not in text  # URLs say nothing a shopper searches by


def test_similar_template_differs_from_search_template(template: Template) -> None:
    assert template.render_similar(HEADPHONES) != template.render_document(HEADPHONES)
    assert "Great" not in template.render_similar(HEADPHONES)


def test_query_gets_the_task_instruction(template: Template) -> None:
    rendered = template.render_query("  Affordable   WIRELESS headphones ")
    assert rendered.endswith("affordable wireless headphones")
    assert rendered != "affordable wireless headphones"  # the instruction prefix


def test_price_bands_are_relative_to_the_category(fixture_catalogue: Path) -> None:
    products = load_catalogue(fixture_catalogue).products
    bands = price_bands(products)
    by_leaf: dict[tuple[str, ...], list[tuple[float, int]]] = {}
    for p in products:
        if p.price is not None:
            by_leaf.setdefault(p.category, []).append((p.price, bands[p.id]))
    leaf, rows = max(by_leaf.items(), key=lambda item: len(item[1]))
    rows.sort()
    assert rows[0][1] == 0 and rows[-1][1] == 2, leaf
    assert [band for _, band in rows] == sorted(band for _, band in rows)


def test_template_hash_changes_with_the_template(tmp_path: Path, template: Template) -> None:
    data = json.loads(Settings().templates_path.read_text())
    data["search"]["query"] = "find: {query}"
    changed = Template.from_dict(data)
    assert changed.hash != template.hash
    assert Template.from_dict(json.loads(Settings().templates_path.read_text())).hash == template.hash


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["search"].pop("query"), "missing key"),
        (lambda d: d["search"].__setitem__("query", "no placeholder"), "must contain"),
        (lambda d: d["similar"]["document"].append("plain text"), "names no field"),
        (lambda d: d.__setitem__("price_bands", ["a", "b"]), "3 labels"),
    ],
)
def test_malformed_templates_are_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(Settings().templates_path.read_text())
    mutate(data)
    with pytest.raises(TemplateError, match=message):
        Template.from_dict(data)


def test_missing_template_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="RECSYS_TEMPLATES_PATH"):
        Template.load(tmp_path / "nope.json")


def test_render_gives_each_product_a_content_hash(template: Template) -> None:
    other = Product(id="h2", title="Halo Wireless Headphones", brand="Auralix")
    rendered = render(
        [HEADPHONES, other, HEADPHONES.__class__(**{**HEADPHONES.__dict__, "id": "h3"})], template
    )
    assert len(rendered.hashes) == 3
    assert rendered.hashes[0] == rendered.hashes[2]  # same content, same hash
    assert rendered.hashes[0] != rendered.hashes[1]


def test_model_prefixes_and_pooling_come_from_the_model_directory(tmp_path: Path) -> None:
    model = tmp_path / "e5-like"
    shutil.copytree(default_model_dir(), model)
    (model / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": "passage: "}})
    )
    (model / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 384,
                "pooling_mode_cls_token": True,
                "pooling_mode_mean_tokens": False,
            }
        )
    )
    spec = ModelSpec.read(model)
    assert (spec.query_prefix, spec.document_prefix, spec.pooling) == ("query: ", "passage: ", "cls")
    assert spec.max_length == 256 and spec.dim == 384
    assert spec.identity != ModelSpec.read(default_model_dir()).identity
