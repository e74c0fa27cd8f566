"""One error path: a user's mistake is one `error:` line and exit status 2; `--debug` adds the traceback."""

import pytest

from mfm_bench.cli import build_parser, main
from mfm_bench.errors import MfmBenchError


def test_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and err.startswith("error: ") and "holds no results.sqlite" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "MissingFileError" in err
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_suite_errors_use_the_same_path(write_suite, capsys):
    assert main(["run", str(write_suite("name: x\ndatasets: [nope]\nmodels: [supervised]\n")), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "did you mean" not in err.split("error:")[0]


def test_run_refuses_an_out_that_is_a_file_or_inside_another_output_folder(write_suite, tmp_path, capsys):
    # a file gave "cannot use the output folder x: File exists"; a folder inside another run's output folder
    # (its runs/) was written into, mixing a second store with that run's folders
    suite = str(write_suite("name: x\ndatasets: [synthetic-factors]\nmodels: [supervised]\n"))
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["run", suite, "--out", str(tmp_path / "notes.txt"), "--no-progress"]) == 2
    assert "notes.txt: is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "qs" / "runs").mkdir(parents=True)
    (tmp_path / "qs" / "results.sqlite").write_bytes(b"")
    assert main(["run", suite, "--out", str(tmp_path / "qs" / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"is inside {tmp_path / 'qs'}, the output folder of another run" in err
    assert sorted(p.name for p in (tmp_path / "qs" / "runs").iterdir()) == []


def test_every_error_class_derives_from_the_base_and_keeps_its_builtin_base():
    import pickle

    from mfm_bench.align import AlignError, CSDFormatError
    from mfm_bench.config import ConfigError
    from mfm_bench.data.fetch import FetchError, OfflineError, VerificationError
    from mfm_bench.data.pkl import PickleFormatError, UnsafePickleError
    from mfm_bench.plugins.datasets.base import DataMissingError
    from mfm_bench.plugins.datasets.mfn_h5 import MFNFormatError
    from mfm_bench.registry import PluginError
    from mfm_bench.suite import SuiteError
    from mfm_bench.training import TrainingError

    builtin = {
        ConfigError: ValueError,
        SuiteError: ValueError,
        PluginError: LookupError,
        TrainingError: RuntimeError,
        FetchError: RuntimeError,
        VerificationError: RuntimeError,
        OfflineError: RuntimeError,
        CSDFormatError: ValueError,
        AlignError: ValueError,
        MFNFormatError: ValueError,
        PickleFormatError: ValueError,
        UnsafePickleError: pickle.UnpicklingError,
        DataMissingError: FileNotFoundError,
    }
    for cls, base in builtin.items():
        assert issubclass(cls, MfmBenchError) and issubclass(cls, base), cls


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_accepts_what_train_config_accepts(device):
    assert build_parser(["run"]).parse_args(["run", "s.yaml", "--device", device]).device == device


def test_device_rejects_other_names(capsys):
    with pytest.raises(SystemExit):
        build_parser(["run"]).parse_args(["run", "s.yaml", "--device", "gpu"])
    assert "cuda:N" in capsys.readouterr().err


def test_the_program_freezes_its_objects_before_the_interpreter_shuts_down(tmp_path):
    """Called as the program (no argv), main leaves every object frozen, so the shutdown's garbage collections
    skip torch's (0.45 s of each command's exit, docs/performance.md); called with argv (tests, scripts), not."""
    import subprocess
    import sys

    probe = (
        "import gc, sys; from mfm_bench.cli import main\n"
        f"sys.argv = ['mfm-bench', 'leaderboard', {str(tmp_path)!r}]\n"
        f"code = main([sys.argv[1], sys.argv[2]]); print('ARGV', code, gc.get_freeze_count())\n"
        "code = main(); print('PROGRAM', code, gc.get_freeze_count() > 1000)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "ARGV 2 0\nPROGRAM 2 True" in done.stdout, done.stdout + done.stderr


def test_a_reader_that_goes_away_is_not_a_traceback():
    """``mfm-bench plugins | head``: when the reader closes the pipe before the command writes, the command ends
    quietly with exit status 1 instead of a BrokenPipeError traceback (and none again at the interpreter's exit)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "mfm_bench.cli", "plugins"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # before the command has loaded its plugins, so its first write finds no reader
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_the_projects_warnings_are_warning_lines(tmp_path):
    """A warning of mfm-bench's own (here a deprecated dataset param) reaches the user as ``warning: ...``, the way
    the command's errors read, not as Python's ``harness/...py:LINE: DeprecatedParamWarning:`` and a source line."""
    import subprocess
    import sys

    (tmp_path / "data.npz").write_bytes(b"")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: w\n"
        "datasets: [{name: tensors, params: {path: data.npz, normalize: true}}]\n"
        "models: [{name: supervised, params: {fusion: concat}}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mfm_bench.cli", "validate", str(suite)], capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.splitlines()
    assert "warning: tensors: params.normalize is deprecated and will be removed; write normalise: zscore" in lines
    assert "DeprecatedParamWarning" not in done.stderr and ".py:" not in done.stderr, done.stderr
