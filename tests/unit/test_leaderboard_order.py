"""Leaderboard rows follow the suite's order of models, whatever order their runs finished in: the first model is
the effective-robustness reference (docs/evaluation.md)."""

from mfm_bench.leaderboard import board, collect
from mfm_bench.outdir import fingerprint
from mfm_bench.results import ResultStore


def _config(label, seed):
    return {
        "dataset": {"name": "d", "params": {}},
        "model": {"name": "supervised", "label": label, "params": {}},
        "seed": seed,
        "train": {},
        "evaluate": {"conditions": ["clean", "missing:a"]},
    }


def _run(store, label, seed, clean, missing):
    run = {"id": f"{label}{seed}", "suite": "s", "label": label, "dataset_label": "d", "config": _config(label, seed)}
    store.start(run, {})
    store.finish(run["id"], [("clean", "test", "acc", clean), ("missing:a", "test", "acc", missing)], 1.0)


def test_a_first_model_finished_last_stays_first_and_stays_the_reference(tmp_path):
    # the base model's first attempt failed and finished on --resume after the other model (or finished later
    # under --jobs): rows were ordered as written, so it moved down and the other model became the reference
    with ResultStore(tmp_path) as store:
        store.set_meta("suite", fingerprint("s", [_config("base", 0), _config("mine", 0)]))
        store.start(
            {"id": "base0", "suite": "s", "label": "base", "dataset_label": "d", "config": _config("base", 0)}, {}
        )
        store.fail("base0", "RuntimeError: out of memory", 1.0)
        _run(store, "mine", 0, 0.9, 0.8)
        _run(store, "base", 0, 0.8, 0.5)  # the resumed run
        data = collect(store)
    assert list(data["datasets"]["d"]["clean"]) == ["base", "mine"]
    assert list(data["datasets"]["d"]["missing:a"]) == ["base", "mine"]
    tables = board(data).datasets["d"]
    summary = next(t for t in tables if t.heading.startswith("robustness summary"))
    effective = {row[1]: row[-1] for row in summary.rows}
    assert effective == {"base": "0.000", "mine": "0.200"}  # (0.8 - (0.5 + 0.9 - 0.8)) against base


def test_without_a_recorded_suite_rows_follow_the_first_start_of_each_model(tmp_path):
    with ResultStore(tmp_path) as store:
        store.start({"id": "b0", "suite": "s", "label": "b", "dataset_label": "d", "config": _config("b", 0)}, {})
        _run(store, "a", 0, 0.9, 0.8)
        store.finish("b0", [("clean", "test", "acc", 0.7), ("missing:a", "test", "acc", 0.6)], 1.0)
        assert list(collect(store)["datasets"]["d"]["clean"]) == ["b", "a"]
