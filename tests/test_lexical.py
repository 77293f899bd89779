"""The lexical index: terms, the parts of the BM25 score, and indexes written before a part existed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from recsys.index.lexical import PARTS, Lexical
from recsys.index.tokens import bigrams, words


def _index(tmp_path: Path, texts: list[str], titles: list[str] | None = None) -> Lexical:
    Lexical.build(texts, texts if titles is None else titles, tmp_path)
    return Lexical.load(tmp_path)


def test_unit_spellings_are_one_term() -> None:
    assert words("1/2 in. copper pipe") == words('1/2" copper pipe') == words("1/2 inch copper pipe")
    assert words("4.5 cu. ft. washer") == words("4.5 cubic feet washer")


def test_bigrams_pair_adjacent_terms_after_stopwords_go() -> None:
    assert bigrams("Mouse for gaming, 1/2 in. cable") == ["mous_game", "game_1/2", "1/2_inch", "inch_cabl"]
    assert bigrams("Headphones") == []


def test_the_query_words_in_the_query_order_rank_first(tmp_path: Path) -> None:
    # the same words, the same length: only the order tells them apart
    texts = ["wireless keyboard and mouse pad", "keyboard pad and wireless mouse"]
    scores = _index(tmp_path, texts).scores("wireless mouse")
    assert scores is not None
    assert scores[1] > scores[0]
    assert float(scores.max()) == sum(part.weight for part in PARTS.values())


def test_an_index_without_a_part_scores_with_the_parts_it_has(tmp_path: Path) -> None:
    texts = ["wireless keyboard and mouse pad", "keyboard pad and wireless mouse"]
    _index(tmp_path, texts)
    shutil.rmtree(tmp_path / "bigrams")  # as an index built before title bigrams
    scores = Lexical.load(tmp_path).scores("wireless mouse")
    assert scores is not None
    assert np.isclose(scores[0], scores[1])


def test_one_word_titles_leave_the_bigram_part_out(tmp_path: Path) -> None:
    lexical = _index(tmp_path, ["red kettle steel", "blue kettle"], titles=["Kettle", "Kettle"])
    assert not (tmp_path / "bigrams").exists()
    scores = lexical.scores("red kettle")
    assert scores is not None
    assert int(np.argmax(scores)) == 0
