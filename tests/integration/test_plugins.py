"""Plugins are found through the `mfm_bench` entry-point group, built-ins and third-party packages alike."""

import subprocess
import sys
import textwrap

import pytest

from mfm_bench.registry import PluginError, create_registry, get_registry

TOY_MODULE = '''
from dataclasses import dataclass

import torch
from torch import nn

from mfm_bench import hookimpl
from mfm_bench.config import option


@dataclass
class StepConfig:
    hidden: int = option(12, "output width")


class StepEncoder(nn.Module):
    """Per-step Linear + tanh; pooled = mean of the real steps."""

    def __init__(self, input_dim, cfg):
        super().__init__()
        self.lin = nn.Linear(input_dim, cfg.hidden)
        self.output_dim = cfg.hidden

    def forward(self, x, mask):
        seq = torch.tanh(self.lin(x)) * mask.unsqueeze(-1)
        return seq.sum(1) / mask.sum(1, keepdim=True).clamp_min(1), seq


@hookimpl
def register_encoders(register):
    register("toy-step", StepEncoder, config=StepConfig)


@hookimpl
def register_commands(register):
    register("toy-hello", "mfm_bench_toy_cli", help="greet someone (a command added by a plugin)")


@dataclass
class JitterConfig:
    jitter: float = option(1.0, "the value the model reports as its toy_jitter metric")


class Jitter(nn.Module):
    """A linear model on the time-mean of every modality; reports a fixed ``toy_jitter`` (``extras["metric_sums"]``)."""

    def __init__(self, spec, cfg):
        super().__init__()
        self.lin = nn.Linear(sum(spec.input_dims.values()), 1)
        self.jitter = cfg.jitter

    def forward(self, batch):
        from mfm_bench.contracts import Output

        n = len(batch)
        pred = self.lin(torch.cat([x.mean(1) for x in batch.inputs.values()], -1)).squeeze(-1)
        sums = {"toy_jitter": (torch.tensor(self.jitter * n), n)}
        return Output(pred, {"label": ((pred - batch.target.float()) ** 2).mean()}, {"metric_sums": sums})


@hookimpl
def register_models(register):
    register("toy-jitter", Jitter, config=JitterConfig)


@hookimpl
def register_metrics(register):
    register("toy_jitter", False, help="how much the toy model jitters (lower is better)")
'''

TOY_COMMAND = """
import sys

from mfm_bench.errors import MfmBenchError

print("toy command module imported", file=sys.stderr)


def add_arguments(parser):
    parser.add_argument("who")


def run(args):
    if args.who == "nobody":
        raise MfmBenchError("toy-hello needs somebody")
    print(f"hello {args.who}")
    return 0
"""


