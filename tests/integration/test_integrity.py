"""A leaderboard never shows a wrong number: diverged runs fail, an output folder holds one suite run one way,
one writer at a time, labels and features checked at load, failed runs and odd labels rendered faithfully."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from mfm_bench import hookimpl
from mfm_bench.checks import DivergedError, check_training
from mfm_bench.leaderboard import write_leaderboard
from mfm_bench.lock import OutputLock, OutputLockedError
from mfm_bench.outdir import MixedSettingsError, SuiteMismatchError
from mfm_bench.provenance import origin
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import SuiteError, load_suite

DATA = "{n_train: 64, n_valid: 24, n_test: 32, dims: {text: 6, audio: 3}, seq_len: 6, min_len: 3}"
SMALL = f"""\
name: small
datasets: [{{name: synthetic-factors, params: {DATA}}}]
models:
  - {{name: supervised, label: concat, params: {{encoder: mean, fusion: concat}}}}
seeds: [0]
train: {{epochs: 2, batch_size: 16, lr: 0.01}}
evaluate: {{conditions: [clean]}}
"""


def statuses(out):
    with ResultStore(out) as s:
        return {(r["label"], r["seed"]): r for r in s.runs()}


def metric_values(out):
    with ResultStore(out) as s:
        return sorted(
            (m["run_id"], m["condition"], m["metric"], m["value"]) for m in s.metrics() if m["condition"] != "train"
        )


# -- 1. a diverged run fails and never reaches the tables -------------------------------------------------
def test_lr_1e6_suite_fails_every_run_and_the_leaderboard_bolds_nothing(write_suite, tmp_path):
    text = SMALL.replace("lr: 0.01", "lr: 1.0e+6").replace(
        "evaluate:", "report: {formats: [markdown, csv, json, html]}\nevaluate:"
    )
    text = text.replace(
        "fusion: concat}}",
        "fusion: concat}}\n  - {name: supervised, label: late, params: {encoder: mean, fusion: late}}",
    )
    counts = run_suite(load_suite(write_suite(text)), tmp_path / "o", progress=False, log=lambda s: None)
    assert counts["finished"] == 0 and counts["failed"] == 2
    for r in statuses(tmp_path / "o").values():
        assert r["status"] == "failed" and "did not train" in r["error"] and "lower train.lr" in r["error"]
        assert "validation label loss by epoch" in r["error"]
        assert len(json.loads((tmp_path / "o" / "runs" / r["id"] / "history.json").read_text())) == 2
    written = write_leaderboard(tmp_path / "o")
    md = written["markdown"].read_text()
    assert "**" not in md.replace("in **bold**", "") and "## Failed runs" in md and "| concat " in md
    page = written["html"].read_text()
    assert "Failed runs" in page and "<b>" not in page.replace("<b>bold</b>", "").replace("<b>note:</b>", "")
    assert "did not train" in page and "concat" in page
    assert json.loads(written["json"].read_text())["datasets"] == {}
    assert {r["label"] for r in json.loads(written["json"].read_text())["failed"]} == {"concat", "late"}
    csv = written["csv"].read_text().splitlines()
    assert len(csv) == 3 and all(",failed," in line for line in csv[1:])


def test_best_epoch_zero_or_never_better_than_the_initial_weights_is_divergence():
    inf = float("inf")
    never = SimpleNamespace(best_valid_loss=inf, best_epoch=0, history=[{"valid_label": inf}] * 2)
    with pytest.raises(DivergedError, match=r"never finite.*\[inf, inf\]"):
        check_training(never, 1.5)
    worse = SimpleNamespace(best_valid_loss=3.0, best_epoch=2, history=[{"valid_label": 4.0}, {"valid_label": 3.0}])
    with pytest.raises(DivergedError, match="no epoch improved"):
        check_training(worse, 1.5)
    check_training(SimpleNamespace(best_valid_loss=1.0, best_epoch=1, history=[{"valid_label": 1.0}]), 1.5)


# -- 2. one folder, one suite, one configuration ----------------------------------------------------------
def test_changed_configuration_or_other_suite_into_the_same_folder_is_refused(write_suite, tmp_path):
    out, quiet = tmp_path / "o", (lambda s: None)
    run_suite(load_suite(write_suite(SMALL)), out, progress=False, log=quiet)
    changed = load_suite(write_suite(SMALL.replace("epochs: 2", "epochs: 1"), "changed.yaml"))
    with pytest.raises(SuiteMismatchError, match=r"train\.epochs: 2 -> 1.*--overwrite"):
        run_suite(changed, out, resume=True, progress=False, log=quiet)
    other = load_suite(write_suite(SMALL.replace("name: small", "name: other"), "other.yaml"))
    with pytest.raises(SuiteMismatchError, match="suite 'small', not 'other'"):
        run_suite(other, out, resume=True, progress=False, log=quiet)
    # more seeds of the same suite are welcome
    assert run_suite(load_suite(write_suite(SMALL)), out, seeds=[1], progress=False, log=quiet)["finished"] == 1
    # --overwrite replaces the folder's results: the row never mixes configurations
    run_suite(changed, out, overwrite=True, progress=False, log=quiet)
    runs = statuses(out)
    assert list(runs) == [("concat", 0)] and runs[("concat", 0)]["config"]["train"]["epochs"] == 1


def test_overwrite_of_another_configuration_discards_its_files_and_evaluations(write_suite, tmp_path):
    # the discarded runs' folders (model.pt), their TensorBoard events, the re-evaluations' records and their
    # predictions stayed behind, with nothing in the store to say what they were
    from mfm_bench.cli import main

    out, quiet = tmp_path / "o", (lambda s: None)
    run_suite(load_suite(write_suite(SMALL)), out, progress=False, log=quiet)
    (old,) = statuses(out).values()
    assert main(["evaluate", str(out), "--condition", "missing:text", "--no-leaderboard"]) == 0
    (out / "tensorboard" / old["id"]).mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    changed = load_suite(write_suite(SMALL.replace("epochs: 2", "epochs: 3"), "changed.yaml"))
    run_suite(changed, out, overwrite=True, progress=False, log=quiet)
    (new,) = statuses(out).values()
    assert [p.name for p in (out / "runs").iterdir()] == [new["id"]] != [old["id"]]
    assert not (out / "tensorboard" / old["id"]).exists() and list((out / "evaluations").iterdir()) == []
    with ResultStore(out) as store:
        assert store.evaluations() == [] and store.reevaluations() == []
    assert (out / "notes.txt").read_text() == "mine"


def test_a_changed_list_in_the_grid_is_named_by_what_was_added_or_removed(tmp_path):
    # it used to read "grid[0].evaluate.conditions: 1 configurations -> 2", naming neither the list's entries nor
    # the condition that changed
    from mfm_bench.outdir import claim, fingerprint

    def config(label, conditions):
        return {
            "dataset": {"name": "d"},
            "model": {"label": label},
            "seed": 0,
            "train": {},
            "evaluate": {"conditions": conditions},
        }

    with ResultStore(tmp_path) as store:
        claim(store, tmp_path, fingerprint("s", [config("a", ["clean"])]), overwrite=False)
        more = fingerprint("s", [config("a", ["clean", "missing:audio"])])
        with pytest.raises(SuiteMismatchError) as e:
            claim(store, tmp_path, more, overwrite=False)
        assert 'grid[0].evaluate.conditions: 1 entries -> 2, added "missing:audio"' in str(e.value)
        another = fingerprint("s", [config("a", ["clean"]), config("b", ["clean"])])
        with pytest.raises(SuiteMismatchError, match="grid: 1 configurations -> 2, added d / b"):
            claim(store, tmp_path, another, overwrite=False)


def test_two_unlabelled_entries_of_one_dataset_are_refused_with_file_and_line(write_suite, capsys):
    from mfm_bench.cli import main

    text = SMALL.replace(
        f"datasets: [{{name: synthetic-factors, params: {DATA}}}]",
        textwrap.dedent(f"""\
        datasets:
          - {{name: synthetic-factors, params: {DATA}}}
          - {{name: synthetic-factors, params: {{task: classification, n_train: 64}}}}"""),
    )
    path = write_suite(text)
    with pytest.raises(SuiteError, match=r"suite.yaml:3: datasets\[0\]: dataset 'synthetic-factors' appears 2 times"):
        load_suite(path)
    assert main(["validate", str(path)]) == 1
    assert "suite.yaml:3: datasets[0]" in capsys.readouterr().err
    entry = "{name: synthetic-factors, "
    labelled = text.replace(entry + "params: {task", entry + "label: synth-cls, params: {task")
    labelled = labelled.replace(entry + "params: {n_", entry + "label: synth-reg, params: {n_")
    assert [d.label for d in load_suite(write_suite(labelled, "ok.yaml")).datasets] == ["synth-reg", "synth-cls"]


# -- 3. one writer per folder -----------------------------------------------------------------------------
HOLD = (
    "import sys, time; from mfm_bench.lock import OutputLock; l = OutputLock(sys.argv[1]); l.acquire(); "
    "print('locked', flush=True); time.sleep(60)"
)


def test_a_second_process_is_refused_and_a_killed_holders_lock_is_taken_over(write_suite, tmp_path):
    out, path = tmp_path / "o", write_suite(SMALL)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cmd = [sys.executable, "-m", "mfm_bench.cli", "run", str(path), "--out", str(out), "--no-progress"]
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 2 and f"in use by another mfm-bench run (pid {holder.pid} on host" in second.stderr
        assert not (out / "results.sqlite").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    third = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert third.returncode == 0, third.stderr
    assert f"taking over a stale lock on {out} left by pid {holder.pid}" in third.stdout
    assert (out / ".lock").read_text() == ""  # released
    with OutputLock(out, log=lambda s: None):
        assert "| concat " in write_leaderboard(out)["markdown"].read_text()  # leaderboard reads under a lock
        with pytest.raises(OutputLockedError, match=f"pid {os.getpid()}"):
            run_suite(load_suite(path), out, resume=True, progress=False)


def test_resume_with_deterministic_refuses_runs_made_without_it(write_suite, tmp_path):
    # the settings compared were read from this process, where --deterministic is on only inside each run, so a
    # --resume --deterministic kept the earlier runs made without it and added runs made with it, unmarked
    suite, quiet = load_suite(write_suite(SMALL)), (lambda s: None)
    out = tmp_path / "o"
    run_suite(suite, out, threads=1, device="cpu", progress=False, log=quiet)
    with pytest.raises(MixedSettingsError, match=r'"deterministic": false.*now \{"deterministic": true'):
        run_suite(suite, out, seeds=[0, 1], resume=True, threads=1, device="cpu", deterministic=True, log=quiet)
    assert list(statuses(out)) == [("concat", 0)]


# -- 4. one run id, one result --------------------------------------------------------------------------
def test_a_rerun_at_fixed_threads_and_device_is_bit_identical_and_mixing_settings_needs_allow_mixed(
    write_suite, tmp_path
):
    suite, quiet = load_suite(write_suite(SMALL.replace("seeds: [0]", "seeds: [0, 1]"))), (lambda s: None)
    run_suite(suite, tmp_path / "a", threads=1, device="cpu", progress=False, log=quiet)
    run_suite(suite, tmp_path / "b", threads=1, device="cpu", progress=False, log=quiet)
    assert metric_values(tmp_path / "a") == metric_values(tmp_path / "b")
    env = statuses(tmp_path / "a")[("concat", 0)]["environment"]
    assert env["threads"] == 1 and env["device"] == "cpu" and env["deterministic"] is False
    out = tmp_path / "c"
    run_suite(suite, out, seeds=[0], threads=1, device="cpu", progress=False, log=quiet)
    with pytest.raises(MixedSettingsError, match=r"threads.: 1.*--allow-mixed"):
        run_suite(suite, out, resume=True, threads=2, device="cpu", progress=False, log=quiet)
    run_suite(suite, out, resume=True, threads=2, device="cpu", allow_mixed=True, progress=False, log=quiet)
    md = write_leaderboard(out)["markdown"].read_text()
    assert "different execution settings" in md and "threads 1, deterministic False (1 runs)" in md
    assert "threads 2, deterministic False (1 runs)" in md


def test_resume_after_a_code_change_says_which_runs_came_from_which_code(write_suite, tmp_path, recorded_as):
    """--resume after an upgrade (another commit) keeps the finished runs, as it should, but says that they and the
    new ones come from different code, naming each, and the leaderboard notes the mix."""
    suite, lines = load_suite(write_suite(SMALL.replace("seeds: [0]", "seeds: [0, 1]"))), []
    out = tmp_path / "o"
    run_suite(suite, out, seeds=[0], threads=1, device="cpu", progress=False, log=lines.append)
    assert not [line for line in lines if "made with different" in line]
    old = "0123456789abcdef0123456789abcdef01234567"
    with ResultStore(out) as s:
        (run,) = s.runs("finished")
        now = origin(run["environment"])["code"]
    recorded_as(out, git_commit=old, git_dirty=False)
    lines.clear()
    run_suite(suite, out, resume=True, threads=1, device="cpu", progress=False, log=lines.append)
    (note,) = [line for line in lines if "made with different" in line]
    version = run["environment"]["mfm_bench"]
    assert note.startswith(f"note: the finished runs --resume keeps were made with different code: mfm-bench {version}")
    assert f"at 0123456789 (1 run); now {now}" in note
    assert [r["status"] for r in statuses(out).values()] == ["finished", "finished"]  # kept, not refused
    md = write_leaderboard(out)["markdown"].read_text()
    assert f"different code: mfm-bench {version} at 0123456789 (1 run); {now} (1 run)" in md


TWO_MODELS = SMALL.replace("seeds: [0]", "seeds: [0, 1]").replace(
    "fusion: concat}}", "fusion: concat}}\n  - {name: supervised, label: late, params: {encoder: mean, fusion: late}}"
)


def test_each_run_records_the_threads_training_used_and_resume_on_auto_keeps_them(write_suite, tmp_path, monkeypatch):
    """threads: 0 (auto) is recorded as asked ("auto") beside the count training used, which differs between models
    by design; a --resume left to auto keeps them whatever torch's count in the resuming process, one asking for a
    count is refused, and the leaderboard notes no mix."""
    import torch

    from mfm_bench import training
    from mfm_bench.executors.base import usable_cores

    # concat has 8,737 parameters, late 2,530: auto gives concat every core and late one
    monkeypatch.setattr(training, "SINGLE_THREAD_PARAMS", 5000)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    used, start = {}, training.Trainer._start

    def spy(self, model, seed):
        state = start(self, model, seed)
        used[(type(model.fusion).__name__.removesuffix("Fusion").lower(), seed)] = torch.get_num_threads()
        return state

    monkeypatch.setattr(training.Trainer, "_start", spy)
    suite, quiet, out = load_suite(write_suite(TWO_MODELS)), (lambda s: None), tmp_path / "a"
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # neither count auto picks: a run must not record the process's count
    try:
        run_suite(suite, out, device="cpu", progress=False, log=quiet)
        envs = {k: r["environment"] for k, r in statuses(out).items()}
        assert {k: e["threads"] for k, e in envs.items()} == used and len(used) == 4
        assert used[("concat", 0)] == usable_cores() and used[("late", 1)] == 1
        assert {e["threads_asked"] for e in envs.values()} == {"auto"}
        torch.set_num_threads(2)  # a fresh process's default on 2 cores
        counts = run_suite(suite, out, resume=True, device="cpu", progress=False, log=quiet)
        assert counts["skipped"] == 4 and counts["finished"] == 0
        with pytest.raises(MixedSettingsError, match=r'"threads": "auto \(1\)".*now .*"threads": 1\}'):
            run_suite(suite, out, resume=True, threads=1, seeds=[0, 1, 2], device="cpu", progress=False, log=quiet)
        assert "different execution settings" not in write_leaderboard(out)["markdown"].read_text()
    finally:
        torch.set_num_threads(before)


def test_merged_shards_resume_with_the_same_settings(write_suite, tmp_path):
    import torch

    from mfm_bench.merge import merge

    suite, quiet = load_suite(write_suite(TWO_MODELS)), (lambda s: None)
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # each command starts at the process's count; auto picks 1 for these models
    try:
        for k in (1, 2):
            run_suite(suite, tmp_path / f"s{k}", shard=(k, 2), device="cpu", progress=False, log=quiet)
        merge(tmp_path / "m", [tmp_path / "s1", tmp_path / "s2"], log=quiet)
        counts = run_suite(suite, tmp_path / "m", resume=True, device="cpu", progress=False, log=quiet)
    finally:
        torch.set_num_threads(before)
    assert counts["skipped"] == 4 and counts["finished"] == 0
    assert "different execution settings" not in write_leaderboard(tmp_path / "m")["markdown"].read_text()


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``mfm-bench`` in a fresh process, at torch's default threads (OMP_NUM_THREADS unset)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cmd = [sys.executable, "-m", "mfm_bench.cli", "run", *args, "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_a_finished_suite_resumes_in_a_fresh_process_and_runs_nothing(write_suite, tmp_path):
    path, out = str(write_suite(SMALL.replace("seeds: [0]", "seeds: [0, 1]"))), str(tmp_path / "o")
    first = _cli(path, "--out", out)
    assert first.returncode == 0 and "2 run(s) finished" in first.stdout, first.stderr
    again = _cli(path, "--out", out, "--resume")
    assert again.returncode == 0 and "0 run(s) finished, 0 failed, 2 skipped" in again.stdout, again.stderr
    assert "different execution settings" not in again.stdout
    changed = _cli(path, "--out", out, "--resume", "--threads", "3", "--seeds", "0,1,2")  # a new seed to run
    assert changed.returncode == 2 and "other execution settings" in changed.stderr
    assert '"threads": "auto (1)"' in changed.stderr and '"threads": 3}' in changed.stderr
    jobs = str(tmp_path / "j")
    first = _cli(path, "--out", jobs, "--jobs", "2")
    assert first.returncode == 0 and "2 run(s) finished" in first.stdout, first.stderr
    again = _cli(path, "--out", jobs, "--resume", "--jobs", "2")
    assert again.returncode == 0 and "0 run(s) finished, 0 failed, 2 skipped" in again.stdout, again.stderr


def test_run_device_replaces_a_suite_device_this_machine_lacks(write_suite, tmp_path, capsys):
    import torch

    from mfm_bench.cli import main

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    path = write_suite(SMALL.replace("lr: 0.01}", "lr: 0.01, device: cuda}"))
    with pytest.raises(SuiteError, match="no CUDA device") as info:
        load_suite(path)
    assert info.value.field == "train.device" and "--device cpu" in info.value.hint
    assert main(["run", str(path), "--device", "cpu", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "1 run(s) finished" in capsys.readouterr().out
    assert statuses(tmp_path / "o")[("concat", 0)]["environment"]["device"] == "cpu"
    # the override itself is checked, and a suite's misspelt device is still an error
    assert main(["run", str(path), "--device", "cuda", "--out", str(tmp_path / "c"), "--no-progress"]) == 2
    assert "device 'cuda' was asked for but CUDA is not available" in capsys.readouterr().err
    typo = write_suite(SMALL.replace("lr: 0.01}", "lr: 0.01, device: gpu}"), "typo.yaml")
    with pytest.raises(SuiteError, match="unknown device 'gpu'"):
        load_suite(typo, device="cpu")


def test_the_resume_command_printed_after_ctrl_c_repeats_the_options_of_the_run():
    """Parsed back with --resume, the printed command gives the options of the interrupted one."""
    import shlex

    from mfm_bench.cli import build_parser
    from mfm_bench.commands.run import same_execution

    parse = build_parser(["run"]).parse_args
    assert same_execution(parse(["run", "s.yaml"])) == ""
    assert same_execution(parse(["run", "s.yaml", "--jobs", "2", "--device", "cpu"])) == " --jobs 2 --device cpu"
    given = ["--seeds", "3,1", "--limit", "8", "--shard", "2/3", "--jobs", "2", "--threads", "1", "--device", "cpu"]
    given += ["--executor", "ray", "--ray-address", "ray://host name:1", "--deterministic", "--allow-mixed"]
    args = parse(["run", "s.yaml", "--out", "o", *given])
    again = parse(["run", "s.yaml", "--out", "o", "--resume", *shlex.split(same_execution(args))])
    assert {**vars(again), "resume": False} == vars(args)


# -- 5. labels and features checked at load --------------------------------------------------------------
class _CorruptData:
    """synthetic-factors with non-finite labels in the test split, or a modality zeroed in every split."""

    @hookimpl
    def register_datasets(self, register):
        register("corrupt-factors", _corrupt, help="synthetic-factors with bad labels or an all-zero modality")


def _corrupt(nan_labels=0, zero="", empty="", **params):
    from mfm_bench.contracts import TensorSplit
    from mfm_bench.registry import get_registry

    ds = get_registry().build("dataset", "synthetic-factors", **params)
    if empty:  # a plugin whose split came out empty (a filter that matched nothing, a fold with no files)
        s = ds.split(empty)
        ds._splits[empty] = TensorSplit(
            {m: t[:0] for m, t in s.inputs.items()}, {m: t[:0] for m, t in s.mask.items()}, s.target[:0], []
        )
    test = ds.split("test")
    test.target[:nan_labels] = float("nan")
    if nan_labels > 1:
        test.target[1] = float("inf")
    for split in ("train", "valid", "test"):
        if zero:
            ds.split(split).inputs[zero].zero_()
    return ds


@pytest.fixture
def corrupt():
    from mfm_bench.testing import temporary_plugin

    with temporary_plugin(_CorruptData(), "mfm-bench-corrupt") as reg:
        yield reg


def test_non_finite_labels_fail_the_run_naming_dataset_split_and_count(write_suite, tmp_path, corrupt):
    text = SMALL.replace("name: synthetic-factors, params: {", "name: corrupt-factors, params: {nan_labels: 3, ")
    counts = run_suite(load_suite(write_suite(text)), tmp_path / "o", progress=False, log=lambda s: None)
    assert counts["failed"] == 1
    err = statuses(tmp_path / "o")[("concat", 0)]["error"]
    assert "DataError: dataset 'corrupt-factors', split 'test': 3 of 32 labels are not finite" in err


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_split_fails_the_run_naming_dataset_and_split(write_suite, tmp_path, corrupt, split):
    # it used to train (or not) and fail on a bare "torch.cat(): expected a non-empty list of Tensors"
    text = SMALL.replace("name: synthetic-factors, params: {", f"name: corrupt-factors, params: {{empty: {split}, ")
    counts = run_suite(load_suite(write_suite(text)), tmp_path / "o", progress=False, log=lambda s: None)
    assert counts["failed"] == 1
    err = statuses(tmp_path / "o")[("concat", 0)]["error"]
    assert f"DataError: dataset 'corrupt-factors', split '{split}' has no samples" in err


def test_an_all_zero_modality_is_a_warning_in_the_record_and_on_the_terminal(write_suite, tmp_path, corrupt):
    text = SMALL.replace("name: synthetic-factors, params: {", "name: corrupt-factors, params: {zero: audio, ")
    said = []
    run_suite(load_suite(write_suite(text)), tmp_path / "o", progress=False, log=said.append)
    warning = "dataset 'corrupt-factors', split 'train': modality 'audio' is all zero"
    assert any(warning in s for s in said)
    assert any(warning in w for w in statuses(tmp_path / "o")[("concat", 0)]["environment"]["data_warnings"])
    assert warning in write_leaderboard(tmp_path / "o")["markdown"].read_text()


# -- 6./7. every format carries everything, labels escaped ------------------------------------------------
def test_a_label_with_a_pipe_or_markup_keeps_every_table_whole(write_suite, tmp_path, capsys):
    from mfm_bench.cli import main

    late = "\n  - {name: supervised, label: late, params: {encoder: mean, fusion: late}}"
    text = SMALL.replace("label: concat,", 'label: "con|cat <b>",')
    text = text.replace("fusion: concat}}", "fusion: concat}}" + late)
    text = text.replace("evaluate:", "report: {formats: [markdown, html]}\nevaluate:")
    out = tmp_path / "o"
    run_suite(load_suite(write_suite(text)), out, progress=False, log=lambda s: None)
    md = write_leaderboard(out)["markdown"].read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("|")][:4]
    cells = [len(ln.replace("\\|", "").split("|")) for ln in table]
    assert len(set(cells)) == 1 and "con\\|cat <b>" in md
    assert md.count("**") >= 2
    (out / "leaderboard.html").write_text("stale")
    assert main(["leaderboard", str(out), "--quiet"]) == 0  # rewrites the html the suite asked for
    page = (out / "leaderboard.html").read_text()
    assert "con|cat &lt;b&gt;" in page and "white-space:nowrap" in page and "<td><b>" in page
    assert "html: " in capsys.readouterr().out


@pytest.mark.slow
def test_docs_results_quickstart_tables_are_what_the_documented_command_produces(tmp_path):
    """docs/results.md's quickstart tables match a fresh `python benchmarks/results_doc.py quickstart` run."""
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "results_doc.py"
    out = tmp_path / "qs"
    done = subprocess.run(
        [sys.executable, str(script), "quickstart", "--check", "--from", str(out)], capture_output=True, text=True
    )
    assert done.returncode != 0  # no folder yet: the check never passes without a run
    done = subprocess.run(
        [sys.executable, str(script), "quickstart", "--check", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_docs_results_check_names_the_machine_the_tables_came_from(tmp_path, monkeypatch, capsys):
    """A check that fails on another CPU type says where the documented tables were generated and how to
    regenerate them; on the same machine it says nothing of machines. (A finished folder's leaderboard.md is all
    --from reads, so the test writes one.)"""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "results_doc.py"
    spec = importlib.util.spec_from_file_location("results_doc", script)
    rd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rd)
    begin, end = rd.markers("quickstart")
    table = "### clean test split\n\n| model | mae ↓ | samples/s |\n|--|--|--|\n| MFM | {} | {} |\n"
    folder = tmp_path / "qs"
    folder.mkdir()
    (folder / "leaderboard.md").write_text("# t\n\n## synthetic\n\n" + table.format("0.300", 440))
    doc = tmp_path / "results.md"
    monkeypatch.setattr(rd, "DOC", doc)

    def check(machine: str, mae: str) -> tuple[int, str]:
        doc.write_text(f"intro\n{begin}\n<!-- machine: {machine} -->\n\n{table.format(mae, 9)}\n{end}\ntail\n")
        code = rd.main(["quickstart", "--check", "--from", str(folder)])
        return code, capsys.readouterr().out

    assert check("Old CPU, AVX2 kernels, torch 2.13.0+cpu", "0.300") == (0, "docs/results.md matches\n")  # timings
    code, out = check("Old CPU, AVX2 kernels, torch 2.13.0+cpu", "0.318")
    assert code == 1 and "generated on Old CPU, AVX2 kernels" in out and f"this is {rd.machine()}" in out
    code, out = check(rd.machine(), "0.318")
    assert code == 1 and "differs" in out and "generated on" not in out  # same machine: a real difference
    assert rd.main(["quickstart", "--from", str(folder)]) == 0  # rewriting records this machine
    assert f"<!-- machine: {rd.machine()} -->" in doc.read_text() and "| MFM | 0.300 | 440 |" in doc.read_text()


class _InterruptAfterBegin:
    """A connection that raises KeyboardInterrupt just after BEGIN has run: a Ctrl-C landing between the start of
    a transaction and its body."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, *args):
        result = self.conn.execute(sql, *args)
        if sql == "BEGIN IMMEDIATE":
            raise KeyboardInterrupt
        return result

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_an_interrupt_just_after_begin_leaves_no_transaction_open(tmp_path) -> None:
    with ResultStore(tmp_path) as store:
        real = store.conn
        store.conn = _InterruptAfterBegin(real)
        with pytest.raises(KeyboardInterrupt):
            store.set_meta("formats", ["markdown"])
        store.conn = real
        assert not real.in_transaction
        store.set_meta("formats", ["csv"])  # the next write works
        assert store.get_meta("formats") == ["csv"]


def test_execution_switches_are_checked_before_any_run_and_recorded(write_suite, tmp_path, monkeypatch):
    """A misspelt MFM_BENCH_ONEDNN stops the suite before any run; off, it is in each run's environment; threads
    beyond the cores get one warning line."""
    from mfm_bench import kernels
    from mfm_bench.errors import MfmBenchError
    from mfm_bench.executors.base import usable_cores

    suite, logged = load_suite(write_suite(SMALL)), []
    monkeypatch.setenv("MFM_BENCH_ONEDNN", "maybe")
    with pytest.raises(MfmBenchError, match="MFM_BENCH_ONEDNN='maybe' is not a switch: write 0, false, no or off"):
        run_suite(suite, tmp_path / "bad", device="cpu", progress=False, log=logged.append)
    assert not (tmp_path / "bad" / "results.sqlite").exists()
    auto = kernels.cpuinfo_field("vendor_id") not in (None, "GenuineIntel")  # on for x86 CPUs not made by Intel
    for value, on in (("Off", False), (" false ", False), ("no", False), ("0", False), ("", auto), ("YES", True)):
        monkeypatch.setenv("MFM_BENCH_ONEDNN", value)
        assert kernels.onednn_requested(strict=True) is on, value
    monkeypatch.setenv("MFM_BENCH_ONEDNN", " Auto ")
    assert kernels.onednn_choice(strict=True)[0] is auto
    monkeypatch.setenv("MFM_BENCH_ONEDNN", "Off")
    monkeypatch.setattr(kernels, "_OP", kernels._find_op())  # read at import: what a fresh process would find
    assert kernels._OP is None
    many = usable_cores() + 1
    run_suite(suite, tmp_path / "off", threads=many, device="cpu", progress=False, log=logged.append)
    env = statuses(tmp_path / "off")[("concat", 0)]["environment"]
    assert env["onednn_linear"] == "off (MFM_BENCH_ONEDNN)" and env["threads"] == many
    warned = [line for line in logged if line.startswith("warning:")]
    said = f"warning: {many} threads per run on {usable_cores()} core(s) oversubscribes them; threads: 0 (auto) picks"
    assert len(warned) == 1 and warned[0].startswith(said)
    monkeypatch.delenv("MFM_BENCH_ONEDNN")
    monkeypatch.setattr(kernels, "_OP", kernels._find_op())
    logged.clear()
    run_suite(suite, tmp_path / "on", threads=1, device="cpu", progress=False, log=logged.append)
    env = statuses(tmp_path / "on")[("concat", 0)]["environment"]
    on, why = kernels.onednn_choice()
    assert why.startswith("auto: ") and on is auto
    if not on:
        assert env["onednn_linear"] == f"off ({why})"  # e.g. "off (auto: GenuineIntel)": MKL is the faster there
    else:
        assert env["onednn_linear"] == (f"on ({why})" if kernels._OP else f"unavailable in this torch build ({why})")
    assert not [line for line in logged if line.startswith("warning:")]


def test_a_compiled_suite_says_once_that_runs_compile_first(tmp_path, write_suite, monkeypatch):
    """``train.compile`` makes each run's first steps wait for torch.compile: the suite says so in one line before
    its runs (torch.compile is stubbed here; the compiled path itself is tested in test_training_device.py)."""
    import torch

    monkeypatch.setattr(torch, "compile", lambda model, mode=None: model)
    logged: list[str] = []
    compiled = SMALL.replace("seeds: [0]", "seeds: [0, 1]").replace("lr: 0.01}", "lr: 0.01, compile: reduce-overhead}")
    suite = load_suite(write_suite(compiled))
    counts = run_suite(suite, tmp_path / "c", device="cpu", progress=False, log=logged.append)
    assert counts["finished"] == 2
    notes = [line for line in logged if "compile" in line]
    assert notes == [
        "note: train.compile: reduce-overhead: each run compiles its model during its first training steps (minutes "
        "on a CPU); that time counts in the run's seconds and samples/s (docs/performance.md)"
    ]
    logged.clear()
    run_suite(load_suite(write_suite(SMALL)), tmp_path / "e", device="cpu", progress=False, log=logged.append)
    assert not [line for line in logged if "compile" in line]
