"""Interpretation of MFM: how much each reconstructed modality depends on the shared factor F_y versus its own
generative factor F_a(i), step by step (the paper's Section 4.3 analysis).

For each modality i and step t the saliency of factor F is ``|| d (sum_d x_hat_i[t, d]) / d F ||_2`` per sample,
averaged over the samples of a split at which step t is real (mask True). Factors are fixed at their values for
the sample (encoders run without gradients); only the decoder G_i is differentiated.

- :func:`reconstruction_saliency` (model, split) -> rows of (modality, step, factor, grad_norm);
- :func:`save_saliency` writes ``explain.csv`` and ``explain.png`` (a heat-map) atomically;
- :func:`explain_run` rebuilds a run from ``<run_dir>/config.json`` and ``model.pt``;
- ``add_arguments`` and ``run``: the ``mfm-bench explain RUN_DIR`` command, registered by this package's
  ``register_commands`` hook (``plugins/models/__init__.py``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any

from mfm_bench.config import device_arg
from mfm_bench.errors import MfmBenchError, MissingFileError
from mfm_bench.results import atomic_write
from mfm_bench.training import EVAL_BATCH_SIZE

FACTOR_LABELS = {"zy": "F_y"}


class ExplainError(MfmBenchError, ValueError):
    """A run folder or model that ``explain`` cannot read."""


def factor_label(code: str) -> str:
    """``zy`` -> ``F_y``; ``za_text`` -> ``F_a(text)``."""
    return FACTOR_LABELS.get(code, f"F_a({code[len('za_') :]})" if code.startswith("za_") else code)


def _check_model(model: Any) -> None:
    needed = ("encode", "factorize", "decode", "shapes", "decoder_inputs")
    if not all(hasattr(model, n) for n in needed) or not model.decoder_inputs:
        raise ExplainError(
            f"explain needs an MFM model with decoders (a variant other than discriminative_only); "
            f"got {type(model).__name__}"
        )


def reconstruction_saliency(
    model: Any, split: Any, batch_size: int = EVAL_BATCH_SIZE, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Rows ``{"modality", "step", "factor", "grad_norm"}`` for every modality, step and factor its decoder reads."""
    import torch

    from mfm_bench.training import iterate

    _check_model(model)
    dev = torch.device(device)
    model.to(dev).eval()
    sums: dict[tuple[str, int, str], float] = {}
    counts: dict[tuple[str, int], float] = {}
    for batch in iterate(split, batch_size, dev):
        with torch.no_grad():
            codes = model.encode(batch)[0]
            factors = model.factorize(codes)
        factors = {k: v.detach().requires_grad_(True) for k, v in factors.items()}
        shapes = model.shapes(batch)
        with torch.enable_grad():
            x_hat = model.decode(factors, shapes)
            for m, reads in model.decoder_inputs.items():
                xm = x_hat[m] if x_hat[m].dim() == 3 else x_hat[m].flatten(1).unsqueeze(1)  # (B, T, D); image: T = 1
                mask = batch.mask[m].reshape(xm.shape[0], -1).bool()
                if mask.shape[1] != xm.shape[1]:
                    mask = mask.any(1, keepdim=True).expand(-1, xm.shape[1])
                inputs = [factors[c] for c in reads]
                for t in range(xm.shape[1]):
                    grads = torch.autograd.grad(xm[:, t].sum(), inputs, retain_graph=True)
                    real = mask[:, t].to(xm.dtype)  # (B,)
                    counts[(m, t)] = counts.get((m, t), 0.0) + float(real.sum())
                    for c, g in zip(reads, grads):
                        key = (m, t, factor_label(c))
                        sums[key] = sums.get(key, 0.0) + float((g.norm(dim=1) * real).sum())
    rows = []
    for (m, t, f), s in sums.items():
        n = counts[(m, t)]
        rows.append({"modality": m, "step": t, "factor": f, "grad_norm": s / n if n > 0 else float("nan")})
    return rows