def make_dist(site, dist, version, module, code, entry="toy"):
    """Lay out an installed distribution as pip would: the module and its .dist-info with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mfm_bench]\n{entry} = {module}\n")
    (info / "RECORD").write_text("")


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "mfm-bench-toy", "0.3.0", "mfm_bench_toy", TOY_MODULE)
    (site / "mfm_bench_toy_cli.py").write_text(TOY_COMMAND)
    return site


def cli(args, site, **env):
    import os

    full_env = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-m", "mfm_bench.cli", *args], capture_output=True, text=True, env=full_env, timeout=300
    )


def test_builtins_come_through_entry_points():
    reg = create_registry()
    for kind, name in [
        ("encoder", "lstm"),
        ("encoder", "gru"),
        ("encoder", "mean"),
        ("fusion", "concat"),
        ("fusion", "late"),
        ("model", "supervised"),
        ("dataset", "synthetic-factors"),
    ]:
        e = reg.get(kind, name)
        assert e.package == "mfm-bench" and e.plugin in {"encoders", "fusions", "models", "datasets"}


def test_third_party_encoder_is_listed_and_usable_in_a_suite(site, tmp_path):
    out = cli(["plugins", "--kind", "encoder"], site)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "toy-step" in ln)
    assert "mfm-bench-toy" in line and "0.3.0" in line
    suite = tmp_path / "toy.yaml"
    suite.write_text(
        textwrap.dedent("""\
        name: toy
        datasets: [{name: synthetic-factors, params: {n_train: 48, n_valid: 16, n_test: 16, dims: {a: 3, b: 4}}}]
        models: [{name: supervised, params: {encoder: toy-step, encoder_params: {hidden: 6}}}]
        train: {epochs: 2, batch_size: 16}
    """)
    )
    out = cli(["run", str(suite), "--out", str(tmp_path / "out"), "--no-progress"], site)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 run(s) finished" in out.stdout
    env_row = (
        __import__("sqlite3")
        .connect(tmp_path / "out" / "results.sqlite")
        .execute("SELECT config FROM runs")
        .fetchone()[0]
    )
    assert '"encoder": "toy-step"' in env_row and '"encoder_params": {"hidden": 6}' in env_row


def test_third_party_command_is_listed_lazily_and_runs(site):
    out = cli(["--help"], site)
    assert out.returncode == 0 and "toy command module imported" not in out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "toy-hello" in ln)
    assert "greet someone" in line
    assert "explain" in out.stdout  # the MFM plugin's command, registered the same way
    listed = cli(["plugins", "--kind", "command"], site).stdout
    assert any("toy-hello" in ln and "mfm-bench-toy" in ln for ln in listed.splitlines())
    out = cli(["toy-hello", "world"], site)
    assert out.returncode == 0 and out.stdout.strip() == "hello world", out.stderr
    out = cli(["toy-hello", "nobody"], site)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1] == "error: toy-hello needs somebody"


def test_third_party_metric_direction_reaches_the_leaderboard(site, tmp_path):
    suite = tmp_path / "jitter.yaml"
    suite.write_text(
        textwrap.dedent("""\
        name: jitter
        datasets: [{name: synthetic-factors, params: {n_train: 256, n_valid: 64, n_test: 32, dims: {a: 3, b: 4}}}]
        models:
          - {name: toy-jitter, label: calm, params: {jitter: 1.0}}
          - {name: toy-jitter, label: shaky, params: {jitter: 3.0}}
        train: {epochs: 3, batch_size: 32, lr: 0.05}
    """)
    )
    out = cli(["run", str(suite), "--out", str(tmp_path / "out"), "--no-progress"], site)
    assert out.returncode == 0, out.stdout + out.stderr
    table = (tmp_path / "out" / "leaderboard.md").read_text().split("### clean test split")[1].split("###")[0]
    rows = [[c.strip() for c in ln.split("|")] for ln in table.strip().splitlines() if ln.startswith("|")]
    col = rows[0].index("toy_jitter ↓")  # the declared direction, from the third-party package
    cells = {r[1]: r[col] for r in rows[2:]}
    assert cells["calm"].startswith("**1.000") and not cells["shaky"].startswith("**"), cells


def test_command_clashing_with_a_builtin_is_an_error_naming_the_plugin(site):
    (site / "mfm_bench_toy.py").write_text((site / "mfm_bench_toy.py").read_text().replace('"toy-hello"', '"run"'))
    out = cli(["--help"], site)
    assert out.returncode == 2
    assert "command 'run' of mfm-bench-toy (plugin toy) clashes with a built-in command" in out.stderr


def test_broken_plugin_is_reported_and_the_others_work(site):
    make_dist(
        site, "mfm-bench-broken", "1.0", "mfm_bench_broken", "raise ImportError('needs libfoo')\n", entry="broken"
    )
    out = cli(["plugins"], site)
    assert out.returncode == 1
    assert "plugin 'broken' from package mfm-bench-broken failed to load: ImportError: needs libfoo" in out.stdout
    assert "toy-step" in out.stdout and "synthetic-factors" in out.stdout
    out = cli(["plugins"], site, MFM_BENCH_DISABLE_PLUGINS="broken")
    assert out.returncode == 0 and "failed to load" not in out.stdout


def test_load_plugins_switch_keeps_only_named(site):
    out = cli(["plugins"], site, MFM_BENCH_LOAD_PLUGINS="mfm-bench-toy")
    assert "toy-step" in out.stdout and "lstm" not in out.stdout


def test_duplicate_name_is_an_error_naming_both_packages(site, monkeypatch):
    make_dist(
        site, "mfm-bench-clash", "2.0", "mfm_bench_clash", TOY_MODULE.replace('"toy-step"', '"lstm"'), entry="clash"
    )
    monkeypatch.syspath_prepend(str(site))
    reg = create_registry()
    err = next(e for e in reg.errors if e.package == "mfm-bench-clash")
    assert (
        "'lstm' is registered twice" in err.error
        and "mfm-bench (plugin encoders)" in err.error
        and "mfm-bench-clash" in err.error
    )
    assert reg.get("encoder", "lstm").package == "mfm-bench"  # the first one stays


def test_misspelled_hook_is_an_error(monkeypatch):
    from mfm_bench import hookimpl

    class Typo:
        @hookimpl
        def register_encoder(self, register):  # missing "s"
            pass

    reg = create_registry()
    with pytest.raises(Exception, match="register_encoder"):
        reg.add_plugin(Typo(), "typo")


def test_unknown_name_suggests_close_match():
    with pytest.raises(PluginError, match="did you mean 'concat'"):
        get_registry().get("fusion", "concta")


def test_temporary_plugin_always_unregisters(dummy):
    from mfm_bench.testing import dummy_plugin, temporary_plugin

    reg = get_registry()
    assert "dummy" in reg.names("model")
    with pytest.raises(PluginError, match="'dummy' is registered twice"):  # a clash leaves nothing half-registered
        with temporary_plugin(type(dummy_plugin)(), "second-dummy"):
            pass
    assert "second-dummy" not in reg.dists and reg.get("model", "dummy").plugin == "mfm-bench-dummy"
    reg.remove_plugin("mfm-bench-dummy")
    with pytest.raises(RuntimeError):
        with temporary_plugin(type(dummy_plugin)(), "another"):
            assert reg.get("model", "dummy").plugin == "another"
            raise RuntimeError("test body failed")
    assert "another" not in reg.dists and "dummy" not in reg.names("model")


def test_listing_builtin_plugins_does_not_import_torch():
    code = (
        "import sys; from mfm_bench.cli import main; main(['plugins']); "
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().endswith("NOTORCH"), out.stdout[-300:] + out.stderr


TOY_DATASET = '''
import hashlib
from dataclasses import dataclass

from mfm_bench import hookimpl
from mfm_bench.config import option
from mfm_bench.contracts import DataDeclaration, DataFile, DataFormat, DatasetSpec, Modality, Task

CONTENT = b"toy table v1\\n" * 100


@dataclass
class ToyDataConfig:
    width: int = option(3, "feature dim of the single modality")


class ToyData:
    """A third-party dataset whose one file is declared with its source and hash."""

    def __init__(self, cfg):
        raise NotImplementedError("reading is not part of this test")

    @classmethod
    def describe(cls, cfg):
        return DatasetSpec("toy-data", (Modality("signal", cfg.width),), Task("regression", range=(0.0, 1.0)))

    @classmethod
    def declare(cls, cfg):
        table = DataFile("table.bin", "signal", "http://127.0.0.1:9/unreachable/table.bin",
                         sha256=hashlib.sha256(CONTENT).hexdigest(), size=len(CONTENT))
        return DataDeclaration("toy-data", (DataFormat("bin", "toy/v1", (table,), mirror_dir="v1"),))


@hookimpl
def register_datasets(register):
    register("toy-data", ToyData, config=ToyDataConfig, help="one declared file")
'''


def test_third_party_dataset_declares_files_that_datasets_lists_and_fetch_downloads(site, tmp_path):
    import http.server
    import threading
    from functools import partial

    make_dist(site, "mfm-bench-toydata", "0.1.0", "mfm_bench_toydata", TOY_DATASET, entry="toydata")
    home = tmp_path / "home"
    out = cli(["datasets"], site, MFM_BENCH_DATA=str(home))
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("toy-data"))
    assert " bin " in line and str(home / "toy" / "v1") in line and " no " in line and "table.bin" in line

    served = tmp_path / "mirror" / "v1"
    served.mkdir(parents=True)
    handler = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path / "mirror")))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        (served / "table.bin").write_bytes(b"toy table v2\n" * 100)  # same size, other content
        out = cli(["fetch", "toy-data", "--mirror", url, "--quiet"], site, MFM_BENCH_DATA=str(home))
        assert out.returncode == 2 and "toy/v1/table.bin: sha256" in out.stderr
        assert not (home / "toy" / "v1" / "table.bin").exists()
        (served / "table.bin").write_bytes(b"toy table v1\n" * 100)
        out = cli(["fetch", "toy-data", "--mirror", url, "--quiet"], site, MFM_BENCH_DATA=str(home))
        assert out.returncode == 0, out.stderr
        assert "toy-data: 1 files verified" in out.stdout
        assert (home / "toy" / "v1" / "table.bin").read_bytes() == b"toy table v1\n" * 100
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join()
    out = cli(["datasets"], site, MFM_BENCH_DATA=str(home))
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("toy-data"))
    assert line.split()[-1] == "yes" and "table.bin" not in line
