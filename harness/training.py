"""One Trainer for every model: device choice, seeding, AMP, early stopping on the validation loss.

The trainer sums ``Output.losses`` (each already weighted by the model) for the backward pass, logs every term,
and keeps the weights of the epoch with the lowest validation ``label`` loss, or total loss (``select_on``).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .contracts import Batch, Output, TensorSplit, collate
from .encoder_kinds import shown
from .errors import MfmBenchError
from .optim import FusedAdam
from .trainconfig import EVAL_BATCH_SIZE, TrainConfig  # noqa: F401 - torch-free, re-exported here


class TrainingError(MfmBenchError, RuntimeError):
    """Training cannot go on (a non-finite loss, say); the run is recorded as failed."""


def _who(model: nn.Module) -> tuple[str, str]:
    """The model plugin that built ``model`` (as the registry recorded it; "" when unknown) and its class."""
    who = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: name the model inside
    return getattr(who, "mfm_bench_plugin", ""), f"{type(who).__module__}.{type(who).__qualname__}"


def check_output(model: nn.Module, out: Any) -> Output:
    """``out`` if it is an :class:`Output`; else a :class:`TrainingError` naming the model plugin (as the registry
    built it), what its forward returned and what it must return."""
    if isinstance(out, Output):
        bad = (
            {"losses": out.losses}
            if not isinstance(out.losses, dict)
            else {k: v for k, v in out.losses.items() if not isinstance(v, torch.Tensor) or v.dim() != 0}
        )
        if not bad:
            return out  # every training step passes here: nothing more is looked up unless it raises
        name, value = next(iter(bad.items()))
        plugin, cls = _who(model)
        raise TrainingError(
            f"{plugin or 'model'} ({cls}): forward(batch) returned Output.losses"
            f"{'' if name == 'losses' and not isinstance(out.losses, dict) else f'[{name!r}]'} = {shown(value)}; "
            "each loss is a scalar tensor (already weighted and averaged over the batch, e.g. loss.mean()) in a dict "
            '{name: loss}, the task loss under "label" (the model contract, docs/plugins.md)'
        )
    plugin, cls = _who(model)
    raise TrainingError(
        f"{plugin or 'model'} ({cls}): forward(batch) returned {shown(out)}, not a mfm_bench.contracts.Output; "
        'return Output(prediction, losses={"label": task loss, ...}, extras={}) '
        "(prediction [B], [B, C] or [B, K]; the model contract, docs/plugins.md)"
    )


@dataclass
class TrainResult:
    best_epoch: int
    best_valid_loss: float
    epochs_run: int
    seconds: float
    samples_per_sec: float
    params: int
    history: list[dict[str, float]] = field(default_factory=list)
    pruned_epoch: int = 0  # the epoch after which ``stop`` ended training (0: it did not)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
    return torch.device(name)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


#: Below this many parameters a second intra-op thread does not pay on CPU (docs/performance.md, "Threads"),
#: while two processes at torch's default threads each oversubscribe the cores and lose more than half their speed.
SINGLE_THREAD_PARAMS = 5_000_000


def auto_threads(model: nn.Module) -> int:
    """The ``threads: 0`` choice: ``$OMP_NUM_THREADS`` when set, 1 for a model under :data:`SINGLE_THREAD_PARAMS`,
    else the cores this process may run on (``os.sched_getaffinity``, which honours taskset and cgroup cpusets)."""
    import os

    from .executors.base import usable_cores

    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if count_params(model) < SINGLE_THREAD_PARAMS:
        return 1
    return usable_cores()


def iterate(
    split: Any,
    batch_size: int,
    device: torch.device,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    order: torch.Tensor | None = None,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Batches of ``split`` on ``device``. A :class:`TensorSplit` (already on the device) is sliced directly.

    Shuffled, the order is drawn on the host (a seed gives the same order on every device) and copied to the
    split's device once per epoch, without waiting for the device; the samples' ids are read from the host copy.
    ``order`` (a permutation on the host) gives the order instead of a draw (``batch_order: fixed``).
    ``drop_last`` leaves out the last batch when it is smaller than ``batch_size``.
    Nothing here makes the host wait for the device."""
    n = len(split)
    if isinstance(split, TensorSplit):
        if order is None and shuffle:
            order = torch.randperm(n, generator=generator)
        rows = to_device_async(order, split.target.device) if order is not None else None
        for start in range(0, n - n % batch_size if drop_last else n, batch_size):
            end = start + batch_size
            batch = split.batch(slice(start, end)) if rows is None else split.batch(rows[start:end], order[start:end])
            yield batch.to(device, non_blocking=True)
        return
    if order is not None:
        loader = torch.utils.data.DataLoader(
            split, batch_size=batch_size, sampler=order.tolist(), collate_fn=collate, drop_last=drop_last
        )
    else:
        loader = torch.utils.data.DataLoader(
            split, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator, drop_last=drop_last
        )
    for batch in loader:
        yield batch.to(device, non_blocking=True)


