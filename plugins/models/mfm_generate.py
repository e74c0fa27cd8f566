"""MFM's conditional generation on image data (the paper's Section 4.4 on SVHN + MNIST), measured.

Rows share z_y (the discriminative code of one sample), columns share z_a(image) (the generative code of another
sample): the image decoder renders every (row, column) pair. If the factorisation works, the digit follows the
row and the style follows the column. Instead of eyeballing the grid, a classifier trained on the real training
images (scikit-learn's logistic regression on raw pixels) reads each generated image:

- ``gen_row_agreement``: share of generated images read as their row's label (the z_y donor's); chance 1/K;
- ``gen_column_agreement``: share read as their column's label (the z_a donor's): the digit leaking into z_a;
- ``gen_missing_acc``: the classifier's accuracy on the image rebuilt from the other modalities alone (image
  removed as the evaluator's ``missing`` condition does; surrogate codes when the model has them);
- ``gen_classifier_acc``: the classifier's accuracy on the real test images (the ceiling of the three above).

The measurement uses every test sample as a row with ``columns`` donors each; the PNG shows ``rows`` x ``columns``.
:func:`write_generation` is what ``MFM.write_artifacts`` (the runner, after evaluation) and ``mfm-bench generate``
call: it writes ``generation.png`` and ``generation.json`` into a folder and returns the metrics.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfm_bench.results import atomic_write
from mfm_bench.training import iterate


def image_modality(model: Any) -> str | None:
    """The first image modality MFM can generate with a grid (it needs z_y, z_a(image) and an image decoder)."""
    if not (getattr(model, "has_y", False) and getattr(model, "has_a", False) and getattr(model, "decodes", False)):
        return None
    if model.task.kind != "classification":
        return None
    for mod in model.spec.modalities:
        if mod.kind == "image" and f"za_{mod.name}" in model.code_dims:
            return mod.name
    return None


def _whole(split: Any, device: torch.device) -> Any:
    """The whole split as one batch (the splits this is for hold a few hundred small images)."""
    batches = list(iterate(split, 1 << 30, device))
    assert len(batches) == 1, "expected one batch"
    return batches[0]


def fit_classifier(split: Any, m: str) -> Any:
    """Logistic regression from the real images of modality ``m`` (flattened pixels) to the labels."""
    from sklearn.linear_model import LogisticRegression

    b = _whole(split, torch.device("cpu"))
    keep = b.present(m).numpy()
    x = b.inputs[m].flatten(1).numpy()[keep]
    return LogisticRegression(max_iter=2000).fit(x, b.target.numpy()[keep])


@torch.no_grad()
def factors_of(model: Any, batch: Any, m: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(F_y [N, Fy], F_a(m) [N, Fa]) of every sample in ``batch``."""
    codes = model.encode(batch)[0]
    factors = model.factorize({"zy": codes["zy"], f"za_{m}": codes[f"za_{m}"]})
    return factors["zy"], factors[f"za_{m}"]


