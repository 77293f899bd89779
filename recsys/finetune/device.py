"""Where training runs (``--device auto``: CUDA when present) and how it is made repeatable: torch seeded
inside a forked RNG state, so the caller's is untouched, and deterministic kernels on CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from recsys.errors import InvalidRequestError


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidRequestError(
            f"device must be auto, cpu or cuda[:N]; got {name!r}", param="device"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError(f"device {name!r} asked for, but CUDA is not available", param="device")
    return str(device)


@contextmanager
def deterministic(seed: int, device: str) -> Iterator[None]:
    """Seed torch inside a forked RNG state (restored on exit) and, on CPU, use deterministic kernels."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        if not cuda:
            torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)
