"""TensorBoard: one event-file folder per run, ``OUT/tensorboard/<run id>/``: the epoch losses against the epoch
and, at the end, every test metric (``<condition>/<metric>``) at the last epoch. A run that starts again (resumed
after an interruption, or rerun with --overwrite) replaces its folder's event files, so its curves are drawn once.
Needs the ``tensorboard`` package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_writers: dict[str, Any] = {}
_last_epoch: dict[str, int] = {}


def start(run: dict[str, Any], out: Path) -> None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError(
            f"the tensorboard tracker needs the tensorboard package ({e}); "
            "pip install -e '.[trackers]' or drop it from the suite's trackers"
        ) from None
    root = Path(out) / "tensorboard"
    folder = root / run["id"]
    try:
        # an earlier attempt of this run (interrupted, or replaced by --overwrite) would be drawn under the new
        # one, its epochs twice; the store keeps the run's results, so its old curves go
        for old in folder.glob("events.out.tfevents.*"):
            old.unlink()
        writer = SummaryWriter(log_dir=str(folder))
    except OSError as e:
        raise OSError(f"cannot write its event files under {root} ({e.strerror or e})") from None
    writer.add_text("run", f"{run['dataset_label']} / {run['label']} / seed {run['config']['seed']}")
    _writers[run["id"]] = writer
    _last_epoch.pop(run["id"], None)


def epoch(run_id: str, epoch: int, metrics: dict[str, float]) -> None:
    writer = _writers.get(run_id)
    if writer is None:
        return
    for key, value in metrics.items():
        if key != "epoch" and isinstance(value, (int, float)):
            writer.add_scalar(f"epoch/{key}", value, epoch)
    _last_epoch[run_id] = epoch


def end(run_id: str, status: str, metrics: dict[str, float]) -> None:
    writer = _writers.pop(run_id, None)
    if writer is None:
        return
    step = _last_epoch.pop(run_id, 0)
    try:
        for key, value in metrics.items():
            writer.add_scalar(key, value, step)
        writer.add_text("status", status)
    finally:
        writer.close()
