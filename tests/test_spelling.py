"""Spelling correction from the catalogue's own words: what is corrected and into what, what is never
touched (known words, the model's words, numbers, the parser's own words, products added since the
build), and that the correction reaches the searched text (the API's intent: tests/test_api.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.build.pipeline import build_index
from recsys.build.updates import DeltaWriter
from recsys.catalogue import Product, Spelling, Vocabulary
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.model.tokenizer import whole_words
from recsys.query.engine import Engine
from recsys.query.intent import understand
from recsys.settings import Settings

TITLES = [
    "Compact Refrigerator, Black",
    "Refrigerator Water Filter",
    "Cypress Fence Picket",
    "Cypress Fence Post",
    "Weed Wacker Trimmer Line",
    "Weed Wacker Spool",
    "Harley Davidson Mug",
    "Harley Davidson Keychain",
    "Galvanized Wood Screws",
    "Galvanized Deck Screws",
    "Kitchen Faucet",
    "Bathroom Faucet",
    "Garden Hose, 50 ft",
    "Garden Hose Nozzle",
    "Rafrigerator Magnet",  # one product's own typo: never offered as a correction
]
PRODUCTS = [Product(id=str(i), title=title) for i, title in enumerate(TITLES, start=1)]
SPELLING = Spelling.fit(PRODUCTS, model_words=["goofy", "movie", "hose"])


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("refrigirator", "refrigerator"),  # two edits in a long word
        ("cyprees fence", "cypress fence"),  # a transposition is one edit
        ("faucte", "faucet"),
        ("weedwacker line", "weed wacker line"),  # two catalogue words run together
        ("harleydavidson mug", "harley davidson mug"),
        ("garvanized screws", "galvanized screws"),
        ("Refrigirator", "refrigerator"),  # whatever the case typed
    ],
)
def test_a_word_nobody_knows_becomes_the_nearest_catalogue_words(typed: str, searched: str) -> None:
    text, replaced = SPELLING.correct(typed)
    assert text == searched
    assert replaced and all(word in typed.split() for word in replaced)


@pytest.mark.parametrize(
    "typed",
    [
        "refrigerators",  # the catalogue's word, by its stem
        "faucet",  # the catalogue's word as it is
        "goofy movie",  # the model's own words, though no product uses them
        "hoses",  # a model word's plural
        "hos 50ft",  # under four letters (though "hose" is one edit away); a number stays as typed
        "abc1234 galvanizd2",  # model numbers and words with a digit
        "zzzzqqqq",  # nothing near it: left as typed
    ],
)
def test_known_short_and_numbered_words_are_left_alone(typed: str) -> None:
    assert SPELLING.correct(typed) == (typed, {})


def test_a_correction_is_a_word_two_products_use_not_one_products_typo() -> None:
    counts = Spelling.fit(PRODUCTS).words
    assert counts["rafrigerator"] == 1 and counts["refrigerator"] == 2
    assert SPELLING.correct("refrigarator")[0] == "refrigerator"


def test_a_word_something_else_knows_is_left_alone() -> None:
    assert SPELLING.correct("faucte", known=lambda word: word == "faucte") == ("faucte", {})


def test_spelling_data_round_trips_and_a_version_without_it_corrects_nothing(tmp_path: Path) -> None:
    SPELLING.save(tmp_path / "spelling.json")
    loaded = Spelling.load(tmp_path / "spelling.json")
    assert loaded == SPELLING and loaded.correct("cyprees fence")[0] == "cypress fence"
    older = Spelling.load(tmp_path / "missing.json")
    assert older.correct("cyprees fence") == ("cyprees fence", {})


def test_the_model_words_are_its_tokenizers_whole_words(base_settings: Settings) -> None:
    words = whole_words(base_settings.resolved_model_dir)  # reads tokenizer.json: no model is loaded
    assert {"goofy", "refrigerator", "wireless"} <= words
    assert not any(w.startswith("#") for w in words) and "refrigirator" not in words
    assert whole_words(base_settings.resolved_model_dir / "missing") == frozenset()


def test_understanding_corrects_first_and_says_what_it_replaced() -> None:
    intent = understand(
        "cheep refrigirator under $300", Vocabulary.fit(PRODUCTS), lambda *_: True, spelling=SPELLING
    )
    assert intent.text == "cheep refrigerator"  # "cheep" is one edit from no word two products use
    assert intent.price_max == 300
    assert intent.to_dict()["corrections"] == {"refrigirator": "refrigerator"}
    # the parser's own words are never corrected, though this catalogue never says them
    assert (
        understand("hoze undr 20 dollars", Vocabulary(), lambda *_: True, spelling=SPELLING).price_max is None
    )
    assert (
        understand("faucets below 20 dollars", Vocabulary(), lambda *_: True, spelling=SPELLING).corrections
        == {}
    )
    assert (
        "corrections" not in understand("faucet", Vocabulary(), lambda *_: True, spelling=SPELLING).to_dict()
    )


@pytest.fixture
def engine(settings: Settings, encoder: Encoder, template: Template, tmp_path: Path) -> Engine:
    path = tmp_path / "hardware.jsonl"
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in PRODUCTS))
    build_index(path, settings=settings, encoder=encoder, template=template)
    return Engine(settings, encoder, template)


def test_the_engine_searches_the_corrected_words(engine: Engine) -> None:
    intent = engine.understand("cyprees fence")
    assert (intent.text, intent.corrections) == ("cypress fence", {"cyprees": "cypress"})
    results = engine.search("cyprees fence", k=2, intent=intent).to_list()
    assert {item["title"] for item in results} == {"Cypress Fence Picket", "Cypress Fence Post"}
    assert engine.understand("with the faucet").corrections == {}  # stopwords are nobody's typo


def test_a_product_added_since_the_build_teaches_its_words(
    engine: Engine, settings: Settings, encoder: Encoder, template: Template
) -> None:
    assert engine.understand("faucette").corrections == {"faucette": "faucet"}
    DeltaWriter(settings, encoder, template).upsert([{"id": "new-1", "title": "Faucette Bistro Chair"}])
    engine.refresh()
    assert engine.understand("faucette").corrections == {}
