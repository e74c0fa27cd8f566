"""``mfm-bench explain RUN_DIR``: which factor each reconstructed modality depends on, step by step."""

from __future__ import annotations

import argparse
import sys

HELP = "MFM interpretation: gradient of each reconstruction w.r.t. F_y and F_a(i) over time (CSV + heat-map)"
DESCRIPTION = HELP + """.

For each modality i and time step t, the norm of the gradient of the reconstruction x_hat_i[t] with respect to
the shared factor F_y and to the modality's own factor F_a(i), averaged over a split (test by default). The
numbers go to explain.csv and the heat-map to explain.png, in RUN_DIR unless --out is given."""
EPILOG = """examples:
  mfm-bench explain runs/quickstart/runs/3f2a9c01
  mfm-bench explain runs/quickstart/runs/3f2a9c01 --split valid --out figures/"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder holding config.json and model.pt (<out>/runs/<run_id>)")
    p.add_argument("--split", default="test", help="split to average over (default: test)")
    p.add_argument("--out", default=None, help="folder for explain.csv and explain.png (default: RUN_DIR)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--batch-size", type=int, help="evaluation batch size (default: mfm_bench.training.EVAL_BATCH_SIZE)")


def run(args: argparse.Namespace) -> int:
    from mfm_bench.explain import explain_run
    from mfm_bench.training import EVAL_BATCH_SIZE

    try:
        csv_path, png_path = explain_run(args.run_dir, args.split, args.out, args.device, args.batch_size or EVAL_BATCH_SIZE)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {csv_path}\nwrote {png_path}")
    return 0
