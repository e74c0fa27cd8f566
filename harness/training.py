"""One Trainer for every model: device choice, seeding, AMP, early stopping on the validation label loss.

The trainer sums ``Output.losses`` (each already weighted by the model) for the backward pass, logs every term,
and keeps the weights of the epoch with the lowest validation ``label`` loss.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch
from torch import nn

from .config import option
from .contracts import Batch, Output, TensorSplit, collate
from .errors import MfmBenchError

#: Batch size for validation, test and every other no-grad pass (evaluation, probes, explanations).
EVAL_BATCH_SIZE = 256


@dataclass
class TrainConfig:
    epochs: int = option(50, "maximum training epochs")
    batch_size: int = option(32, "training batch size")
    lr: float = option(1e-3, "Adam learning rate")
    weight_decay: float = option(0.0, "Adam weight decay")
    early_stop: int = option(8, "stop after this many epochs without a better validation label loss (0: never)")
    scheduler: Literal["none", "plateau"] = option("none", "learning-rate schedule; plateau = ReduceLROnPlateau on the validation loss")
    plateau_factor: float = option(0.5, "ReduceLROnPlateau factor")
    plateau_patience: int = option(3, "ReduceLROnPlateau patience in epochs")
    grad_clip: float = option(0.0, "clip the gradient norm to this value (0: no clipping)")
    device: str = option("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    threads: int = option(0, "CPU threads for torch's intra-op work; 0 (auto): $OMP_NUM_THREADS when set, else 1 for "
                             "models under 5M parameters, else the cores this process may use (docs/performance.md)")
    amp: bool = option(True, "bf16 autocast on CUDA (ignored on CPU)")
    compile: bool = option(False, "torch.compile the model first")
    eval_batch_size: int = option(EVAL_BATCH_SIZE, "batch size for validation and test")

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be at least 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (auto) or a positive count, got {self.threads}")


class TrainingError(MfmBenchError, RuntimeError):
    """Training cannot go on (a non-finite loss, say); the run is recorded as failed."""


@dataclass
class TrainResult:
    best_epoch: int
    best_valid_loss: float
    epochs_run: int
    seconds: float
    samples_per_sec: float
    params: int
    history: list[dict[str, float]] = field(default_factory=list)


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

    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if count_params(model) < SINGLE_THREAD_PARAMS:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def iterate(split: Any, batch_size: int, device: torch.device, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[Batch]:
    """Batches of ``split`` on ``device``. A :class:`TensorSplit` (already on the device) is sliced directly."""
    n = len(split)
    if isinstance(split, TensorSplit):
        order = torch.randperm(n, generator=generator) if shuffle else None
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size].to(split.target.device) if order is not None else slice(start, start + batch_size)
            yield split.batch(idx).to(device, non_blocking=True)
        return
    loader = torch.utils.data.DataLoader(split, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)
    for batch in loader:
        yield batch.to(device, non_blocking=True)


def on_device(split: Any, device: torch.device, budget_bytes: int = 8 << 30) -> Any:
    """Move a TensorSplit to ``device`` once when it fits (DESIGN: keep prepared data on the device)."""
    if isinstance(split, TensorSplit) and device.type != "cpu" and split.nbytes() < budget_bytes:
        return split.to(device)
    return split


class Trainer:
    """``Trainer(cfg).fit(model, train, valid, seed)`` trains in place and returns a :class:`TrainResult`."""

    def __init__(self, cfg: TrainConfig | None = None, progress: Callable[..., Any] | None = None) -> None:
        self.cfg = cfg or TrainConfig()
        self.device = resolve_device(self.cfg.device)
        self.progress = progress  # a tqdm-like factory, or None for no bar

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def fit(self, model: nn.Module, train: Any, valid: Any, seed: int = 0) -> TrainResult:
        cfg = self.cfg
        torch.set_num_threads(cfg.threads or auto_threads(model))
        seed_everything(seed)
        model.to(self.device)
        step_model = torch.compile(model) if cfg.compile else model
        train, valid = on_device(train, self.device), on_device(valid, self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
                 if cfg.scheduler == "plateau" else None)
        gen = torch.Generator().manual_seed(seed)
        best = (math.inf, 0, copy.deepcopy(model.state_dict()))
        history: list[dict[str, float]] = []
        bad_epochs, seen, train_time = 0, 0, 0.0
        bar = self.progress(total=cfg.epochs, desc="epochs", unit="ep", leave=False) if self.progress else None
        start = time.perf_counter()
        epoch = 0
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            sums: dict[str, float] = {}
            n_epoch = 0
            t0 = time.perf_counter()
            for batch in iterate(train, cfg.batch_size, self.device, shuffle=True, generator=gen):
                with self._autocast():
                    out: Output = step_model(batch)
                loss = sum(out.losses.values())
                if not torch.isfinite(loss):
                    terms = {k: float(v.detach()) for k, v in out.losses.items()}
                    raise TrainingError(f"non-finite loss at epoch {epoch}: {terms}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                b = len(batch)
                n_epoch += b
                for k, v in out.losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) * b
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            train_time += time.perf_counter() - t0
            seen += n_epoch
            valid_losses = self.evaluate_losses(step_model, valid)
            vloss = valid_losses.get("label", sum(valid_losses.values()))
            row = {"epoch": epoch, **{f"train_{k}": v / max(n_epoch, 1) for k, v in sums.items()},
                   **{f"valid_{k}": v for k, v in valid_losses.items()}, "lr": opt.param_groups[0]["lr"]}
            history.append(row)
            if sched is not None:
                sched.step(vloss)
            if vloss < best[0]:
                best = (vloss, epoch, copy.deepcopy(model.state_dict()))
                bad_epochs = 0
            else:
                bad_epochs += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(train=f"{row.get('train_label', float('nan')):.3f}", valid=f"{vloss:.3f}")
            if cfg.early_stop and bad_epochs >= cfg.early_stop:
                break
        if bar is not None:
            bar.close()
        model.load_state_dict(best[2])
        return TrainResult(
            best_epoch=best[1], best_valid_loss=float(best[0]), epochs_run=epoch,
            seconds=time.perf_counter() - start, samples_per_sec=seen / train_time if train_time > 0 else 0.0,
            params=count_params(model), history=history,
        )

    @torch.no_grad()
    def evaluate_losses(self, model: nn.Module, split: Any) -> dict[str, float]:
        """Mean of each loss term over ``split`` (model in eval mode)."""
        model.eval()
        sums: dict[str, float] = {}
        n = 0
        for batch in iterate(split, self.cfg.eval_batch_size, self.device):
            with self._autocast():
                out = model(batch)
            b = len(batch)
            n += b
            for k, v in out.losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
        return {k: v / max(n, 1) for k, v in sums.items()}


@dataclass
class Predictions:
    prediction: torch.Tensor
    target: torch.Tensor
    ids: list[str]
    codes: dict[str, torch.Tensor] = field(default_factory=dict)
    factors: dict[str, torch.Tensor] = field(default_factory=dict)
    metric_means: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def predict(model: nn.Module, split: Any, transform: Callable[[Batch], Batch] | None = None,
            device: torch.device | str = "cpu", batch_size: int = EVAL_BATCH_SIZE, amp: bool = True) -> Predictions:
    """Run ``model`` over ``split`` (each batch passed through ``transform`` first, e.g. a test condition) and
    gather predictions, targets, codes (``extras["codes"]``), true factors and extra metric means
    (``extras["metric_sums"]``), all on the CPU."""
    device = torch.device(device)
    model.eval()
    preds, targets, ids = [], [], []
    codes: dict[str, list[torch.Tensor]] = {}
    factors: dict[str, list[torch.Tensor]] = {}
    msums: dict[str, list[float]] = {}
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if (amp and device.type == "cuda") else torch.autocast("cpu", enabled=False)
    for batch in iterate(split, batch_size, device):
        if transform is not None:
            batch = transform(batch)
        with ctx:
            out = model(batch)
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
        torch.cat(preds), torch.cat(targets), ids,
        {k: torch.cat(v) for k, v in codes.items()}, {k: torch.cat(v) for k, v in factors.items()},
        {k: s / c for k, (s, c) in msums.items() if c > 0},
    )
