"""Price outliers: prices far outside their category's own distribution.

Robust statistics on the log of the price (a typo multiplies or divides, so it is a shift there): the
median and the median absolute deviation of the product's leaf category, or of the deepest parent with
enough priced products when the leaf is small. A price is an outlier when its robust z-score passes
``price_z``, or, in a category of ``price_detached_min_group`` priced products or more, when it passes
the lower ``price_z_detached`` and is detached from the rest: the next price towards the middle of its
category is ``price_gap`` times away or more (a lost digit often lands just below a category's
cheapest products, where nothing else is). Each is reported with the
reference it was judged against and the factor it is off by ("×100", "÷10").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from recsys.audit.data import AuditData, Category
from recsys.audit.findings import PRICE_OUTLIER, Finding
from recsys.audit.thresholds import Thresholds

MAD_TO_SIGMA = 1.4826
MIN_SCALE = 0.05  # log units: a category whose prices are nearly all equal still has some spread
FLOOR = 0.01  # a price of 0 is judged as one cent


@dataclass(frozen=True)
class Reference:
    category: Category
    count: int
    median: float  # of log price
    scale: float  # robust sigma of log price

    def z(self, price: float) -> float:
        return (float(np.log(max(price, FLOOR))) - self.median) / self.scale


def references(data: AuditData, min_group: int) -> dict[Category, Reference]:
    """Every category prefix with at least ``min_group`` priced products, and its statistics."""
    groups: dict[Category, list[float]] = defaultdict(list)
    for row, price in enumerate(data.prices):
        if np.isnan(price):
            continue
        category = data.categories[row]
        for depth in range(len(category) + 1):
            groups[category[:depth]].append(float(np.log(max(price, FLOOR))))
    out = {}
    for key, logs in groups.items():
        if len(logs) >= min_group:
            values = np.array(logs)
            median = float(np.median(values))
            mad = float(np.median(np.abs(values - median)))
            out[key] = Reference(key, len(values), median, max(MAD_TO_SIGMA * mad, MIN_SCALE))
    return out


def reference_of(refs: dict[Category, Reference], category: Category) -> Reference | None:
    """The leaf's statistics, else the deepest parent's with enough priced products."""
    return next((refs[category[:d]] for d in range(len(category), -1, -1) if category[:d] in refs), None)


def find_price_outliers(data: AuditData, thresholds: Thresholds) -> list[Finding]:
    refs = references(data, thresholds.price_min_group)
    groups: dict[Category, list[int]] = defaultdict(list)
    for row in np.flatnonzero(~np.isnan(data.prices)).tolist():
        ref = reference_of(refs, data.categories[row])
        if ref is not None:
            groups[ref.category].append(row)
    findings = []
    for key, members in groups.items():
        ref = refs[key]
        rows = np.array(members, dtype=np.int64)
        logs = np.log(np.maximum(data.prices[rows], FLOOR))
        z = (logs - ref.median) / ref.scale
        gap = _gaps(logs, ref.median)
        detached = (np.abs(z) >= thresholds.price_z_detached) & (gap >= np.log(thresholds.price_gap))
        if ref.count < thresholds.price_detached_min_group:
            detached[:] = False  # in a small category, a sparse tail has gaps as wide by chance
        flagged = (np.abs(z) >= thresholds.price_z) | detached
        for i in np.flatnonzero(flagged).tolist():
            findings.append(_finding(data, int(rows[i]), ref, float(z[i]), float(gap[i]), thresholds))
    return findings


def _gaps(logs: np.ndarray, median: float) -> np.ndarray:
    """Each log price's distance to the next one towards the middle (0 for a price shared with another)."""
    order = np.argsort(logs, kind="stable")
    ordered = logs[order]
    above = np.append(np.diff(ordered), np.inf)  # to the next higher price
    below = np.insert(np.diff(ordered), 0, np.inf)  # to the next lower price
    out = np.empty(len(logs))
    out[order] = np.where(ordered < median, above, below)
    return out


def _finding(
    data: AuditData, row: int, ref: Reference, z: float, gap: float, thresholds: Thresholds
) -> Finding:
    price = float(data.prices[row])
    median = float(np.exp(ref.median))
    low, high = (float(np.exp(ref.median + s * thresholds.price_z * ref.scale)) for s in (-1, 1))
    return Finding(
        kind=PRICE_OUTLIER,
        ids=(data.ids[row],),
        score=min(1.0, abs(z) / (2 * thresholds.price_z)),
        evidence={
            **data.describe(row),
            "reference": " > ".join(ref.category) or "(whole catalogue)",
            "reference_is_leaf": ref.category == data.categories[row],
            "reference_products": ref.count,
            "median_price": round(median, 2),
            "usual_range": [round(low, 2), round(high, 2)],
            "robust_z": round(z, 2),
            "detached_by": round(float(np.exp(gap)), 2) if np.isfinite(gap) else None,
            "off_by": _factor(price, median),
        },
    )


def _factor(price: float, median: float) -> str:
    """How far off, as a merchandiser reads it: "×100", "÷10", or the plain ratio."""
    ratio = max(price, FLOOR) / median
    power = round(float(np.log10(ratio)))
    if power != 0 and abs(float(np.log10(ratio)) - power) < 0.35:
        return f"×{10**power}" if power > 0 else f"÷{10**-power}"
    return f"×{ratio:.2f}"
