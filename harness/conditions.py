"""Evaluation conditions as data: ``clean``, ``missing:M`` and ``noise:M:STD``, parsed from a suite's
``evaluate.conditions``. Torch-free (a condition's batch transform imports torch when it is built), so that
``mfm-bench validate`` parses conditions without torch. :mod:`mfm_bench.evaluation` re-exports these names and
documents what each condition does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import MfmBenchError

if TYPE_CHECKING:
    from .contracts import Batch, DatasetSpec


@dataclass(frozen=True)
class Condition:
    kind: str  # clean | missing | noise
    modality: str | None = None
    std: float = 0.0

    @property
    def name(self) -> str:
        if self.kind == "clean":
            return "clean"
        if self.kind == "missing":
            return f"missing:{self.modality}"
        return f"noise:{self.modality}:{self.std:g}"

    def check(self, spec: DatasetSpec) -> None:
        if self.modality is not None and self.modality not in spec.modality_names:
            raise ValueError(f"condition {self.name!r}: dataset {spec.name!r} has no modality {self.modality!r} "
                             f"(it has {', '.join(spec.modality_names)})")

    def transform(self, seed: int = 0):
        if self.kind == "clean":
            return None
        import torch

        gen = torch.Generator().manual_seed(seed)

        def apply(batch: Batch) -> Batch:
            m = self.modality
            x, mask = batch.inputs[m], batch.mask[m]
            if self.kind == "missing":
                # the truth travels beside the batch so a model that rebuilds the modality can be scored (MFM)
                return batch.replace(inputs={**batch.inputs, m: torch.zeros_like(x)}, mask={**batch.mask, m: torch.zeros_like(mask)},
                                     withheld={**batch.withheld, m: (x, mask)})
            noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype) * self.std
            real = mask.reshape(*mask.shape, *([1] * (x.dim() - mask.dim()))).to(x.dtype)
            return batch.replace(inputs={**batch.inputs, m: x + noise * real})

        return apply


class ConditionError(MfmBenchError, ValueError):
    """A bad entry of a suite's ``evaluate.conditions``: ``index`` is its position, ``message`` the problem."""

    def __init__(self, index: int, message: str) -> None:
        self.index, self.message = index, message
        super().__init__(f"evaluate.conditions[{index}]: {message}")


def parse_conditions(raw: list[Any]) -> list[Condition]:
    """Suite ``evaluate.conditions`` -> conditions, in order, with ``clean`` first and no duplicates.

    Raises :class:`ConditionError` naming the index of the first bad entry."""
    out: list[Condition] = []
    for i, item in enumerate(raw or ["clean"]):
        if item == "clean":
            conds = [Condition("clean")]
        elif isinstance(item, str) and item.startswith("missing:"):
            conds = [Condition("missing", item.split(":", 1)[1])]
        elif isinstance(item, str) and item.startswith("noise:") and item.count(":") == 2:
            _, mod, std = item.split(":")
            try:
                conds = [Condition("noise", mod, float(std))]
            except ValueError:
                raise ConditionError(i, f"noise std must be a number, got {std!r}") from None
        elif isinstance(item, dict) and set(item) == {"missing"}:
            mods = item["missing"] if isinstance(item["missing"], list) else [item["missing"]]
            conds = [Condition("missing", str(m)) for m in mods]
        elif isinstance(item, dict) and set(item) == {"noise"} and isinstance(item["noise"], dict):
            spec = item["noise"]
            unknown = set(spec) - {"modality", "std"}
            if unknown or "modality" not in spec:
                raise ConditionError(i, f"noise takes {{modality: NAME, std: NUMBER or [NUMBERS]}}, got {spec}")
            stds = spec.get("std", [0.5])
            stds = stds if isinstance(stds, list) else [stds]
            mods = spec["modality"] if isinstance(spec["modality"], list) else [spec["modality"]]
            conds = [Condition("noise", str(m), float(s)) for m in mods for s in stds]
        else:
            raise ConditionError(i, f"unknown condition {item!r}; use clean, {{missing: MODALITY}} or "
                             "{noise: {modality: MODALITY, std: [0.1, 0.5]}}")
        for c in conds:
            if c not in out:
                out.append(c)
    if Condition("clean") not in out:
        out.insert(0, Condition("clean"))
    return out
