"""Experiment tracking: the run-lifecycle hooks, the built-in TensorBoard and MLflow reporters (files read back),
and a failing tracker that warns without failing or losing the run."""

import sys
from pathlib import Path

import pytest

from mfm_bench import hookimpl
from mfm_bench.cli import main
from mfm_bench.results import ResultStore
from mfm_bench.testing import temporary_plugin
from mfm_bench.tracking import TrackerWarning

SUITE = """\
name: tiny-track
datasets:
  - name: synthetic-factors
    params: {n_train: 48, n_valid: 16, n_test: 16, dims: {text: 6, audio: 3, visual: 4}}
models: [{name: supervised, params: {fusion: late}}]
seeds: [0]
train: {epochs: 3, device: cpu}
evaluate: {conditions: [clean, {missing: audio}]}
report: {formats: [json]}
TRACKERS
"""


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def on_run_start(self, run, out):
        self.calls.append(("start", run["id"], run["trackers"], out.name))

    @hookimpl
    def on_epoch_end(self, run_id, epoch, metrics):
        self.calls.append(("epoch", epoch, sorted(metrics)))

    @hookimpl
    def on_run_end(self, run_id, status, metrics):
        self.calls.append(("end", status, metrics))


class Broken:
    @hookimpl
    def on_epoch_end(self, run_id, epoch, metrics):
        raise RuntimeError("tracking server unreachable")


def run(tmp_path, trackers="", name="out"):
    (tmp_path / "s.yaml").write_text(SUITE.replace("TRACKERS", trackers))
    return main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / name), "--no-progress"])


def test_hooks_are_called_in_order_with_the_run(tmp_path):
    rec = Recorder()
    with temporary_plugin(rec, "recorder"):
        assert run(tmp_path) == 0
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["start", "epoch", "epoch", "epoch", "end"]
    assert rec.calls[0][2] == [] and rec.calls[0][3] == "out"
    assert rec.calls[1][1] == 1 and "train_label" in rec.calls[1][2] and "valid_label" in rec.calls[1][2]
    status, metrics = rec.calls[-1][1:]
    with ResultStore(tmp_path / "out") as store:
        mae = next(m["value"] for m in store.metrics() if m["condition"] == "clean" and m["metric"] == "mae")
    assert status == "finished" and metrics["clean/mae"] == mae and "missing:audio/mae" in metrics


def test_worker_processes_runs_reach_the_trackers_in_the_main_process(tmp_path):
    """With --jobs 2 the runs train in worker processes; the hooks (registered only here) still hear every run,
    its epochs replayed at run end, and the fingerprint and cost rows the workers returned reach the store."""
    rec = Recorder()
    (tmp_path / "s.yaml").write_text(SUITE.replace("TRACKERS", "").replace("seeds: [0]", "seeds: [0, 1]"))
    with temporary_plugin(rec, "recorder"):
        assert (
            main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--no-progress", "--jobs", "2"]) == 0
        )
    with ResultStore(tmp_path / "out") as store:
        runs = {r["id"]: r for r in store.runs()}
        costs = {m["run_id"] for m in store.metrics() if m["metric"] == "peak_rss_mb"}
    assert sorted(c[1] for c in rec.calls if c[0] == "start") == sorted(runs)
    assert [c[1] for c in rec.calls if c[0] == "epoch"] == [1, 2, 3, 1, 2, 3]
    assert [c[1] for c in rec.calls if c[0] == "end"] == ["finished", "finished"]
    assert all(r["environment"]["data_fingerprint"] and r["environment"]["jobs"] == 2 for r in runs.values())
    assert costs == set(runs)


def test_a_failing_tracker_warns_and_the_run_is_kept(tmp_path):
    with temporary_plugin(Broken(), "broken"), pytest.warns(TrackerWarning, match="'broken' failed in on_epoch_end"):
        assert run(tmp_path) == 0
    with ResultStore(tmp_path / "out") as store:
        assert [r["status"] for r in store.runs()] == ["finished"]


