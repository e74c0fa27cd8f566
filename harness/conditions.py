"""Evaluation conditions as data (the robustness protocol), parsed from a suite's ``evaluate.conditions``.

Torch-free at import (a condition's batch transform imports torch when it runs), so that ``mfm-bench validate``
parses conditions without torch. :mod:`mfm_bench.evaluation` re-exports these names. Each condition has a kind, the
modalities it touches (``a+b`` for several at once) and a severity in [0, 1]; docs/evaluation.md defines them:

- ``clean``: the test split as it is (severity 0 of every sweep).
- ``missing:M`` / ``missing:M@RATE``: modality M (or every modality of ``a+b``) becomes zeros with an all-False
  mask, in every sample (rate 1) or in a seeded RATE fraction of the samples.
- ``noise:M:STD``: Gaussian noise of that std (in the features' own units, standardised for the built-in
  datasets) added at M's real steps; seeded.
- ``drop:M:RATE``: each real time step of M is dropped (zeroed, masked out) with probability RATE; seeded.

Every random choice comes from a generator seeded with the run's seed, drawn in the split's fixed order, so a
condition is the same at every evaluation of a run. The per-sample draw of ``missing@RATE`` is one uniform number
per sample compared to RATE, so the samples missing at 10% are among those missing at 30%: curves are nested.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

from .errors import MfmBenchError

if TYPE_CHECKING:
    import torch

    from .contracts import Batch, DatasetSpec

KINDS = ("clean", "missing", "noise", "drop")
SYNTAX = (
    "use clean, {missing: M}, {missing: {modality: M, rate: [0.1, 0.5]}}, {missing: {subsets: [a, b, c]}}, "
    "{noise: {modality: M, std: [0.1, 0.5]}} or {drop: {modality: M, rate: [0.2, 0.5]}}"
)


@dataclass(frozen=True)
class Condition:
    """``kind`` (clean, missing, noise, drop), ``modality`` (one name, or several joined by ``+``) and
    ``severity`` in [0, 1]: the fraction of samples (missing), the noise std (noise) or the fraction of time
    steps (drop)."""

    kind: str
    modality: str | None = None
    severity: float = 1.0

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.modality.split("+")) if self.modality else ()

    @property
    def std(self) -> float:
        return self.severity if self.kind == "noise" else 0.0

    @property
    def sweep(self) -> str:
        """The family this condition is one point of (``noise:audio``); clean belongs to every sweep at 0."""
        return "clean" if self.kind == "clean" else f"{self.kind}:{self.modality}"

    @property
    def name(self) -> str:
        if self.kind == "clean":
            return "clean"
        if self.kind == "missing":
            return f"missing:{self.modality}" + ("" if self.severity == 1 else f"@{severity_text(self.severity)}")
        return f"{self.kind}:{self.modality}:{severity_text(self.severity)}"

    def check(self, spec: DatasetSpec) -> None:
        for m in self.modalities:
            if m not in spec.modality_names:
                raise ValueError(
                    f"condition {self.name!r}: dataset {spec.name!r} has no modality {m!r} "
                    f"(it has {', '.join(spec.modality_names)})"
                )

    def transform(self, seed: int = 0):
        if self.kind == "clean":
            return None
        import torch

        gen = torch.Generator().manual_seed(seed)
        apply = {"missing": self._missing, "noise": self._noise, "drop": self._drop}[self.kind]
        return lambda batch: apply(batch, gen)

    def _missing(self, batch: Batch, gen: torch.Generator) -> Batch:
        import torch

        inputs, mask, withheld = dict(batch.inputs), dict(batch.mask), dict(batch.withheld)
        gone = torch.rand(len(batch), generator=gen) < self.severity  # (B,) one draw per sample: nested rates
        for m in self.modalities:
            x, mk = batch.inputs[m], batch.mask[m]
            keep = (~gone).to(x.device)
            inputs[m] = x * keep.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
            mask[m] = mk & keep.reshape(-1, *([1] * (mk.dim() - 1)))
            # the truth travels beside the batch so a model that rebuilds the modality can be scored (MFM)
            withheld[m] = (x, mk)
        return batch.replace(inputs=inputs, mask=mask, withheld=withheld)

    def _noise(self, batch: Batch, gen: torch.Generator) -> Batch:
        import torch

        inputs = dict(batch.inputs)
        for m in self.modalities:
            x, mk = batch.inputs[m], batch.mask[m]
            noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype) * self.severity
            real = mk.reshape(*mk.shape, *([1] * (x.dim() - mk.dim()))).to(x.dtype)
            inputs[m] = x + noise * real
        return batch.replace(inputs=inputs)

    def _drop(self, batch: Batch, gen: torch.Generator) -> Batch:
        import torch

        inputs, mask = dict(batch.inputs), dict(batch.mask)
        for m in self.modalities:
            x, mk = batch.inputs[m], batch.mask[m]
            kept = mk & (torch.rand(mk.shape, generator=gen) >= self.severity).to(mk.device)  # (B, T)
            inputs[m] = x * kept.reshape(*kept.shape, *([1] * (x.dim() - kept.dim()))).to(x.dtype)
            mask[m] = kept
        return batch.replace(inputs=inputs, mask=mask)


def severity_text(severity: float) -> str:
    """A severity as a name writes it: short (``0.5``, ``1``), and exact, since a run evaluates the conditions its
    stored names parse back to (6 significant digits would evaluate 0.1234567 as 0.123457, and name 0.1234567 and
    0.1234568 alike)."""
    short = f"{severity:g}"
    return short if float(short) == severity else repr(severity)


class ConditionError(MfmBenchError, ValueError):
    """A bad entry of a suite's ``evaluate.conditions``: ``index`` is its position, ``message`` the problem."""

    def __init__(self, index: int, message: str) -> None:
        self.index, self.message = index, message
        super().__init__(f"evaluate.conditions[{index}]: {message}")


