"""suites/baselines.yaml: it validates, and a shrunken copy runs end to end through the core runner and evaluator."""

from __future__ import annotations

import math
from pathlib import Path

import yaml
from baseline_helpers import one_thread  # noqa: F401

from mfm_bench.results import ResultStore
from mfm_bench.runner import expand, run_suite
from mfm_bench.suite import load_suite

SUITE = Path(__file__).resolve().parents[2] / "suites" / "baselines.yaml"
LABELS = {"EF-LSTM", "Late", "TFN", "LMF", "MulT", "MCTN", "MISA", "MFN", "MFM"}


def test_suite_validates_and_covers_every_baseline():
    runs = expand(load_suite(SUITE))
    assert {r.label for r in runs} == LABELS
    assert len(runs) == len(LABELS) * 3 and {r.config["seed"] for r in runs} == {0, 1, 2}
    fusions = {r.config["model"]["params"].get("fusion") for r in runs if r.config["model"]["name"] == "supervised"}
    assert fusions == {"ef_lstm", "late", "tfn", "lmf", "mult", "mfn"}


def test_shrunken_suite_runs_every_model_under_every_condition(tmp_path):
    raw = yaml.safe_load(SUITE.read_text())
    raw["datasets"][0]["params"] = {
        "seed": 0,
        "n_train": 48,
        "n_valid": 16,
        "n_test": 24,
        "seq_len": 6,
        "min_len": 3,
        "dims": {"text": 10, "audio": 4, "visual": 6},
    }
    raw["seeds"] = [0]
    raw["train"].update(epochs=6, lr=0.01, device="cpu")  # enough steps to beat the untrained weights (else: diverged)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))  # keep text first: the MCTN source
    out = tmp_path / "out"
    counts = run_suite(load_suite(path), out, progress=False, log=lambda s: None)
    assert counts == {"finished": len(LABELS), "failed": 0, "skipped": 0}
    with ResultStore(out) as store:
        by_label = {r["label"]: r["id"] for r in store.runs()}
        metrics = {
            label: {(m["condition"], m["metric"]): m["value"] for m in store.metrics(rid)}
            for label, rid in by_label.items()
        }
    conditions = ["clean", "missing:text", "missing:audio", "missing:visual", "noise:visual:1"]
    for label, ms in metrics.items():
        assert ms[("train", "params")] > 0 and ms[("train", "train_samples_per_sec")] > 0, label
        assert all(math.isfinite(ms[(c, "mae")]) for c in conditions), label
    # MCTN reads only its source (text): the evaluator's conditions on the other modalities change nothing.
    mctn = metrics["MCTN"]
    assert mctn[("missing:audio", "mae")] == mctn[("noise:visual:1", "mae")] == mctn[("clean", "mae")]
    assert mctn[("missing:text", "mae")] != mctn[("clean", "mae")]
    assert metrics["TFN"][("missing:audio", "mae")] != metrics["TFN"][("clean", "mae")]