def test_tensorboard_event_files_hold_the_metrics(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install -e '.[trackers]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run(tmp_path, "trackers: [tensorboard]") == 0
    (folder,) = (tmp_path / "out" / "tensorboard").iterdir()
    acc = EventAccumulator(str(folder))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert [e.step for e in acc.Scalars("epoch/train_label")] == [1, 2, 3]
    with ResultStore(tmp_path / "out") as store:
        mae = next(m["value"] for m in store.metrics() if m["condition"] == "clean" and m["metric"] == "mae")
    assert acc.Scalars("clean/mae")[0].value == pytest.approx(mae, rel=1e-6) and "missing:audio/mae" in tags


def test_mlflow_file_store_holds_the_run(tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[trackers]')")
    from mlflow.tracking import MlflowClient

    assert run(tmp_path, "trackers: [mlflow]") == 0
    client = MlflowClient(tracking_uri=(tmp_path / "out" / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("tiny-track")
    (ml,) = client.search_runs([exp.experiment_id])
    with ResultStore(tmp_path / "out") as store:
        (r,) = store.runs()
        mae = next(m["value"] for m in store.metrics() if m["condition"] == "clean" and m["metric"] == "mae")
    assert ml.data.params["run_id"] == r["id"] and ml.info.status == "FINISHED"
    # the resolved settings, so runs can be compared by them in MLflow
    assert ml.data.params["train.lr"] == str(r["config"]["train"]["lr"]) and ml.data.params["train.epochs"] == "3"
    assert ml.data.params["model.params.fusion"] == "late" and ml.data.params["dataset.params.n_train"] == "48"
    assert ml.data.params["evaluate.conditions"] == '["clean", "missing:audio"]'
    assert ml.data.metrics["clean/mae"] == pytest.approx(mae)
    if sys.platform != "win32":  # the condition keeps the name it has in the store, TensorBoard and the leaderboard
        assert "missing:audio/mae" in ml.data.metrics and "missing_audio/mae" not in ml.data.metrics
    assert [m.step for m in client.get_metric_history(ml.info.run_id, "epoch/train_label")] == [1, 2, 3]
    # the trained model and its config and history, byte for byte as in the run folder
    assert sorted(a.path for a in client.list_artifacts(ml.info.run_id)) == ["config.json", "history.json", "model.pt"]
    model = client.download_artifacts(ml.info.run_id, "model.pt", str(tmp_path))
    assert Path(model).read_bytes() == (tmp_path / "out" / "runs" / r["id"] / "model.pt").read_bytes()


def test_unknown_tracker_is_rejected_by_validate(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(SUITE.replace("TRACKERS", "trackers: [tensorbord]"))
    assert main(["validate", str(tmp_path / "s.yaml")]) == 1
    err = capsys.readouterr().err
    assert "s.yaml:10: trackers[0]: unknown tracker 'tensorbord'" in err and "did you mean 'tensorboard'" in err


def two_seeds(tmp_path, trackers: str) -> list[str]:
    (tmp_path / "s.yaml").write_text(SUITE.replace("TRACKERS", trackers).replace("seeds: [0]", "seeds: [0, 1]"))
    return ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--no-progress"]


def mlflow_runs(out, view="ACTIVE_ONLY"):
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    (exp,) = [e for e in client.search_experiments() if e.name == "tiny-track"]
    return client, client.search_runs([exp.experiment_id], run_view_type=getattr(ViewType, view))


def test_a_tracker_that_cannot_write_warns_once_by_name_and_the_other_still_records(tmp_path):
    """OUT/tensorboard that cannot be a folder stopped the built-in trackers' hook before MLflow heard the run, and
    warned once a run about plugin 'trackers' with the run's path; now one warning names 'tensorboard' and its
    folder, and MLflow records every run."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install -e '.[trackers]')")
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[trackers]')")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tensorboard").write_text("not a folder")
    with pytest.warns(TrackerWarning) as caught:
        assert main(two_seeds(tmp_path, "trackers: [tensorboard, mlflow]")) == 0
    messages = [str(w.message) for w in caught if w.category is TrackerWarning]
    assert messages == [
        f"tracker 'tensorboard' failed in on_run_start: OSError: cannot write its event files under "
        f"{tmp_path / 'out' / 'tensorboard'} (Not a directory); the runs go on and are recorded in the store "
        f"({tmp_path / 'out' / 'results.sqlite'}); this warning is shown once"
    ]
    with ResultStore(tmp_path / "out") as store:
        ids = sorted(r["id"] for r in store.runs() if r["status"] == "finished")
    _, runs = mlflow_runs(tmp_path / "out")
    assert len(ids) == 2 and sorted(r.data.params["run_id"] for r in runs) == ids
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_a_missing_mlflow_package_is_one_warning_and_the_runs_are_recorded(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.warns(TrackerWarning) as caught:
        assert main(two_seeds(tmp_path, "trackers: [mlflow]")) == 0
    (message,) = [str(w.message) for w in caught if w.category is TrackerWarning]
    assert message.startswith("tracker 'mlflow' failed in on_run_start: ImportError: the mlflow tracker needs")
    assert "pip install -e '.[trackers]' or drop it from the suite's trackers" in message
    with ResultStore(tmp_path / "out") as store:
        assert [r["status"] for r in store.runs()] == ["finished", "finished"]
    assert not (tmp_path / "out" / "mlruns").exists()


class InterruptOnce:
    """Ctrl-C during the second epoch of the first run, once."""

    def __init__(self):
        self.fired = False

    @hookimpl
    def on_epoch_end(self, run_id, epoch, metrics):
        if epoch == 2 and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


def test_resume_after_an_interruption_leaves_one_mlflow_run_and_one_curve_per_run(tmp_path):
    """A run interrupted and run again by --resume had two MLflow runs (KILLED, then FINISHED) and two event
    files whose epochs TensorBoard drew twice; the new attempt now replaces the old one in both."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install -e '.[trackers]')")
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[trackers]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = two_seeds(tmp_path, "trackers: [tensorboard, mlflow]")
    with temporary_plugin(InterruptOnce(), "interrupt"):
        assert main(args) == 130
    assert main([*args, "--resume"]) == 0
    assert main([*args, "--resume"]) == 0  # finished: nothing runs, nothing is added
    with ResultStore(tmp_path / "out") as store:
        ids = sorted(r["id"] for r in store.runs() if r["status"] == "finished")
    client, runs = mlflow_runs(tmp_path / "out")
    assert len(ids) == 2 and sorted(r.data.params["run_id"] for r in runs) == ids
    assert {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:
        assert [m.step for m in client.get_metric_history(r.info.run_id, "epoch/train_label")] == [1, 2, 3]
    _, all_runs = mlflow_runs(tmp_path / "out", "ALL")
    assert sorted(r.info.status for r in all_runs if r.info.lifecycle_stage == "deleted") == ["KILLED"]
    for run_id in ids:
        folder = tmp_path / "out" / "tensorboard" / run_id
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1
        acc = EventAccumulator(str(folder))
        acc.Reload()
        assert [e.step for e in acc.Scalars("epoch/train_label")] == [1, 2, 3]


def test_an_mlflow_run_whose_model_could_not_be_logged_is_not_shown_finished(tmp_path, monkeypatch):
    """A run whose artifacts did not reach MLflow (a full disk, Ctrl-C while copying) was marked FINISHED as if
    complete; it is KILLED now, with one warning, and the run itself is finished in the store."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[trackers]')")
    from mlflow.tracking import MlflowClient

    def full_disk(self, run_id, local_dir, artifact_path=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MlflowClient, "log_artifacts", full_disk)
    with pytest.warns(TrackerWarning) as caught:
        assert run(tmp_path, "trackers: [mlflow]") == 0
    (message,) = [str(w.message) for w in caught if w.category is TrackerWarning]
    assert message.startswith("tracker 'mlflow' failed in on_run_end: OSError: [Errno 28] No space left on device")
    with ResultStore(tmp_path / "out") as store:
        assert [r["status"] for r in store.runs()] == ["finished"]
    _, (ml,) = mlflow_runs(tmp_path / "out")
    assert ml.info.status == "KILLED" and "clean/mae" in ml.data.metrics


def test_track_sends_finished_runs_to_the_trackers_as_they_heard_them_live(tmp_path, capsys):
    """Runs finished before trackers were on: `mfm-bench track` replays them, and a tracker hears the same calls as
    during training (the run, each epoch's losses, the test metrics), only the trackers named differ."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install -e '.[trackers]')")
    live, replayed = Recorder(), Recorder()
    with temporary_plugin(live, "recorder"):
        assert main(two_seeds(tmp_path, "")) == 0
    capsys.readouterr()
    with temporary_plugin(replayed, "recorder"):
        assert main(["track", str(tmp_path / "out"), "--to", "tensorboard", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == "2 run(s) sent to tensorboard"
    assert [c[:2] + ([],) + c[3:] if c[0] == "start" else c for c in replayed.calls] == live.calls
    assert [c[2] for c in replayed.calls if c[0] == "start"] == [["tensorboard"], ["tensorboard"]]


def test_track_into_mlflow_twice_holds_one_mlflow_run_per_run(tmp_path, capsys):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[trackers]')")
    assert main(two_seeds(tmp_path, "")) == 0
    assert not (tmp_path / "out" / "mlruns").exists()
    for _ in range(2):
        assert main(["track", str(tmp_path / "out"), "--to", "mlflow", "--no-progress"]) == 0
    with ResultStore(tmp_path / "out") as store:
        runs = {r["id"]: r for r in store.runs()}
        mae = {m["run_id"]: m["value"] for m in store.metrics() if m["condition"] == "clean" and m["metric"] == "mae"}
    client, tracked = mlflow_runs(tmp_path / "out")
    assert sorted(r.data.params["run_id"] for r in tracked) == sorted(runs)
    for r in tracked:
        rid = r.data.params["run_id"]
        assert r.info.status == "FINISHED" and r.data.metrics["clean/mae"] == pytest.approx(mae[rid])
        assert [m.step for m in client.get_metric_history(r.info.run_id, "epoch/train_label")] == [1, 2, 3]
        assert sorted(a.path for a in client.list_artifacts(r.info.run_id)) == [
            "config.json",
            "history.json",
            "model.pt",
        ]


def test_track_says_what_failed_and_exits_1_or_2(tmp_path, capsys, monkeypatch):
    assert main(two_seeds(tmp_path, "")) == 0
    capsys.readouterr()
    assert main(["track", str(tmp_path / "out"), "--to", "tensorbord"]) == 2
    assert "unknown tracker 'tensorbord'; name built-in trackers: tensorboard, mlflow" in capsys.readouterr().err
    assert main(["track", str(tmp_path / "nowhere"), "--to", "mlflow"]) == 2
    assert "holds no results.sqlite" in capsys.readouterr().err
    from mfm_bench.lock import OutputLock

    with OutputLock(tmp_path / "out", print):  # a run still writing the folder
        assert main(["track", str(tmp_path / "out"), "--to", "tensorboard"]) == 2
    err = capsys.readouterr().err
    assert "is in use by another mfm-bench run" in err and err.rstrip().endswith("wait for it to end, then track it")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    assert main(["track", str(tmp_path / "out"), "--to", "mlflow", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "error: tracker 'mlflow' failed in on_run_start: ImportError: the mlflow tracker needs" in err
    assert "2 run(s) read, not all of them tracked" in err


def test_ctrl_c_just_after_an_outcome_is_stored_still_tells_the_trackers_once(tmp_path, monkeypatch):
    """Ctrl-C landing after a run's row was committed finished but before its trackers heard the end left them
    without ``on_run_end`` for a run the store holds finished (nor does ``--resume`` run it again). They hear it
    now, once, with its metrics; the runs stored before it were told as usual."""
    real, stored = ResultStore.finish, []

    def finish(self, run_id, *a, **k):
        real(self, run_id, *a, **k)
        stored.append(run_id)
        if len(stored) == 2:
            raise KeyboardInterrupt  # as if it landed just after the second row's commit

    monkeypatch.setattr(ResultStore, "finish", finish)
    rec = Recorder()
    with temporary_plugin(rec, "recorder"):
        assert main(two_seeds(tmp_path, "")) == 130
    ends = [c for c in rec.calls if c[0] == "end"]
    assert [c[1] for c in ends] == ["finished", "finished"]
    with ResultStore(tmp_path / "out") as store:
        assert {r["id"]: r["status"] for r in store.runs()} == dict.fromkeys(stored, "finished")
        for (_, _, metrics), run_id in zip(ends, stored):
            mae = next(m["value"] for m in store.metrics(run_id) if m["condition"] == "clean" and m["metric"] == "mae")
            assert metrics["clean/mae"] == mae