def to_device_async(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` (on the host) copied to ``device`` without the host waiting for the device: on CUDA from pinned memory
    (a copy from pageable memory may wait for the stream), elsewhere a plain non-blocking copy."""
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def adam(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with PyTorch's fused kernel where every parameter allows it (floating point, on the CPU or CUDA): the
    same update as the multi-tensor (foreach) implementation, in one pass; 3.7 ms against 0.56 ms per step for
    1.2M parameters on one CPU thread (docs/performance.md). Otherwise foreach."""
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if fused and FusedAdam.applies():  # torch.optim.Adam(fused=True)'s update, without torch._dynamo (mfm_bench.optim)
        return FusedAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    kind = {"fused": True} if fused else {"foreach": True}
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kind)


def on_device(split: Any, device: torch.device, budget_bytes: int = 8 << 30) -> Any:
    """Move a TensorSplit to ``device`` once when it fits (DESIGN: keep prepared data on the device)."""
    if isinstance(split, TensorSplit) and device.type != "cpu" and split.nbytes() < budget_bytes:
        return split.to(device)
    return split


#: ``compile:`` modes under which ``torch.compile`` records CUDA graphs on CUDA
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def compile_model(model: nn.Module, mode: bool | str) -> Any:
    """``torch.compile(model)`` in ``mode`` (True: torch's default mode). Under it MFM's fast path traces plain
    operations instead of its hand-written autograd functions (docs/performance.md)."""
    return torch.compile(model, mode=None if mode is True else mode)


class LossSums:
    """Sample-weighted sums of the loss terms, kept on the device: adding a step never waits for the host.

    Non-finite terms are flagged on the device too (the step of the first one per term); :meth:`check` reads
    the flags once, at the end of an epoch. Sums are float64, so the means equal a host-side float sum."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, ...], list[torch.Tensor]] = {}  # terms -> [sums, first bad step]
        self.steps = 0
        self.count = 0

    def add(self, losses: dict[str, torch.Tensor], weight: int, check: bool = True) -> None:
        keys = tuple(losses)
        if not keys:
            self.steps, self.count = self.steps + 1, self.count + weight
            return
        values = torch.stack([v.detach().reshape(()).to(torch.float64) for v in losses.values()])  # (terms,)
        group = self.groups.get(keys)
        if group is None:
            group = self.groups[keys] = [torch.zeros_like(values), torch.full_like(values, -1.0)]
        group[0] += values * weight
        if check:
            bad = ~torch.isfinite(values) & (group[1] < 0)
            group[1] = torch.where(bad, float(self.steps), group[1])
        self.steps += 1
        self.count += weight

    def means(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for keys, (sums, _) in self.groups.items():
            for k, v in zip(keys, sums.tolist()):
                out[k] = out.get(k, 0.0) + v
        return {k: v / max(self.count, 1) for k, v in out.items()}

    def check(self, epoch: int) -> None:
        """Raise :class:`TrainingError` naming the epoch, the non-finite terms and the step each first went bad."""
        bad: dict[str, int] = {}
        for keys, (_, first) in self.groups.items():
            bad.update({k: int(step) for k, step in zip(keys, first.tolist()) if step >= 0})
        if bad:
            where = ", ".join(f"{k} (first at step {step})" for k, step in bad.items())
            raise TrainingError(f"non-finite loss at epoch {epoch}: {where}")


@dataclass
class FitState:
    """What one ``Trainer.fit`` carries from epoch to epoch."""

    model: nn.Module
    step_model: Any
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: Any
    gen: torch.Generator
    best: tuple[float, int, dict] = (math.inf, 0, {})
    history: list[dict[str, float]] = field(default_factory=list)
    bad_epochs: int = 0
    seen: int = 0
    train_time: float = 0.0
    graphs: bool = False  # a compile mode that records CUDA graphs, on CUDA: each step marks a new iteration
    order: torch.Tensor | None = None  # batch_order fixed: the one permutation every epoch follows (on the host)


class Trainer:
    """``Trainer(cfg).fit(model, train, valid, seed)`` trains in place and returns a :class:`TrainResult`.

    Inside an epoch nothing waits for the host: loss sums and non-finite flags stay on the device
    (:class:`LossSums`) and are read once per epoch."""

    def __init__(
        self,
        cfg: TrainConfig | None = None,
        progress: Callable[..., Any] | None = None,
        on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg or TrainConfig()
        self.device = resolve_device(self.cfg.device)
        self.progress = progress  # a tqdm-like factory, or None for no bar
        self.on_epoch = on_epoch  # on_epoch(epoch, history row) after each epoch (the trackers' on_epoch_end)
        self.threads: int | None = None  # torch's threads of the last fit (cfg.threads, or auto_threads' choice)

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def fit(
        self,
        model: nn.Module,
        train: Any,
        valid: Any,
        seed: int = 0,
        stop: Callable[[int, nn.Module, dict[str, Any], float], bool] | None = None,
    ) -> TrainResult:
        """Train ``model`` in place, keep its best weights (lowest validation selection loss) and return the
        record. ``stop(epoch, model, row, valid_loss)``, called after each epoch with the epoch's history row
        (which it may add to), ends training when it returns True (a search's pruner)."""
        cfg = self.cfg
        state = self._start(model, seed)
        if cfg.drop_last and len(train) < cfg.batch_size:
            raise TrainingError(
                f"train.drop_last: true with {len(train)} training samples and batch_size {cfg.batch_size} leaves no "
                "batch to train on; use a smaller batch_size or drop_last: false"
            )
        train, valid = on_device(train, self.device), on_device(valid, self.device)
        desc = "epochs (compiling)" if cfg.compile else "epochs"  # torch.compile works inside the first steps
        bar = self.progress(total=cfg.epochs, desc=desc, unit="ep", leave=False) if self.progress else None
        start = time.perf_counter()
        epoch = pruned = 0
        for epoch in range(1, cfg.epochs + 1):
            sums = self._train_epoch(state, train)
            sums.check(epoch)
            row, vloss = self._end_epoch(state, epoch, sums, valid)
            if stop is not None and stop(epoch, state.model, row, vloss):
                pruned = row["pruned"] = epoch
            if self.on_epoch is not None:
                self.on_epoch(epoch, dict(row))
            if bar is not None:
                if epoch == 1 and cfg.compile:
                    bar.set_description("epochs", refresh=False)
                bar.update(1)
                bar.set_postfix(train=f"{row.get('train_label', float('nan')):.3f}", valid=f"{vloss:.3f}")
            if pruned or (cfg.early_stop and state.bad_epochs >= cfg.early_stop):
                break
        if bar is not None:
            bar.close()
        model.load_state_dict(state.best[2])
        return TrainResult(
            best_epoch=state.best[1],
            best_valid_loss=float(state.best[0]),
            epochs_run=epoch,
            seconds=time.perf_counter() - start,
            samples_per_sec=state.seen / state.train_time if state.train_time > 0 else 0.0,
            params=count_params(model),
            history=state.history,
            pruned_epoch=pruned,
        )

    def _start(self, model: nn.Module, seed: int) -> FitState:
        """Threads, seed, device, optimiser and schedule for one fit."""
        cfg = self.cfg
        self.threads = cfg.threads or auto_threads(model)
        torch.set_num_threads(self.threads)
        seed_everything(seed)
        model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = adam(params, cfg)
        sched = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
            if cfg.scheduler == "plateau"
            else None
        )
        step_model = compile_model(model, cfg.compile) if cfg.compile else model
        return FitState(
            model,
            step_model,
            params,
            opt,
            sched,
            torch.Generator().manual_seed(seed),
            best=(math.inf, 0, copy.deepcopy(model.state_dict())),
            graphs=self.device.type == "cuda" and cfg.compile in CUDA_GRAPH_MODES,
        )

    def _train_epoch(self, state: FitState, train: Any) -> LossSums:
        """One pass over ``train``; returns the device-side loss sums (not yet checked)."""
        state.model.train()
        sums = LossSums()
        t0 = time.perf_counter()
        if self.cfg.batch_order == "fixed" and state.order is None:  # the order a shuffled first epoch would take
            state.order = torch.randperm(len(train), generator=state.gen)
        batches = iterate(
            train,
            self.cfg.batch_size,
            self.device,
            shuffle=True,
            generator=state.gen,
            order=state.order,
            drop_last=self.cfg.drop_last,
        )
        for batch in batches:
            self._train_step(state, batch, sums)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        state.train_time += time.perf_counter() - t0
        state.seen += sums.count
        return sums

    def _train_step(self, state: FitState, batch: Batch, sums: LossSums) -> None:
        if state.graphs:  # the optimiser step runs outside the graphs: say where an iteration begins
            torch.compiler.cudagraph_mark_step_begin()
        with self._autocast():
            out = check_output(state.model, state.step_model(batch))
        loss = sum(out.losses.values())
        state.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(state.params, self.cfg.grad_clip)
        state.opt.step()
        sums.add(out.losses, len(batch))

    def selection_loss(self, model: nn.Module, valid_losses: dict[str, float]) -> float:
        """The validation loss that selects the checkpoint under ``select_on``."""
        select = self.cfg.select_on if self.cfg.select_on != "auto" else getattr(model, "select_on", "label")
        if select == "total":
            return sum(valid_losses.values())
        if "label" not in valid_losses:
            # selecting on the sum instead would keep a checkpoint, stop early and judge "did not train" on
            # reconstruction or regulariser terms while the docs and the run record say the label loss
            plugin, cls = _who(model)
            raise TrainingError(
                f"{plugin or 'model'} ({cls}): forward(batch) returned losses "
                f'{sorted(valid_losses) or "{}"} with none under "label", and the checkpoint is selected on the '
                f"validation label loss (train.select_on: {self.cfg.select_on}); return the task loss under "
                '"label" (the model contract, docs/plugins.md), or set train.select_on: total to select on every '
                "loss term summed"
            )
        return valid_losses["label"]

    def _end_epoch(self, state: FitState, epoch: int, sums: LossSums, valid: Any) -> tuple[dict[str, float], float]:
        """Validation, the history row, the schedule and the best weights; returns (row, validation loss)."""
        valid_losses = self.evaluate_losses(state.step_model, valid)
        vloss = self.selection_loss(state.model, valid_losses)
        row = {
            "epoch": epoch,
            **{f"train_{k}": v for k, v in sums.means().items()},
            **{f"valid_{k}": v for k, v in valid_losses.items()},
            "lr": state.opt.param_groups[0]["lr"],
        }
        state.history.append(row)
        if state.sched is not None:
            state.sched.step(vloss)
        if vloss < state.best[0]:
            state.best = (vloss, epoch, copy.deepcopy(state.model.state_dict()))
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
        return row, vloss

    @torch.no_grad()
    def evaluate_losses(self, model: nn.Module, split: Any) -> dict[str, float]:
        """Mean of each loss term over ``split`` (model in eval mode), read from the device once."""
        model.eval()
        sums = LossSums()
        for batch in iterate(split, self.cfg.eval_batch_size, self.device):
            with self._autocast():
                out = check_output(model, model(batch))
            sums.add(out.losses, len(batch), check=False)
        return sums.means()


@dataclass
class Predictions:
    prediction: torch.Tensor
    target: torch.Tensor
    ids: list[str]
    codes: dict[str, torch.Tensor] = field(default_factory=dict)
    factors: dict[str, torch.Tensor] = field(default_factory=dict)
    metric_means: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def predict(
    model: nn.Module,
    split: Any,
    transform: Callable[[Batch], Batch] | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = EVAL_BATCH_SIZE,
    amp: bool = True,
) -> Predictions:
    """Run ``model`` over ``split`` (each batch passed through ``transform`` first, e.g. a test condition) and
    gather predictions, targets, codes (``extras["codes"]``), true factors and extra metric means
    (``extras["metric_sums"]``), all on the CPU."""
    device = torch.device(device)
    model.eval()
    preds, targets, ids = [], [], []
    codes: dict[str, list[torch.Tensor]] = {}
    factors: dict[str, list[torch.Tensor]] = {}
    msums: dict[str, list[float]] = {}
    ctx = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if (amp and device.type == "cuda")
        else torch.autocast("cpu", enabled=False)
    )
    for batch in iterate(split, batch_size, device):
        if transform is not None:
            batch = transform(batch)
        with ctx:
            out = check_output(model, model(batch))
        preds.append(out.prediction.float().cpu())
        targets.append(batch.target.cpu())
        ids.extend(batch.ids)
        for k, v in out.extras.get("codes", {}).items():
            codes.setdefault(k, []).append(v.float().cpu())
        for k, v in batch.factors.items():
            factors.setdefault(k, []).append(v.cpu())
        for k, (s, c) in out.extras.get("metric_sums", {}).items():
            acc = msums.setdefault(k, [0.0, 0.0])
            acc[0] += float(s)
            acc[1] += float(c)
    return Predictions(
        torch.cat(preds),
        torch.cat(targets),
        ids,
        {k: torch.cat(v) for k, v in codes.items()},
        {k: torch.cat(v) for k, v in factors.items()},
        {k: s / c for k, (s, c) in msums.items() if c > 0},
    )