@torch.no_grad()
def render(model: Any, fy: torch.Tensor, fa: torch.Tensor, m: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Images [N, C, H, W] from matched rows of F_y [N, Fy] and F_a(m) [N, Fa], 1024 at a time."""
    out = [
        model.decode({"zy": fy[i : i + 1024], f"za_{m}": fa[i : i + 1024]}, {m: shape}, only=[m])[m]
        for i in range(0, fy.shape[0], 1024)
    ]
    return torch.cat(out)


@torch.no_grad()
def rebuild_missing(model: Any, batch: Any, m: str) -> torch.Tensor:
    """Images [B, C, H, W] rebuilt with modality ``m`` removed (zeros, all-False mask), from the others alone."""
    inputs, mask = dict(batch.inputs), dict(batch.mask)
    inputs[m], mask[m] = torch.zeros_like(inputs[m]), torch.zeros_like(mask[m])
    gone = batch.replace(inputs=inputs, mask=mask)
    codes = model.encode(gone)[0]
    if getattr(model.cfg, "surrogate", False):
        codes = {**codes, **model.surrogate_codes(gone, m)}
    return model.decode(model.factorize(codes), model.shapes(gone), only=[m])[m]


def measure(
    model: Any, dataset: Any, m: str, columns: int = 10, seed: int = 0, device: str | torch.device = "cpu"
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, pieces for the figure) on the test split; see the module docstring."""
    dev = torch.device(device)
    model.to(dev).eval()
    clf = fit_classifier(dataset.split("train"), m)
    test = _whole(dataset.split("test"), dev)
    y = test.target.cpu().numpy()
    rng = np.random.default_rng(seed)
    n = len(y)
    donors = rng.integers(0, n, size=(n, columns))  # donors[i]: the z_a donors of row i
    fy, fa = factors_of(model, test, m)
    shape = tuple(test.inputs[m].shape[1:])
    grid = render(model, fy.repeat_interleave(columns, 0), fa[donors.reshape(-1)], m, shape)  # (n*columns, C, H, W)
    read = lambda x: clf.predict(x.flatten(1).float().cpu().numpy())  # noqa: E731
    pred = read(grid).reshape(n, columns)
    row_hits, col_hits = int((pred == y[:, None]).sum()), int((pred == y[donors]).sum())
    rebuilt = rebuild_missing(model, test, m)
    metrics = {
        "gen_row_agreement": row_hits / (n * columns),
        "gen_column_agreement": col_hits / (n * columns),
        "gen_missing_acc": float((read(rebuilt) == y).mean()),
        "gen_classifier_acc": float((read(test.inputs[m]) == y).mean()),
        "gen_chance": 1.0 / model.task.n_classes,
    }
    return metrics, {"test": test, "fy": fy, "fa": fa, "shape": shape, "rebuilt": rebuilt, "read": read}


def figure_arrays(model: Any, pieces: dict[str, Any], m: str, n_cols: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of the PNG: one row per class (its first test sample gives z_y), ``n_cols`` style donors."""
    y = pieces["test"].target.cpu().numpy()
    rows = np.array([int(np.flatnonzero(y == k)[0]) for k in np.unique(y)])
    cols = np.random.default_rng(seed + 1).choice(len(y), size=n_cols, replace=False)
    fy = pieces["fy"][rows].repeat_interleave(n_cols, 0)
    fa = pieces["fa"][cols].repeat(len(rows), 1)
    grid = render(model, fy, fa, m, pieces["shape"]).cpu()  # (R*C, C, H, W)
    real = pieces["test"].inputs[m].cpu()
    show = np.arange(min(12, len(y)))
    return {
        "grid": grid.view(len(rows), n_cols, *pieces["shape"]).numpy(),
        "row_real": real[rows].numpy(),
        "col_real": real[cols].numpy(),
        "missing_real": real[show].numpy(),
        "missing_rebuilt": pieces["rebuilt"][show].cpu().numpy(),
        "missing_read": pieces["read"](pieces["rebuilt"][show]),
        "labels": y[show],
    }


def _tile(img: np.ndarray) -> np.ndarray:
    """[C, H, W] -> [H, W] (channel mean) for a grey image."""
    return img.mean(0)


def save_figure(arrays: dict[str, np.ndarray], metrics: dict[str, float], path: Path) -> Path:
    """The grid (rows: z_y donors, columns: z_a donors, real donors on the top row and left column) and, below,
    real test images over the images rebuilt without them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    R, C = arrays["grid"].shape[:2]
    K = len(arrays["missing_real"])
    fig = plt.figure(figsize=(max(C + 1, K * 0.75) * 0.75, (R + 1) * 0.75 + 2.4))
    gs = fig.add_gridspec(R + 4, max(C + 1, K), height_ratios=[1] * (R + 1) + [0.5, 1, 1], hspace=0.15, wspace=0.1)
    kw = dict(cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    for j in range(C):
        _cell(fig, gs[0, j + 1], _tile(arrays["col_real"][j]), kw, "z_a donor" if j == 0 else None)
    for i in range(R):
        _cell(fig, gs[i + 1, 0], _tile(arrays["row_real"][i]), kw, None, "z_y donor" if i == 0 else None)
        for j in range(C):
            _cell(fig, gs[i + 1, j + 1], _tile(arrays["grid"][i, j]), kw)
    for k in range(K):
        _cell(
            fig,
            gs[R + 2, k],
            _tile(arrays["missing_real"][k]),
            kw,
            f"y={arrays['labels'][k]}",
            "real" if k == 0 else None,
        )
        _cell(
            fig,
            gs[R + 3, k],
            _tile(arrays["missing_rebuilt"][k]),
            kw,
            None,
            "rebuilt" if k == 0 else None,
            f"read {arrays['missing_read'][k]}",
        )
    fig.suptitle(
        f"rows share z_y, columns share z_a: read as the row's digit {metrics['gen_row_agreement']:.2f}, "
        f"the column's {metrics['gen_column_agreement']:.2f} (chance {metrics['gen_chance']:.2f})\n"
        f"bottom: the image rebuilt from the other modality alone, read correctly "
        f"{metrics['gen_missing_acc']:.2f}",
        fontsize=8,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def _cell(
    fig: Any,
    spec: Any,
    img: np.ndarray,
    kw: dict,
    title: str | None = None,
    ylabel: str | None = None,
    xlabel: str | None = None,
) -> None:
    ax = fig.add_subplot(spec)
    ax.imshow(np.clip(img, 0.0, 1.0), **kw)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=7)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=7)


def write_generation(
    model: Any, dataset: Any, out_dir: str | Path, device: str | torch.device = "cpu", columns: int = 10, seed: int = 0
) -> dict[str, float]:
    """Measure (:func:`measure`) and write ``generation.png`` and ``generation.json`` into ``out_dir``; returns the
    metrics ({} when the model cannot generate images: no image modality, z_y, z_a or decoder)."""
    m = image_modality(model)
    if m is None:
        return {}
    metrics, pieces = measure(model, dataset, m, columns, seed, device)
    out = Path(out_dir)
    save_figure(figure_arrays(model, pieces, m, seed=seed), metrics, out / "generation.png")
    atomic_write(out / "generation.json", json.dumps({"modality": m, "columns": columns, **metrics}, indent=1))
    return metrics
