"""Fine-tuning, the parts that need no model: generated queries, training pairs and their negatives, the
contrastive loss, the model identity with a finetune.json, and a fine-tune job in the job records."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest

from recsys.build import pipeline
from recsys.build.jobs import FileControl, JobRecord
from recsys.build.runner import ThreadRunner, resume_orphans
from recsys.catalogue import Product, load_catalogue, price_bands
from recsys.cli import main
from recsys.finetune.config import FinetuneConfig
from recsys.finetune.jobs import KIND, lock_key, start_finetune_job
from recsys.finetune.negatives import _top, mining_pool
from recsys.finetune.pairs import FieldIndex, as_groups, hold_out, judged_examples, similar_examples
from recsys.finetune.queries import HIGH_WORDS, LOW_WORDS, drop_words, generate, value
from recsys.finetune.run import FinetuneData
from recsys.model.encoder import ModelSpec
from recsys.settings import PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "fixtures"


@pytest.fixture(scope="module")
def products() -> list[Product]:
    return load_catalogue(FIXTURES / "catalogue.jsonl").products


def test_generated_queries_name_the_products_attributes(products: list[Product]) -> None:
    bands = price_bands(products)
    generated = generate(products, bands, range(300), random.Random(0))
    assert generated == generate(products, bands, range(300), random.Random(0))  # seeded
    recipes = {g.recipe for g in generated}
    assert {"colour+type+gender", "brand+type", "band+type", "title"} <= recipes
    for g in generated:
        product = products[g.product]
        if g.recipe == "colour+type+gender":
            assert value(product, "colour") in g.text and value(product, "type") in g.text
        if g.recipe == "brand+type":
            assert g.text.startswith(value(product, "brand") or "?")
        if g.recipe == "band+type":
            assert g.text.split()[0] in (*LOW_WORDS, *HIGH_WORDS)
            assert bands[product.id] in (0, 2)


def test_dropped_words_keep_order_and_at_least_two_words() -> None:
    rng = random.Random(1)
    title = "Marlow & Finch Unisex Rain Jacket, Weekend, Green"
    words = ["marlow", "finch", "unisex", "rain", "jacket", "weekend", "green"]
    for _ in range(50):
        kept = drop_words(title, rng).split()
        assert 2 <= len(kept) <= 6
        positions = [words.index(w) for w in kept]
        assert positions == sorted(positions)


def test_judged_pairs_top_grade_positive_lowest_grade_negative() -> None:
    position = {"a": 0, "b": 1, "c": 2, "d": 3}
    qrels = {"q1": {"a": 3.0, "b": 1.0, "c": 2.0, "x": 3.0}, "q2": {"d": 3.0}}
    examples, groups = judged_examples({"q1": "red boots", "q2": "tent"}, qrels, position)
    q1 = [e for e in examples if e.group == "q1"]
    assert [(e.positive, e.negatives) for e in q1] == [(0, (1,))]  # unknown product x is skipped
    assert q1[0].known == {0, 2}  # graded above the lowest: never a negative
    assert groups["q1"].grades == {0: 2.0, 2: 1.0}  # gain = grade - lowest grade
    third, _ = judged_examples({"q1": "red boots"}, qrels, position, positives="top-third")
    assert sorted(e.positive for e in third) == [0]  # 2.0 < 3 - 2/3
    kept, held = hold_out(examples, 0.5, 10, random.Random(0))
    assert len(held) == 1 and all(e.group not in held for e in kept)  # whole queries are held out


def test_near_misses_share_all_fields_but_one(products: list[Product]) -> None:
    bands = price_bands(products)
    fields = FieldIndex(products, bands)
    i = next(i for i, p in enumerate(products) if value(p, "colour") and value(p, "gender"))
    names = ("colour", "type", "gender")
    sharing = fields.sharing(i, names)
    assert i in sharing and all(fields.key(j, names) == fields.key(i, names) for j in sharing)
    for j in fields.near_misses(i, names):
        same = [value(products[j], n) == value(products[i], n) for n in names]
        assert same.count(True) == 2


def test_similar_pairs_share_the_fields_and_validation_groups_exclude_the_anchor(
    products: list[Product],
) -> None:
    fields = FieldIndex(products, price_bands(products))
    examples = similar_examples(fields, ("category", "gender"), range(200), random.Random(0))
    assert examples
    for e in examples:
        assert e.positive != e.anchor
        assert fields.key(e.positive, ("category", "gender")) == fields.key(e.anchor, ("category", "gender"))
        assert not set(e.negatives) & e.known
    group = as_groups(examples[:1])[0]
    assert examples[0].anchor not in group.grades and examples[0].positive in group.grades


def test_mining_pool_and_exact_top() -> None:
    import numpy as np

    vectors = np.eye(5, dtype=np.float32)
    assert _top(vectors[[2]], vectors, 3)[0][0] == 2
    pool = mining_pool(100, [5, 7], 10, random.Random(0))
    assert len(pool) == 10 and {5, 7} <= set(pool.tolist())
    assert mining_pool(5, [], 10, random.Random(0)).tolist() == [0, 1, 2, 3, 4]


def test_info_nce_masks_known_relevant_columns() -> None:
    import torch

    from recsys.finetune.loss import info_nce, scale_parameter

    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    docs = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0]]), dim=1)
    scale = scale_parameter(0.05, learn=False)
    plain = info_nce(q[:1], docs, [0], [[]], scale)
    masked = info_nce(q[:1], docs, [0], [[1]], scale)  # column 1 is also relevant: not a negative
    assert float(masked) < float(plain)
    assert scale_parameter(0.05, learn=True).requires_grad


def test_config_mix_renormalises_over_the_sources_present() -> None:
    config = FinetuneConfig()
    assert config.mix({"generated"}) == {"generated": 1.0}
    mix = config.mix({"judged", "generated"})
    assert mix == pytest.approx({"judged": 0.6, "generated": 0.4})
    assert FinetuneConfig(steps=50).every() == 10


def _model_copy(tmp_path: Path) -> Path:
    """A copy of the base model directory (its weights linked, not copied)."""
    base = Settings.from_env({}).resolved_model_dir
    copy = tmp_path / "model"
    shutil.copytree(base, copy, copy_function=lambda src, dst: Path(dst).symlink_to(src))
    return copy


def test_finetune_json_is_part_of_the_model_identity(tmp_path: Path) -> None:
    copy = _model_copy(tmp_path)
    base = ModelSpec.read(Settings.from_env({}).resolved_model_dir)
    same = ModelSpec.read(copy)
    assert same.identity == base.identity and not same.finetuned  # no finetune.json: unchanged
    (copy / "finetune.json").write_text(json.dumps({"seed": 0, "steps": 10}))
    one = ModelSpec.read(copy)
    (copy / "finetune.json").write_text(json.dumps({"seed": 1, "steps": 10}))
    other = ModelSpec.read(copy)
    assert one.finetuned and one.finetune == {"seed": 0, "steps": 10}
    assert len({base.identity, one.identity, other.identity}) == 3


def test_a_finetune_job_whose_runner_died_is_failed_not_resumed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fixture_catalogue: Path
) -> None:
    monkeypatch.setattr(pipeline, "LOCK_TTL_S", 1)
    monkeypatch.setattr(pipeline, "ORPHAN_AFTER_S", 1.5)
    control = FileControl(settings.data_dir / "jobs")
    out = settings.data_dir / "tuned"
    job = start_finetune_job(control, FinetuneData(fixture_catalogue), out)
    record = control.job(job)
    assert record is not None and record.kind == KIND and control.holder(lock_key(out)) == job
    with pytest.raises(Exception, match="already running"):
        start_finetune_job(control, FinetuneData(fixture_catalogue), out)
    time.sleep(1.7)  # nothing beats: the lock expires and the job is an orphan

    def no_model() -> tuple[object, object]:
        raise AssertionError("a fine-tune orphan must not be resumed as a reindex")

    runner = ThreadRunner(settings, control, no_model, inline=True)
    assert resume_orphans(settings, control, runner) == []
    failed = control.job(job)
    assert failed is not None and failed.status == "failed" and "start the finetune again" in failed.error
    assert JobRecord.decode({k: v for k, v in failed.encode().items() if k != "kind"}).kind == "reindex"


def test_cli_refuses_bad_finetune_arguments(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fixture_catalogue: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(settings.data_dir))
    args = ["finetune", "--catalogue", str(fixture_catalogue), "--out", str(tmp_path / "m")]
    assert main([*args, "--queries", str(FIXTURES / "queries.tsv")]) == 2  # --qrels missing
    bad = tmp_path / "knobs.json"
    bad.write_text(json.dumps({"rank": 0}))
    assert main([*args, "--config", str(bad)]) == 2
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert main(args) == 2  # an existing directory is not replaced without --force
