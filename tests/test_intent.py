"""Query understanding: the parser on a table of phrasings, the catalogue's agreement on ambiguous words,
and the seed example (affordable / under $50 / premium headphones) end to end on the real model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recsys.build.pipeline import build_index
from recsys.catalogue import Product, Vocabulary
from recsys.model.encoder import Encoder, TransformerEncoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.query.intent import understand
from recsys.settings import PROJECT_ROOT, Settings


def product(pid: str, title: str, brand: str, category: list[str], **attributes: Any) -> Product:
    return Product(
        id=pid, title=title, brand=brand, category=tuple(category), price=10.0, attributes=attributes
    )


CATALOGUE = [
    product("1", "Apple iPhone 15 case", "Apple", ["Phones", "Phone Cases"], colour="black"),
    product("2", "Fresh orange juice", "Sunny", ["Grocery", "Juice"], colour="orange"),
    product(
        "3",
        "Leather ankle boots",
        "Strider",
        ["Footwear", "Boots"],
        colour="black",
        gender="men",
        size="10",
        material="leather",
    ),
    product("4", "Rose gold watch", "Tockwell", ["Watches"], colour="rose gold", gender="women"),
    product(
        "5", "Cotton duvet cover", "Nestwell", ["Bedding", "Duvet Covers"], size="king", material="cotton"
    ),
    product("6", "Navy blue hoodie", "Larkfield", ["Clothing", "Hoodies"], colour="navy blue", size="XL"),
    product("7", "Samsung 65 inch QLED TV", "Samsung", ["Electronics", "TVs"], colour="black"),
    product("8", "Wireless headphones", "Sonara", ["Electronics", "Headphones"], colour="white"),
    product("9", "Unisex running shoes", "Strider", ["Footwear", "Running Shoes"], gender="unisex", size="M"),
    product(
        "10",
        "Women's leather jacket",
        "Larkfield",
        ["Clothing", "Jackets"],
        material="leather",
        gender="women",
    ),
]
VOCABULARY = Vocabulary.fit(CATALOGUE)
TEXTS = {
    p.id: f"{p.title} {' '.join(p.category)} {' '.join(map(str, p.attributes.values()))}".lower()
    for p in CATALOGUE
}
HOLDERS = {
    (name, str(value).lower()): {
        p.id for p in CATALOGUE if str(p.attributes.get(name, "")).lower() == str(value).lower()
    }
    for p in CATALOGUE
    for name, value in p.attributes.items()
} | {
    ("brand", p.brand.lower()): {q.id for q in CATALOGUE if q.brand == p.brand} for p in CATALOGUE if p.brand
}


def agrees(name: str, value: str, rest: str) -> bool:
    """A stand-in for the index (BM25 > 0): some product holding the value has another word of the query."""
    holders = HOLDERS.get((name, value.lower()), set())
    stems = {w.rstrip("s") for w in rest.split()}
    return not rest or any(stems & {w.rstrip("s") for w in TEXTS[pid].split()} for pid in holders)


TABLE: list[tuple[str, dict[str, Any]]] = [
    # explicit prices
    ("wireless headphones under $50", {"text": "wireless headphones", "price_max": 50}),
    ("headphones under 50", {"price_max": 50}),
    ("below 50 speakers", {"text": "speakers", "price_max": 50}),
    ("speakers below $50", {"price_max": 50}),
    ("tv less than 500 dollars", {"text": "tv", "price_max": 500}),
    ("less than 50 dollars headphones", {"price_max": 50}),
    ("headphones cheaper than $80", {"price_max": 80}),
    ("shoes up to $60", {"price_max": 60}),
    ("jacket no more than 100 usd", {"price_max": 100}),
    ("watch under 1,000", {"price_max": 1000}),
    ("watch under $99.99", {"price_max": 99.99}),
    ("headphones over $300", {"text": "headphones", "price_min": 300}),
    ("tv over 200", {"price_min": 200}),
    ("boots above $120", {"price_min": 120}),
    ("watch more than 250 dollars", {"price_min": 250}),
    ("jacket at least $75", {"price_min": 75}),
    ("wired headphones between $20 and $60", {"text": "wired headphones", "price_min": 20, "price_max": 60}),
    ("speakers between 20 and 40", {"price_min": 20, "price_max": 40}),
    ("earbuds $20-$40", {"text": "earbuds", "price_min": 20, "price_max": 40}),
    ("earbuds $20 - 40", {"price_min": 20, "price_max": 40}),
    ("mouse 20-40 dollars", {"price_min": 20, "price_max": 40}),
    ("tv from $200 to $400", {"price_min": 200, "price_max": 400}),
    ("boots between $40 and $30", {"price_min": 30, "price_max": 40}),
    # a price then its bound, negations, symbols, thousands
    ("headphones $50 or less", {"text": "headphones", "price_max": 50, "price_min": None}),
    ("headphones $50 and under", {"text": "headphones", "price_max": 50}),
    ("headphones 40 bucks max", {"text": "headphones", "price_max": 40}),
    ("headphones $300+", {"text": "headphones", "price_min": 300, "price_max": None}),
    ("headphones $300 and up", {"text": "headphones", "price_min": 300}),
    ("watch $250 or more", {"price_min": 250}),
    ("jacket not more than $100", {"text": "jacket", "price_max": 100, "price_min": None}),
    ("jacket no less than 100 dollars", {"text": "jacket", "price_min": 100, "price_max": None}),
    ("jacket not less than $100", {"price_min": 100, "price_max": None}),
    ("speakers < 50", {"text": "speakers", "price_max": 50}),
    ("speakers >$300", {"text": "speakers", "price_min": 300}),
    ("tv under $1k", {"text": "tv", "price_max": 1000}),
    ("tv under 1.5k", {"price_max": 1500}),
    ("4k tv", {"text": "4k tv", "price_max": None, "price_min": None}),
    ("headphones priced below $50", {"text": "headphones", "price_max": 50}),
    ("headphones in the $20-$60 range", {"text": "headphones", "price_min": 20, "price_max": 60}),
    ("headphones 20$-60$", {"price_min": 20, "price_max": 60}),
    ("headphones around $50", {"text": "headphones", "price_min": 40, "price_max": 60}),
    ("a book about 1984", {"text": "a book about 1984", "price_min": None, "price_max": None}),
    ("$50 plus size dress", {"price_min": None}),
    ("charger that fills a phone in under 30 minutes", {"price_max": None}),
    # numbers that are not prices
    ("tv under 50 inch", {"text": "tv under 50 inch", "price_max": None}),
    ("55 inch tv under 500", {"text": "55 inch tv", "price_max": 500}),
    ("samsung 65 inch tv", {"price_max": None, "brand": "Samsung"}),
    ("1/2 in. pvc pipe", {"text": "1/2 in. pvc pipe", "price_max": None}),
    ("16 gb memory card", {"price_min": None, "price_max": None}),
    ("pack of 12 batteries under 10 pack", {"price_max": None}),
    ("over ear headphones", {"text": "over ear headphones", "price_min": None}),
    ("under armour shorts", {"text": "under armour shorts", "price_max": None}),
    ("$50 headphones", {"price_max": None, "price_min": None}),
    # price intent
    ("cheap headphones", {"text": "headphones", "price_band": "low"}),
    ("affordable wireless headphones", {"text": "wireless headphones", "price_band": "low"}),
    ("inexpensive boots", {"price_band": "low"}),
    ("budget tv", {"price_band": "low"}),
    ("budget-friendly speaker", {"text": "speaker", "price_band": "low"}),
    ("budget friendly speaker", {"price_band": "low"}),
    ("low cost running shoes", {"text": "running shoes", "price_band": "low"}),
    ("cheapest watch", {"price_band": "low"}),
    ("premium noise cancelling headphones", {"text": "noise cancelling headphones", "price_band": "high"}),
    ("luxury watch", {"text": "watch", "price_band": "high"}),
    ("high end headphones", {"price_band": "high"}),
    ("high-end headphones", {"price_band": "high"}),
    ("upscale leather jacket", {"price_band": "high"}),
    ("expensive watch", {"price_band": "high"}),
    # attributes from the catalogue's vocabulary
    (
        "black leather boots for men size 10",
        {"colour": "black", "material": "leather", "gender": "men", "size": "10"},
    ),
    ("samsung tv", {"brand": "Samsung", "category": "TVs"}),
    ("apple iphone case", {"brand": "Apple"}),
    ("rose gold watch", {"colour": "rose gold"}),
    ("navy blue hoodie", {"colour": "navy blue"}),
    ("men's boots", {"gender": "men", "category": "Boots"}),
    ("mens boots", {"gender": "men"}),
    ("womens leather jacket", {"gender": "women", "material": "leather"}),
    ("ladies jacket", {"gender": "women"}),
    ("king size duvet cover", {"size": "king", "category": "Duvet Covers"}),
    ("cotton duvet covers", {"material": "cotton"}),
    ("hoodie size xl", {"size": "XL"}),
    ("black boots", {"colour": "black", "category": "Boots"}),
    # ambiguity: only where the rest of the query agrees
    ("apple juice", {"brand": None, "text": "apple juice"}),
    ("orange juice", {"colour": "orange"}),
    ("orange phone case", {"colour": None}),
    ("double stroller", {"size": None}),
    ("10 pack socks", {"size": None}),
    ("size m shirt", {"size": None}),  # no M shirt in the catalogue: the rest does not agree
    ("m&m candy", {"size": None}),
    # junk and contradictions: never an error, the text searched as typed
    ("under $10 over $500", {"price_min": None, "price_max": None, "note": "contradict"}),
    ("cheap luxury watch", {"price_band": None, "note": "both cheap and premium"}),
    ("!!!", {"text": "!!!"}),
    ("$$$ 50", {"price_max": None}),
    ("under $", {"price_max": None}),
    ("zzzz qqqq", {"text": "zzzz qqqq"}),
    ("", {"text": ""}),
]


@pytest.mark.parametrize(("query", "expected"), TABLE, ids=[q or "<empty>" for q, _ in TABLE])
def test_the_parser_reads_a_shoppers_phrasing(query: str, expected: dict[str, Any]) -> None:
    intent = understand(query, VOCABULARY, agrees)
    found = intent.to_dict()
    for key, want in expected.items():
        if key == "note":
            assert intent.note is not None and want in intent.note, found
        elif want is None:
            assert key not in found or key == "text", found
        else:
            assert found.get(key) == want, found


def test_the_table_is_long_enough() -> None:
    assert len(TABLE) >= 60


def test_without_prices_in_the_catalogue_price_words_stay_words() -> None:
    intent = understand("cheap headphones under 50", VOCABULARY, agrees, prices=False)
    assert intent.empty and intent.text == "cheap headphones under 50"


def test_a_query_of_only_a_colour_and_a_product_type_filters_on_the_colour() -> None:
    assert understand("black boots", VOCABULARY, agrees).only_attribute == "colour"
    assert understand("black leather boots", VOCABULARY, agrees).only_attribute is None


def test_the_engine_confirms_mentions_against_the_served_catalogue(
    settings: Settings, encoder: Encoder, template: Template, tmp_path: Path
) -> None:
    path = tmp_path / "small.jsonl"
    path.write_text("".join(__import__("json").dumps(p.to_dict()) + "\n" for p in CATALOGUE))
    build_index(path, settings=settings, encoder=encoder, template=template)
    engine = Engine(settings, encoder, template)
    assert engine.understand("apple iphone case").attributes == {"brand": "Apple"}
    assert "brand" not in engine.understand("apple juice").attributes
    assert engine.understand("orange juice").attributes == {"colour": "orange"}
    cheap = engine.understand("cheap boots under $20")
    assert (cheap.price_band, cheap.price_max, cheap.text) == ("low", 20, "boots")
    results = engine.search("boots", intent=engine.understand("black boots"))
    assert results.intent is not None and results.to_list()
    assert all(item["attributes"]["colour"] == "black" for item in results.to_list())


@pytest.fixture(scope="module")
def electronics(
    base_settings: Settings,
    model_encoder: TransformerEncoder,
    template: Template,
    tmp_path_factory: pytest.TempPathFactory,
) -> Engine:
    settings = base_settings.replace(data_dir=tmp_path_factory.mktemp("electronics"))
    build_index(
        PROJECT_ROOT / "fixtures" / "electronics.jsonl",
        settings=settings,
        encoder=model_encoder,
        template=template,
    )
    return Engine(settings, model_encoder, template)


def top(engine: Engine, query: str) -> list[tuple[dict[str, Any], int]]:
    results = engine.search(query, k=5, intent=engine.understand(query))
    band = engine.index.band
    return [(item, int(band[engine.index.rows[item["id"]]])) for item in results.to_list()]


def test_affordable_wireless_headphones_are_wireless_headphones_in_the_low_band(electronics: Engine) -> None:
    for item, band in top(electronics, "affordable wireless headphones"):
        assert item["category"][-1] == "Headphones" and item["attributes"]["connectivity"] == "wireless"
        assert band == 0, item


def test_wireless_headphones_under_50_cost_at_most_50(electronics: Engine) -> None:
    for item, _ in top(electronics, "wireless headphones under $50"):
        assert item["category"][-1] == "Headphones" and item["attributes"]["connectivity"] == "wireless"
        assert item["price"] <= 50, item


def test_premium_noise_cancelling_headphones_are_in_the_high_band(electronics: Engine) -> None:
    for item, band in top(electronics, "premium noise cancelling headphones"):
        assert item["category"][-1] == "Headphones" and band == 2, item
