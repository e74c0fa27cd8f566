"""The data contracts every plugin speaks: modalities, tasks, dataset specs, batches, model outputs.

Shapes follow one convention everywhere: B batch, T time steps, D feature dim.

- A *sample* (what ``Dataset.split(name)[i]`` returns) is a dict::

      {"inputs": {modality: Tensor [T, D] (or [D], [C, H, W])},
       "mask":   {modality: bool Tensor [T]},       # True = real step
       "target": Tensor [] float | [] long | [K] float,
       "id":     str,
       "factors": {name: Tensor [F]}}               # optional: true latent factors (synthetic data)

- ``collate`` stacks samples into a :class:`Batch`.
- A missing modality is a zero tensor with an all-False mask, never a silent drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # torch is imported where tensors are made, so that specs and declarations import without it
    import torch

ModalityKind = Literal["sequence", "vector", "image"]
TaskKind = Literal["regression", "classification", "multi_regression"]


@dataclass(frozen=True)
class Modality:
    """One input stream: its name (``text``, ``audio``...), feature dim and kind; ``shape``, when the dataset
    knows it without reading data, is one sample's shape (an image's [C, H, W]), for messages."""

    name: str
    dim: int
    kind: ModalityKind = "sequence"
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Task:
    """What is predicted, which fixes the head, the loss and the metrics.

    - ``regression``: one value per sample; ``range`` e.g. ``(-3.0, 3.0)``; target [B] float.
    - ``classification``: ``n_classes`` classes; target [B] long; prediction = logits [B, C].
    - ``multi_regression``: ``targets`` names K values (POM's traits); target [B, K] float.

    ``metrics`` names a metric set registered through the ``register_metrics`` hook (a field's own conventions,
    e.g. binary and 7-class accuracy for sentiment in [-3, 3]); None scores the task with the generic metrics
    of its kind (``mfm_bench.metrics.compute_metrics``).
    """

    kind: TaskKind
    range: tuple[float, float] | None = None
    n_classes: int | None = None
    class_names: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    metrics: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("regression", "classification", "multi_regression"):
            raise ValueError(f"Task.kind must be regression, classification or multi_regression, not {self.kind!r}")
        if self.kind == "classification" and (self.n_classes is None or self.n_classes < 2):
            raise ValueError("a classification Task needs n_classes >= 2")
        if self.kind == "multi_regression" and not self.targets:
            raise ValueError("a multi_regression Task needs the names of its targets")

    @property
    def output_dim(self) -> int:
        """Width of the prediction layer: 1, n_classes or len(targets)."""
        if self.kind == "classification":
            return int(self.n_classes)  # type: ignore[arg-type]
        if self.kind == "multi_regression":
            return len(self.targets)
        return 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "range": list(self.range) if self.range else None,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "targets": list(self.targets),
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset plugin offers; models are built from this alone."""

    name: str
    modalities: tuple[Modality, ...]
    task: Task
    splits: tuple[str, ...] = ("train", "valid", "test")
    seq_len: int | None = None
    citation: str = ""
    licence: str = ""
    factors: tuple[str, ...] = ()  # names of true latent factors in samples, if any

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def input_dims(self) -> dict[str, int]:
        return {m.name: m.dim for m in self.modalities}

    def modality(self, name: str) -> Modality:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(f"dataset {self.name!r} has no modality {name!r}; it has {self.modality_names}")


@dataclass(frozen=True)
class DataFile:
    """One file a dataset reads, as its plugin declares it (no data is read to declare it).

    ``name`` is relative to its format's folder; ``role`` says what the file holds (a modality name, ``labels``,
    or any word the plugin documents); ``url`` is the pinned public source (``None``: no public download);
    ``git_blob`` (git's object id), ``sha256`` and ``size`` pin its content when known.
    """

    name: str
    role: str = ""
    url: str | None = None
    git_blob: str | None = None
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class DataFormat:
    """One layout a dataset can be read from: a folder and the files a given config needs in it.

    ``folder`` is relative to the data home (or absolute, when the config gives a path). A mirror (``--mirror``)
    serves ``<mirror>/<mirror_dir>/<name>``, e.g. ``mirror_dir="mmmo"`` for a copy of the ``mfn-h5`` folder.
    ``note`` says where to obtain files that have no ``url``.
    """

    name: str
    folder: str
    files: tuple[DataFile, ...]
    mirror_dir: str = ""
    note: str = ""

    @property
    def fetchable(self) -> bool:
        """Some file has a public source, so ``mfm-bench fetch`` can download it (files without one are reported
        with the ``note``)."""
        return any(f.url for f in self.files)


@dataclass(frozen=True)
class DataDeclaration:
    """Everything a dataset plugin says about its files: the formats it reads, in the order it tries them, and
    its standard folds (split -> ids), when it defines them. ``fetch``, ``datasets`` and ``fetch: true`` read
    only this."""

    dataset: str
    formats: tuple[DataFormat, ...]
    folds: dict[str, tuple[str, ...]] | None = None

    def format(self, name: str) -> DataFormat:
        for f in self.formats:
            if f.name == name:
                return f
        raise KeyError(f"{self.dataset} reads formats {[f.name for f in self.formats]}, not {name!r}")


@runtime_checkable
class Dataset(Protocol):
    """What a dataset plugin's factory builds: ``spec`` and ``split(name)`` (a :class:`TensorSplit` or any torch
    Dataset of samples)."""

    spec: DatasetSpec

    def split(self, name: str) -> Any: ...


@runtime_checkable
class DatasetFactory(Protocol):
    """What a dataset plugin registers: ``factory(cfg) -> Dataset``, plus two class-level declarations that read
    no data:

    - ``describe(cfg) -> DatasetSpec``: modalities with dims, task and splits (``validate`` checks conditions
      against it);
    - ``declare(cfg) -> DataDeclaration``: the files ``cfg`` needs, their sources and hashes, and the folds
      (optional: generated datasets have none).
    """

    def __call__(self, cfg: Any) -> Dataset: ...

    def describe(self, cfg: Any) -> DatasetSpec: ...


@dataclass
class Batch:
    """A collated batch. ``inputs[m]`` is [B, T, D] for sequences, ``mask[m]`` is [B, T] bool."""

    inputs: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    target: torch.Tensor
    ids: list[str]
    factors: dict[str, torch.Tensor] = field(default_factory=dict)
    #: the true (inputs, mask) of modalities an evaluation condition removed, for models that rebuild them
    withheld: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def mv(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v.to(device, non_blocking=non_blocking) for k, v in d.items()}

        withheld = {
            k: (x.to(device, non_blocking=non_blocking), m.to(device, non_blocking=non_blocking))
            for k, (x, m) in self.withheld.items()
        }
        return Batch(
            mv(self.inputs),
            mv(self.mask),
            self.target.to(device, non_blocking=non_blocking),
            self.ids,
            mv(self.factors),
            withheld,
        )

    def present(self, modality: str) -> torch.Tensor:
        """[B] bool: which samples have the modality at all (any real step)."""
        from .nn import modality_present  # nn imports this module

        return modality_present(self.mask[modality])

    def replace(self, **changes: Any) -> Batch:
        fields = {
            "inputs": self.inputs,
            "mask": self.mask,
            "target": self.target,
            "ids": self.ids,
            "factors": self.factors,
            "withheld": self.withheld,
        }
        fields.update(changes)
        return Batch(**fields)


@dataclass
class Output:
    """What ``model(batch)`` returns.

    - ``prediction``: [B] (regression), [B, C] logits (classification), [B, K] (multi_regression).
    - ``losses``: named loss terms, each already weighted; the trainer sums them and logs each.
      The task loss is always under ``"label"`` (validation early stopping watches it).
    - ``extras``: optional. Known keys the evaluator reads:
        ``"codes"``: {name: Tensor [B, H]} latent codes, scored against a dataset's true factors by linear probes;
        ``"metric_sums"``: {metric: (Tensor sum over the batch, count)} extra per-sample metrics
        (e.g. reconstruction error of a missing modality), averaged over the split by the evaluator. The count
        is an int or a tensor (a tensor keeps a training step from reading the device on the host).
    """

    prediction: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


def collate(samples: list[dict[str, Any]]) -> Batch:
    """Stack samples (see module docstring) into a :class:`Batch`."""
    import torch

    first = samples[0]
    inputs = {m: torch.stack([s["inputs"][m] for s in samples]) for m in first["inputs"]}
    mask = {m: torch.stack([s["mask"][m] for s in samples]) for m in first["mask"]}
    target = torch.stack([torch.as_tensor(s["target"]) for s in samples])
    factors = {f: torch.stack([s["factors"][f] for s in samples]) for f in first.get("factors", {})}
    return Batch(inputs, mask, target, [str(s["id"]) for s in samples], factors)


class TensorSplit:
    """A split held as stacked tensors: the fast path. A map-style dataset (``len`` and indexing), so a
    ``torch.utils.data.DataLoader`` takes it like any torch Dataset.

    The trainer recognises it and batches by indexing (no per-sample collate), and moves it to the
    device once when it fits. Dataset plugins should return one when their data fit in memory.
    """

    def __init__(
        self,
        inputs: dict[str, torch.Tensor],
        mask: dict[str, torch.Tensor],
        target: torch.Tensor,
        ids: list[str],
        factors: dict[str, torch.Tensor] | None = None,
    ) -> None:
        n = int(target.shape[0])
        for what, tensors in (("inputs", inputs), ("mask", mask)):
            for name, t in tensors.items():
                if t.shape[0] != n:  # indexing would pair samples with other samples' targets
                    raise ValueError(
                        f"TensorSplit: {what}[{name!r}] holds {t.shape[0]} samples (first dim of "
                        f"{list(t.shape)}) and target {n}; every tensor's first dim is the sample"
                    )
        if len(ids) != n:
            raise ValueError(f"TensorSplit: {len(ids)} ids for {n} targets; give one id per sample")
        self.inputs, self.mask, self.target, self.ids = inputs, mask, target, list(ids)
        self.factors = factors or {}

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "inputs": {m: t[i] for m, t in self.inputs.items()},
            "mask": {m: t[i] for m, t in self.mask.items()},
            "target": self.target[i],
            "id": self.ids[i],
            "factors": {f: t[i] for f, t in self.factors.items()},
        }

    def batch(self, index: torch.Tensor | slice, host_index: torch.Tensor | None = None) -> Batch:
        """The batch of rows ``index`` (a LongTensor or a slice), without per-sample work.

        ``host_index``: the same rows as a CPU tensor, read for the samples' ids where ``index`` lives on an
        accelerator (reading ``index`` itself back would make the host wait for the device)."""
        if isinstance(index, slice):
            ids = self.ids[index]
        else:
            ids = [self.ids[i] for i in (index if host_index is None else host_index).tolist()]
        return Batch(
            {m: t[index] for m, t in self.inputs.items()},
            {m: t[index] for m, t in self.mask.items()},
            self.target[index],
            ids,
            {f: t[index] for f, t in self.factors.items()},
        )

    def to(self, device: torch.device | str) -> TensorSplit:
        mv = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
        return TensorSplit(mv(self.inputs), mv(self.mask), self.target.to(device), self.ids, mv(self.factors))

    def nbytes(self) -> int:
        ts = list(self.inputs.values()) + list(self.mask.values()) + [self.target] + list(self.factors.values())
        return sum(t.element_size() * t.nelement() for t in ts)