def save_saliency(rows: list[dict[str, Any]], out_dir: str | os.PathLike, stem: str = "explain") -> tuple[Path, Path]:
    """Write ``<stem>.csv`` (modality, step, factor, grad_norm) and ``<stem>.png`` (one heat-map row per modality and
    factor, steps across) into ``out_dir``; return both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    out = Path(out_dir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["modality", "step", "factor", "grad_norm"], lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: (r["modality"], r["factor"], r["step"])):
        w.writerow({**r, "grad_norm": f"{r['grad_norm']:.6g}"})
    csv_path = out / f"{stem}.csv"
    atomic_write(csv_path, buf.getvalue())

    labels = sorted({(r["modality"], r["factor"]) for r in rows}, key=lambda k: (k[0], k[1] != "F_y", k[1]))
    T = max(r["step"] for r in rows) + 1 if rows else 1
    grid = np.full((len(labels), T), np.nan)
    index = {k: i for i, k in enumerate(labels)}
    for r in rows:
        grid[index[(r["modality"], r["factor"])], r["step"]] = r["grad_norm"]
    # Right panel: the share of the shared factor, F_y / (F_y + F_a(i)), per modality and step; it reads the same
    # whatever each modality's scale (a 300-d text decoder has far larger gradients than a 5-d audio one).
    mods = sorted({m for m, _ in labels})
    share = np.full((len(mods), T), np.nan)
    for i, m in enumerate(mods):
        fy, fa = index.get((m, "F_y")), next((index[k] for k in labels if k[0] == m and k[1] != "F_y"), None)
        if fy is not None and fa is not None:
            share[i] = grid[fy] / np.maximum(grid[fy] + grid[fa], 1e-12)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(2 * max(6.0, 0.35 * T + 3), 0.5 * len(labels) + 1.8))
    im = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(labels)), [f"{m}: {f}" for m, f in labels])
    ax.set_xlabel("time step t")
    ax.set_title("||d x_hat_i[t] / d F||, mean over samples")
    fig.colorbar(im, ax=ax)
    im2 = ax2.imshow(share, aspect="auto", cmap="coolwarm", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax2.set_yticks(range(len(mods)), mods)
    ax2.set_xlabel("time step t")
    ax2.set_title("share of the shared factor: F_y / (F_y + F_a(i))")
    fig.colorbar(im2, ax=ax2)
    for a in (ax, ax2):
        a.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    png_path = out / f"{stem}.png"
    atomic_write(png_path, png.getvalue())
    return csv_path, png_path


def load_run(run_dir: str | os.PathLike, device: str = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """(model with its trained weights, dataset, resolved config) of a run folder written by the runner."""
    import torch

    from mfm_bench.registry import get_registry

    run = Path(run_dir)
    cfg_path, weights = run / "config.json", run / "model.pt"
    for p in (cfg_path, weights):
        if not p.is_file():
            raise MissingFileError(
                f"{p} not found: RUN_DIR must be a run folder (<out>/runs/<run_id>) holding config.json and model.pt"
            )
    try:
        config = json.loads(cfg_path.read_text())
        ds_cfg, model_cfg = config["dataset"], config["model"]
        ds_name, model_name = ds_cfg["name"], model_cfg["name"]
    except (ValueError, KeyError, TypeError) as e:
        raise ExplainError(f"{cfg_path}: expected JSON with dataset.name and model.name ({e})") from None
    reg = get_registry()
    dataset = reg.build("dataset", ds_name, **(ds_cfg.get("params") or {}))
    model = reg.build("model", model_name, dataset.spec, **(model_cfg.get("params") or {}))
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ExplainError(
            f"{weights}: not a readable model file ({first}); it may be truncated: run the suite "
            "again with --overwrite to rewrite it"
        ) from None
    model.load_state_dict(state)
    return model, dataset, config


def explain_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    out_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = EVAL_BATCH_SIZE,
) -> tuple[Path, Path]:
    """Load a run, compute :func:`reconstruction_saliency` on ``split`` and save CSV and PNG (into the run folder
    unless ``out_dir`` is given)."""
    model, dataset, _ = load_run(run_dir, device)
    rows = reconstruction_saliency(model, dataset.split(split), batch_size=batch_size, device=device)
    return save_saliency(rows, out_dir or run_dir)


# -- the command: mfm-bench explain RUN_DIR ---------------------------------------------------------------------
HELP = "MFM interpretation: gradient of each reconstruction w.r.t. F_y and F_a(i) over time (CSV + heat-map)"
DESCRIPTION = (
    HELP
    + """.

For each modality i and time step t, the norm of the gradient of the reconstruction x_hat_i[t] with respect to
the shared factor F_y and to the modality's own factor F_a(i), averaged over a split (test by default). The
numbers go to explain.csv and the heat-map to explain.png, in RUN_DIR unless --out is given."""
)
EPILOG = """examples:
  mfm-bench explain runs/quickstart/runs/3f2a9c01
  mfm-bench explain runs/quickstart/runs/3f2a9c01 --split valid --out figures/"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run folder holding config.json and model.pt (<out>/runs/<run_id>)"
    )
    p.add_argument("--split", default="test", help="split to average over (default: test)")
    p.add_argument("--out", default=None, help="folder for explain.csv and explain.png (default: RUN_DIR)")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--batch-size", type=int, default=EVAL_BATCH_SIZE, help=f"evaluation batch size (default: {EVAL_BATCH_SIZE})"
    )


def run(args: argparse.Namespace) -> int:
    csv_path, png_path = explain_run(args.run_dir, args.split, args.out, args.device, args.batch_size)
    print(f"wrote {csv_path}\nwrote {png_path}")
    return 0


__all__ = ["reconstruction_saliency", "save_saliency", "load_run", "explain_run", "factor_label", "ExplainError"]