def _levels(i: int, value: Any, what: str) -> list[float]:
    """A number or a non-empty list of numbers, each in [0, 1]."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConditionError(i, f"{what} is an empty list, which measures nothing; give one or more values in [0, 1]")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConditionError(i, f"{what} must be a number in [0, 1], got {v!r}")
        if not 0 <= v <= 1:
            raise ConditionError(
                i,
                f"{what} {v} is outside [0, 1]; severities are fractions (a noise std is in "
                "the standardised features' units): use a value from 0 to 1",
            )
        out.append(float(v))
    return out


def _repeated(names: list[str]) -> str | None:
    """The first name that ``names`` holds twice, or None."""
    return next((m for k, m in enumerate(names) if m in names[:k]), None)


def _modality(i: int, value: Any) -> str:
    """One modality name, or several joined by ``+``, each named once."""
    if not isinstance(value, str) or not value:
        raise ConditionError(i, f"a modality is a name such as text, got {value!r}")
    parts = value.split("+")
    if "" in parts:
        raise ConditionError(i, f"modality {value!r} has an empty name; join names with one '+', as in text+audio")
    twice = _repeated(parts)
    if twice is not None:
        raise ConditionError(i, f"modality {value!r} names {twice!r} twice; name each modality once")
    return value


def _names(i: int, value: Any, what: str = "modality") -> list[str]:
    """A name or a non-empty list of distinct names."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConditionError(i, f"{what} is an empty list, which measures nothing; name one or more modalities")
    names = [_modality(i, m) for m in values]
    twice = _repeated(names)
    if twice is not None:
        raise ConditionError(i, f"{what} lists {twice!r} twice; list each modality once")
    return names


def _from_string(i: int, item: str) -> list[Condition]:
    kind, _, rest = item.partition(":")
    if kind == "clean" and not rest:
        return [Condition("clean")]
    if kind == "missing" and rest:
        mod, at, rate = rest.partition("@")
        level = _levels(i, _number(i, rate), "missing rate")[0] if at else 1.0  # "missing:text@": no rate given
        return [Condition("missing", _modality(i, mod), level)]
    if kind in ("noise", "drop") and rest.count(":") == 1:
        mod, level = rest.split(":")
        return [Condition(kind, _modality(i, mod), _levels(i, _number(i, level), f"{kind} level")[0])]
    raise ConditionError(i, f"unknown condition {item!r}; {SYNTAX}")


def _number(i: int, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConditionError(i, f"severity must be a number, got {text!r}") from None


def _from_mapping(i: int, item: dict[str, Any]) -> list[Condition]:
    ((kind, spec),) = item.items()
    if kind == "missing" and not isinstance(spec, dict):
        return [Condition("missing", m) for m in _names(i, spec, "missing")]
    allowed = {"missing": {"modality", "rate", "subsets"}, "noise": {"modality", "std"}, "drop": {"modality", "rate"}}
    if kind not in allowed or not isinstance(spec, dict) or set(spec) - allowed[kind]:
        raise ConditionError(i, f"unknown condition {item!r}; {SYNTAX}")
    if "subsets" in spec:
        if "modality" in spec:
            raise ConditionError(
                i,
                "missing takes modality or subsets, not both; write one entry for each, "
                "or fold the modality into subsets",
            )
        mods = _names(i, spec["subsets"], "subsets")
        subsets = [c for k in range(1, len(mods) + 1) for c in combinations(mods, k)]
        return [
            Condition("missing", _modality(i, "+".join(s)), rate)
            for s in subsets
            for rate in _levels(i, spec.get("rate", 1.0), "missing rate")
        ]
    if "modality" not in spec:
        raise ConditionError(i, f"{kind} needs a modality: {SYNTAX}")
    key = "std" if kind == "noise" else "rate"
    levels = _levels(i, spec.get(key, 0.5 if kind == "noise" else 1.0 if kind == "missing" else 0.5), f"{kind} {key}")
    return [Condition(kind, m, v) for m in _names(i, spec["modality"]) for v in levels]


def parse_condition_items(raw: list[Any]) -> list[tuple[int, Condition]]:
    """Suite ``evaluate.conditions`` -> (index of the entry, condition) in order, without duplicates."""
    out: list[tuple[int, Condition]] = []
    for i, item in enumerate(raw or ["clean"]):
        if isinstance(item, str):
            conds = _from_string(i, item)
        elif isinstance(item, dict) and len(item) == 1:
            conds = _from_mapping(i, item)
        else:
            raise ConditionError(i, f"unknown condition {item!r}; {SYNTAX}")
        for c in conds:
            if c.kind != "clean" and c.severity == 0:
                c = Condition("clean")  # severity 0 is the clean split
            # one condition however its modalities are ordered (missing:text+audio is missing:audio+text): the
            # first spelling is kept, rather than measuring the same damage twice under two names
            if all((c.kind, c.severity, set(c.modalities)) != (o.kind, o.severity, set(o.modalities)) for _, o in out):
                out.append((i, c))
    return out


def parse_conditions(raw: list[Any]) -> list[Condition]:
    """Suite ``evaluate.conditions`` -> conditions, in order, with ``clean`` first and no duplicates.

    Raises :class:`ConditionError` naming the index of the first bad entry."""
    return [Condition("clean")] + [c for _, c in parse_condition_items(raw) if c.kind != "clean"]


def condition_from_name(name: str) -> Condition | None:
    """The condition a stored name stands for (``noise:audio:0.5``), or None for rows that are no condition
    (``train``)."""
    try:
        return _from_string(0, name)[0]
    except ConditionError:
        return None
