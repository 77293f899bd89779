"""The contrastive objective: in-batch-negatives InfoNCE (multiple-negatives ranking) with hard negatives,
a tuned or learnable temperature, and the products known to be relevant masked out of the negatives."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MAX_SCALE = 100.0  # a learnt scale is capped (temperature at least 0.01), as CLIP does


def scale_parameter(temperature: float, learn: bool) -> Any:
    """``log(1 / temperature)``: a trainable scalar when ``learn``, a constant otherwise."""
    import torch

    value = torch.tensor(math.log(1.0 / temperature), dtype=torch.float32)
    return torch.nn.Parameter(value) if learn else value


def info_nce(
    queries: Any, docs: Any, positives: Sequence[int], masked: Sequence[Sequence[int]], log_scale: Any
) -> Any:
    """Mean cross-entropy of each query (row) picking its positive column among all ``docs``.

    ``queries`` (B, d) and ``docs`` (N, d) are unit vectors; ``positives[i]`` is row i's column;
    ``masked[i]`` the columns that must not count as negatives for row i (other copies of relevant
    products), its own positive excepted.
    """
    import torch

    scale = log_scale.exp().clamp(max=MAX_SCALE)
    logits = (queries @ docs.T) * scale
    mask = torch.zeros_like(logits, dtype=torch.bool)
    for row, columns in enumerate(masked):
        for column in columns:
            if column != positives[row]:
                mask[row, column] = True
    logits = logits.masked_fill(mask, float("-inf"))
    target = torch.tensor(list(positives), dtype=torch.long, device=logits.device)
    return torch.nn.functional.cross_entropy(logits, target)
