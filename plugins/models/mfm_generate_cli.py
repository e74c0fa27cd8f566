"""``mfm-bench generate RUN_DIR``: MFM's conditional generation grid of a finished run on image data.

Registered by this package's ``register_commands`` hook (``plugins/models/__init__.py``); the work is
:func:`mfm_generate.write_generation`, the same the runner does after evaluating an MFM run on image data.
"""

from __future__ import annotations

import argparse

from mfm_bench.config import device_arg

HELP = "MFM on images: conditional generation grid (rows share z_y, columns z_a), read by a digit classifier"
DESCRIPTION = (
    HELP
    + """.

Rows share the discriminative code z_y of one test sample, columns the generative code z_a of another; a logistic
regression trained on the real training images reads every generated image. Writes generation.png (the grid, and
the image rebuilt from the other modalities alone) and generation.json (row and column agreement against chance,
the rebuilt image's accuracy) into RUN_DIR unless --out is given. `mfm-bench run` does the same for every MFM run
on image data."""
)
EPILOG = """examples:
  mfm-bench generate runs/digits/runs/3f2a9c01
  mfm-bench generate runs/digits/runs/3f2a9c01 --columns 20 --out figures/"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="an MFM run folder holding config.json and model.pt")
    p.add_argument("--out", default=None, help="folder for generation.png and generation.json (default: RUN_DIR)")
    p.add_argument(
        "--columns", type=int, default=10, help="z_a donors per test sample in the measurement (default: 10)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the donor choice (default: 0)")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def run(args: argparse.Namespace) -> int:
    from .mfm_explain import ExplainError, load_run
    from .mfm_generate import write_generation

    model, dataset, _ = load_run(args.run_dir, args.device)
    metrics = write_generation(model, dataset, args.out or args.run_dir, args.device, args.columns, args.seed)
    if not metrics:
        raise ExplainError(
            f"{args.run_dir}: generate needs an MFM run on a dataset with an image modality and a "
            "classification task, with z_y, z_a and decoders (variant full or kl)"
        )
    print("  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    print(f"wrote {args.out or args.run_dir}/generation.png")
    return 0
