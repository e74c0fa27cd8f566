"""suites/digits.yaml and suites/seeds.yaml validate and expand to their grids; a one-epoch slice of the digits
suite runs end to end and records retrieval and probe metrics."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import torch

from mfm_bench.runner import expand, run_suite
from mfm_bench.suite import load_suite

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_seeds_suite_has_three_way_data_with_3_to_6_modalities():
    suite = load_suite(SUITES / "seeds.yaml")
    assert {m.name for m in suite.models} == {"symile", "ladder", "supervised"}
    assert {m.label for m in suite.models} >= {"Symile", "CLIP"}
    for d in suite.datasets:
        assert d.params["three_way"] > 0 and 3 <= len(d.params["dims"]) <= 6
    assert len(expand(suite)) == len(suite.datasets) * len(suite.models) * len(suite.seeds)


def test_digits_suite_runs_end_to_end(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("mnist1d")
    suite = load_suite(SUITES / "digits.yaml")
    assert {m.label for m in suite.models} >= {"Symile", "CLIP"} and len(suite.datasets) == 2
    small = tmp_path / "digits-small.yaml"
    text = (SUITES / "digits.yaml").read_text()
    text = text.replace("epochs: 20", "epochs: 1").replace("seeds: [0, 1]", "seeds: [0]")
    text = text.replace(
        "  - {name: paired-digits, label: paired-digits-missing30, params: {seed: 0, missing_train: 0.3}}\n", ""
    )
    small.write_text(text)
    n = torch.get_num_threads()
    try:
        counts = run_suite(load_suite(small), tmp_path / "out", progress=False, device="cpu", log=lambda s: None)
    finally:
        torch.set_num_threads(n)
    assert counts == {"finished": len(suite.models), "failed": 0, "skipped": 0}
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
        rows = db.execute(
            "SELECT condition, metric, value FROM metrics WHERE metric IN ('acc', 'retrieval_acc')"
        ).fetchall()
    conds = {(c, m) for c, m, _ in rows}
    assert {("clean", "acc"), ("missing:image", "acc"), ("missing:signal", "acc"), ("clean", "retrieval_acc")} <= conds
    assert all(0.0 <= v <= 1.0 for _, _, v in rows)
    # MFM runs with z_y and z_a write their generation grid and its figures; the ablations without them do not
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
        gen = db.execute(
            "SELECT r.id, m.value FROM runs r JOIN metrics m ON m.run_id = r.id WHERE m.metric = 'gen_row_agreement'"
        ).fetchall()
    labels = {m.label for m in suite.models if m.name == "mfm" and m.params.get("variant", "full") == "full"}
    assert len(gen) == len(labels) >= 1 and all(0.0 <= v <= 1.0 for _, v in gen)
    assert all((tmp_path / "out" / "runs" / rid / "generation.png").is_file() for rid, _ in gen)
