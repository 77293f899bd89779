"""The audit's knobs, with the defaults it ships with (tuned on seeded defects injected into a copy of
``../shared/data/myntra`` and a scaled fixture catalogue; see ``bench/audit.py`` and the README)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    # near-duplicates: candidates are each product's nearest neighbours in its own leaf category
    duplicate_neighbours: int = 20  # neighbours looked at per product
    duplicate_cosine: float = 0.9  # similar-vector cosine a candidate pair needs
    duplicate_title: float = 0.6  # title agreement (shared words over all words) a pair needs
    duplicate_max_extra_words: int = 2  # words one title may have that the other lacks
    duplicate_score: float = 0.85  # what a pair's score must reach
    # misfiled products: the title's words and the vector must both point at another leaf category
    misfiled_min_category: int = 20  # smaller leaf categories are never suggested, nor judged
    misfiled_title_odds: float = (
        12.0  # natural log-odds of the other category against the own, from the title
    )
    misfiled_vector: float = 0.15  # cosine of the vector (own category's direction out) to the other's mean
    # contradictions between the title (or description) and an attribute
    contradiction_min_support: int = 5  # products a mention's agreement rate is measured over
    contradiction_score: float = 0.72  # how often such a mention agrees with the attribute elsewhere
    # price outliers: robust z-score of log price in the leaf (or the parent when the leaf is small)
    price_min_group: int = 20  # priced products a group needs to be a reference
    price_z: float = 3.5  # |robust z| at which a price is an outlier
    price_z_detached: float = 2.0  # |robust z| enough for a price detached from the rest of its category
    price_gap: float = 1.3  # detached: the next price towards the middle is this factor away
    price_detached_min_group: int = 100  # priced products a category needs for the detached rule
    # clusters inside large categories
    cluster_min_category: int = 150  # products a leaf category needs to be clustered
    cluster_size: int = 60  # products per cluster, roughly (k = size / this, 2..12)
    # the 2-D map
    map_sample: int = 6000

    def replace(self, **changes: Any) -> Thresholds:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
