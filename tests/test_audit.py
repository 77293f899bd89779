"""The catalogue audit on the fixture catalogue (hash encoder): defects the test injects are found, each
with its evidence; variants and generic titles are not duplicates; the clean catalogue stays quiet; the
audit is stored beside its version with a report people can look at."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsys.audit import AuditData, AuditResult, AuditStore, Thresholds, audit, run_audit
from recsys.audit.defects import Injected, inject, perturb_title
from recsys.audit.findings import CONTRADICTION, DUPLICATE, KINDS, MISFILED, PRICE_OUTLIER, Finding
from recsys.build.assemble import BuildResult
from recsys.build.pipeline import build_index
from recsys.catalogue import Product, Vocabulary
from recsys.errors import AuditNotFoundError
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.settings import Settings

SEED = 12
EACH = 12
COLOUR_VARIANTS = ("p-00109", "p-00216", "p-00815")  # one duvet cover in three colours


class Defective:
    def __init__(self, settings: Settings, injected: list[Injected], extra: dict[str, Any]) -> None:
        self.settings = settings
        self.injected = injected
        self.extra = extra  # the hand-made cases

    def ids(self, kind: str) -> list[str]:
        return [i.id for i in self.injected if i.kind == kind]


def _hand_made(rows: list[dict[str, Any]], used: set[str]) -> dict[str, Any]:
    """A gender contradiction, a size variant, a same-title product of another material, and a product
    listed three times."""
    free = [r for r in rows if r["id"] not in used and r["id"] not in COLOUR_VARIANTS]
    women = next(
        r for r in free if "Women's" in r["title"] and r.get("attributes", {}).get("gender") == "women"
    )
    women["attributes"]["gender"] = "men"
    sized = next(r for r in free if r is not women and "size" in r.get("attributes", {}))
    size_variant = json.loads(json.dumps(sized)) | {"id": "var-size"}
    size_variant["attributes"]["size"] = next(
        s for s in ("XS", "XXL", "12", "4", "single") if s != sized["attributes"]["size"]
    )
    made = next(r for r in free if r not in (women, sized) and "material" in r.get("attributes", {}))
    material_variant = json.loads(json.dumps(made)) | {"id": "var-material"}
    material_variant["attributes"]["material"] = "plastic-free bamboo"
    tripled = next(r for r in free if r not in (women, sized, made) and len(r["title"].split()) >= 5)
    rng = random.Random(SEED)
    copies = [
        json.loads(json.dumps(tripled)) | {"id": f"triple-{i}", "title": perturb_title(tripled["title"], rng)}
        for i in (1, 2)
    ]
    rows += [size_variant, material_variant, *copies]
    return {
        "gender": women["id"],
        "size_variant": (sized["id"], "var-size"),
        "material_variant": (made["id"], "var-material"),
        "tripled": (tripled["id"], "triple-1", "triple-2"),
    }


@pytest.fixture(scope="module")
def defective(
    tmp_path_factory: pytest.TempPathFactory,
    base_settings: Settings,
    encoder: Encoder,
    template: Template,
    fixture_catalogue: Path,
) -> Defective:
    rows = [json.loads(line) for line in fixture_catalogue.read_text(encoding="utf-8").splitlines()]
    rows, injected = inject(rows, SEED, duplicates=EACH, misfiled=EACH, contradictions=EACH, prices=EACH)
    used = {i.id for i in injected} | {str(i.detail.get("original")) for i in injected}
    extra = _hand_made(rows, used)
    folder = tmp_path_factory.mktemp("audit")
    path = folder / "defective.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = base_settings.replace(data_dir=folder / "data")
    build_index(path, settings=settings, encoder=encoder, template=template)
    return Defective(settings, injected, extra)


@pytest.fixture(scope="module")
def stored(defective: Defective) -> tuple[AuditResult, Path]:
    return run_audit(defective.settings)


@pytest.fixture(scope="module")
def clean(full_build: tuple[Settings, BuildResult]) -> AuditResult:
    return audit(AuditData.load(full_build[1].path))


def _with(findings: list[Finding], product_id: str) -> list[Finding]:
    return [f for f in findings if product_id in f.ids]


def _recall(result: AuditResult, kind: str, ids: list[str]) -> float:
    found = {pid for f in result.of_kind(kind) for pid in f.ids}
    return sum(pid in found for pid in ids) / len(ids)


def test_injected_duplicates_are_grouped_with_their_originals(
    defective: Defective, stored: tuple[AuditResult, Path]
) -> None:
    result, _ = stored
    copies = [i for i in defective.injected if i.kind == DUPLICATE]
    together = [
        i
        for i in copies
        if any(i.detail["original"] in f.ids for f in _with(result.of_kind(DUPLICATE), i.id))
    ]
    assert len(together) >= EACH - 2, [i.detail for i in copies if i not in together]
    finding = _with(result.of_kind(DUPLICATE), together[0].id)[0]
    pair = finding.evidence["pairs"][0]
    assert pair["cosine"] >= Thresholds().duplicate_cosine and pair["title_agreement"] > 0.5
    assert 0 < finding.score <= 1 and finding.evidence["products"][0]["title"]

    original, *tripled = defective.extra["tripled"]
    group = _with(result.of_kind(DUPLICATE), original)
    assert len(group) == 1 and set(group[0].ids) == {original, *tripled}  # a group lists all its ids


def test_variants_and_generic_titles_are_not_duplicates(
    defective: Defective, stored: tuple[AuditResult, Path], clean: AuditResult
) -> None:
    result, _ = stored
    for audited in (result, clean):
        for finding in audited.of_kind(DUPLICATE):
            assert len(set(finding.ids) & set(COLOUR_VARIANTS)) <= 1, finding.ids
    for original, variant in (defective.extra["size_variant"], defective.extra["material_variant"]):
        assert not any(variant in f.ids for f in _with(result.of_kind(DUPLICATE), original)), variant


def test_misfiled_products_are_found_with_their_true_category(
    defective: Defective, stored: tuple[AuditResult, Path]
) -> None:
    result, _ = stored
    moved = {i.id: i for i in defective.injected if i.kind == MISFILED}
    assert _recall(result, MISFILED, list(moved)) >= 0.8
    found = [f for f in result.of_kind(MISFILED) if f.ids[0] in moved]
    right = [
        f for f in found if tuple(moved[f.ids[0]].detail["from"])[:-1] == (f.suggested_category or ())[:-1]
    ]
    assert len(right) >= 0.8 * len(found)
    evidence = found[0].evidence
    assert evidence["title_log_odds"] >= Thresholds().misfiled_title_odds
    assert evidence["vector_agreement"] >= Thresholds().misfiled_vector
    assert found[0].to_dict()["suggested_category"] == list(found[0].suggested_category or ())


def test_contradictions_name_the_field_and_what_the_title_says(
    defective: Defective, stored: tuple[AuditResult, Path]
) -> None:
    result, _ = stored
    changed = {i.id: i for i in defective.injected if i.kind == CONTRADICTION}
    assert _recall(result, CONTRADICTION, list(changed)) >= 0.8
    finding = next(f for f in result.of_kind(CONTRADICTION) if f.ids[0] in changed)
    assert finding.field == "colour" and finding.to_dict()["field"] == "colour"
    injected = changed[finding.ids[0]].detail
    assert finding.evidence["title_says"].lower() == injected["from"]
    assert finding.evidence["attribute"] == injected["to"].lower()
    gender = _with(result.of_kind(CONTRADICTION), defective.extra["gender"])
    assert [f.field for f in gender] == ["gender"] and gender[0].evidence["attribute"] == "men"


def test_price_errors_are_outliers_of_their_category(
    defective: Defective, stored: tuple[AuditResult, Path]
) -> None:
    result, _ = stored
    errors = [i for i in defective.injected if i.kind == PRICE_OUTLIER]
    found = {f.ids[0]: f for f in result.of_kind(PRICE_OUTLIER)}
    scaled = [i for i in errors if i.detail["error"] in ("x100", "/100")]
    assert all(i.id in found for i in scaled)
    assert sum(i.id in found for i in errors) >= 0.8 * len(errors)
    evidence = found[scaled[0].id].evidence
    assert evidence["off_by"] in ("×100", "÷100") and abs(evidence["robust_z"]) >= Thresholds().price_z
    assert evidence["reference_is_leaf"] and evidence["reference_products"] >= Thresholds().price_min_group


def test_new_findings_involve_injected_products(
    defective: Defective, stored: tuple[AuditResult, Path], clean: AuditResult
) -> None:
    """Precision as the issue defines it: of the findings the clean catalogue does not have, the share
    that involve an injected product (a duplicate's original included)."""
    result, _ = stored
    touched = {i.id for i in defective.injected} | {str(i.detail.get("original")) for i in defective.injected}
    touched |= {
        pid for value in defective.extra.values() for pid in ([value] if isinstance(value, str) else value)
    }
    before = {f.kind: [set(g.ids) for g in clean.of_kind(f.kind)] for f in clean.findings}
    new = [f for f in result.findings if not any(set(f.ids) <= old for old in before.get(f.kind, []))]
    involved = [f for f in new if set(f.ids) & touched]
    assert len(involved) >= 0.9 * len(new), [f.to_dict() for f in new if f not in involved]


def test_the_clean_fixture_catalogue_is_quiet(clean: AuditResult) -> None:
    assert clean.counts[MISFILED] == clean.counts[CONTRADICTION] == clean.counts[PRICE_OUTLIER] == 0
    assert clean.counts[DUPLICATE] <= 2  # the generator named one pair of boots alike: p-00906, p-01030
    assert set(clean.counts) == set(KINDS) and clean.seconds["total"] < 60


def test_audit_is_stored_beside_its_version_with_a_report(
    defective: Defective, stored: tuple[AuditResult, Path]
) -> None:
    result, where = stored
    index = IndexStore(defective.settings.index_dir)
    version = index.current()
    assert version == result.version and where == defective.settings.data_dir / "audits" / version
    assert not (index.path(version) / "audits").exists() and "summary.json" not in {
        p.name for p in index.path(version).iterdir()
    }
    store = AuditStore(defective.settings.data_dir)
    summary = store.summary(version)
    assert summary["counts"] == result.counts and summary["products"] == result.products
    assert len(store.findings(version)) == len(result.findings)
    assert [f["score"] for f in store.findings(version)] == sorted(
        (f["score"] for f in store.findings(version)), reverse=True
    )
    report = where / "report"
    for name in ("map.png", "prices.png"):
        data = (report / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    markdown = (report / "report.md").read_text(encoding="utf-8")
    assert all(
        title in markdown for title in ("Near-duplicates", "Misfiled", "Contradictory", "Price outliers")
    )
    with (report / "findings.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result.findings) and Counter(r["kind"] for r in rows) == Counter(result.counts)
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_second_audit_replaces_the_first_and_pruned_versions_lose_theirs(
    settings: Settings, encoder: Encoder, template: Template, small_catalogue: Path
) -> None:
    settings = settings.replace(keep_versions=1)
    store = AuditStore(settings.data_dir)
    first = build_index(small_catalogue, settings=settings, encoder=encoder, template=template).version
    with pytest.raises(AuditNotFoundError, match="run `recsys audit`"):
        store.summary(first)
    result, where = run_audit(settings, report=False)
    again, where_again = run_audit(settings, report=False)
    assert where == where_again and store.summary(first)["created_at"] == again.created_at
    assert not (where / "report").exists() and result.version == first
    second = build_index(small_catalogue, settings=settings, encoder=encoder, template=template).version
    run_audit(settings, report=False)
    assert store.versions() == [second] != [first]


# -- the checks on small in-memory catalogues ----------------------------------------------------------


def _data(rows: list[dict[str, Any]], seed: int = 0) -> AuditData:
    products = [Product.from_dict(r) for r in rows]
    vectors = np.random.default_rng(seed).standard_normal((len(rows), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return AuditData("v1", [p.to_dict() for p in products], vectors, Vocabulary.fit(products))


def test_a_small_leaf_is_priced_against_its_parent() -> None:
    rows = [
        {"id": f"a{i}", "title": f"Lamp {i}", "category": ["Home", "Lamps", "Desk"], "price": 30 + i}
        for i in range(40)
    ] + [
        {"id": f"b{i}", "title": f"Floor lamp {i}", "category": ["Home", "Lamps", "Floor"], "price": 35 + i}
        for i in range(4)
    ]
    rows[-1]["price"] = 3800.0
    findings = audit(_data(rows), clusters=False).of_kind(PRICE_OUTLIER)
    assert [f.ids[0] for f in findings] == ["b3"]
    evidence = findings[0].evidence
    assert evidence["reference"] == "Home > Lamps" and not evidence["reference_is_leaf"]
    assert evidence["reference_products"] == 44 and evidence["off_by"] == "×100"


def test_a_colour_word_that_names_a_brand_is_not_a_contradiction() -> None:
    colours = ["black", "brown", "tan", "white", "blue"]
    rows = [
        {
            "id": f"p{i}",
            "title": f"Stridewell Men {colours[i % 5].title()} Shoes",
            "category": ["Footwear", "Shoes"],
            "attributes": {"colour": colours[i % 5], "gender": "men"},
        }
        for i in range(40)
    ] + [
        {
            "id": f"rt{i}",
            "title": "Red Tape Men Casual Shoes",
            "category": ["Footwear", "Shoes"],
            "attributes": {"colour": colours[i % 3], "gender": "men"},
        }
        for i in range(12)
    ] + [{"id": "red", "title": "Red Clay Men Red Shoes", "category": ["Footwear", "Shoes"],
          "attributes": {"colour": "red", "gender": "men"}}]  # fmt: skip
    rows[7]["attributes"]["colour"] = "white"  # "Stridewell Men Tan Shoes", recorded as white
    found = audit(_data(rows), clusters=False).of_kind(CONTRADICTION)
    assert [(f.ids[0], f.field, f.evidence["title_says"]) for f in found] == [("p7", "colour", "tan")]


def test_clusters_label_what_a_large_category_contains() -> None:
    rows = [
        {"id": f"s{i}", "title": f"Trail runner {kind} shoe {i}", "category": ["Shoes", "Running"]}
        for i, kind in enumerate(["waterproof"] * 30 + ["carbon racing"] * 30)
    ]
    data = _data(rows)
    vectors = np.zeros((60, 16), dtype=np.float32)
    vectors[:30, 0] = vectors[30:, 1] = 1.0
    data.vectors = vectors + np.random.default_rng(1).normal(0, 0.01, vectors.shape).astype(np.float32)
    clusters = audit(data, Thresholds(cluster_min_category=50, cluster_size=30)).clusters
    assert sorted(c.label for c in clusters) == ["carbon / racing", "waterproof"]
    assert [len(c.ids) for c in clusters] == [30, 30] and {c.category for c in clusters} == {
        ("Shoes", "Running")
    }
    assert clusters[0].to_dict()["kind"] == "cluster" and len(clusters[0].examples) == 3
