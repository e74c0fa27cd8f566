"""docs/plugins.md's complete third-party package, exactly as written: it builds, its test passes once the
package is installed, and its entry point imports no torch (every mfm-bench command imports it)."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the package's modules: the entry point (torch-free) and the encoder it names as a "module:attr" string
MODULES = ("mfm_bench_conv.py", "mfm_bench_conv_encoder.py")


def install(tmp_path: Path) -> dict[str, str]:
    """The package as pip would leave it in a site folder: its modules and dist-info (entry point) under
    ``tmp_path``; returns the environment that puts it on the path."""
    files = package_files()
    for name in MODULES:
        (tmp_path / name).write_text(files[name])
    info = tmp_path / "mfm_bench_conv-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mfm-bench-conv\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[mfm_bench]\nconv = mfm_bench_conv\n")
    (info / "RECORD").write_text("")
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def package_files() -> dict[str, str]:
    """The four files of the section "A complete third-party package", by name."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split("## A complete third-party package", 1)[1].split("\n## ", 1)[0]
    files = {}
    for name in MODULES + ("pyproject.toml", "test_conv.py"):
        match = re.search(rf"`{re.escape(name)}`[^\n]*:\s*\n\s*```\w*\n(.*?)```", section, re.S)
        assert match, f"docs/plugins.md shows no {name}"
        files[name] = match.group(1)
    return files


def test_the_documented_package_builds_with_its_test_beside_it(tmp_path):
    pkg = tmp_path / "mfm-bench-conv"
    pkg.mkdir()
    for name, text in package_files().items():
        (pkg / name).write_text(text)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(pkg),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (wheel,) = tmp_path.glob("mfm_bench_conv-0.1.0-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert set(MODULES) <= set(names) and "test_conv.py" not in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "conv = mfm_bench_conv" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_documented_test_passes_with_the_package_installed(tmp_path):
    # installed: the module is on the path and its entry point registers it before the test's temporary_plugin
    env = install(tmp_path)
    (tmp_path / "test_conv.py").write_text(package_files()["test_conv.py"])
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_conv.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "2 passed" in out.stdout  # the shapes, and the entry point without torch


def test_listing_and_validating_with_the_documented_package_installed_import_no_torch(tmp_path):
    # the example's entry module imported torch at its top: installing it made mfm-bench --help, plugins and
    # validate import torch (seconds), which the "module:attr" registration exists to avoid
    env = install(tmp_path)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: t\ndatasets: [synthetic-factors]\n"
        "models: [{name: supervised, params: {encoder: conv, encoder_params: {kernel: 5}}}]\n"
    )
    code = (
        "import sys\nfrom mfm_bench.cli import main\n"
        "codes = [main(['plugins', '--kind', 'encoder']), main(['validate', sys.argv[1]])]\n"
        "print('codes', codes, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(suite)], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert "mfm-bench-conv" in out.stdout and "suite.yaml: ok" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert "codes [0, 0] False" in out.stdout


def test_the_documented_examples_import_nothing_they_do_not_use():
    # test_conv.py imported get_registry and never used it: a plugin author copies such a line into their package
    import ast

    text = (ROOT / "docs" / "plugins.md").read_text()
    unused = []
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        tree = ast.parse(block)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    name = alias.asname or alias.name.split(".")[0]
                    if name not in used:
                        unused.append(f"{name} in the example that begins {block.splitlines()[0]!r}")
    assert not unused, unused


def test_the_documented_factory_calls_are_the_registry_s():
    # the contracts table showed only factory(input_dim, cfg): an author without config= got **params instead
    from dataclasses import dataclass

    from mfm_bench import hookimpl
    from mfm_bench.config import option
    from mfm_bench.testing import temporary_plugin

    calls = []

    @dataclass
    class Width:
        hidden: int = option(4, "width")

    class Enc:
        def __init__(self, *args, **kwargs):
            calls.append((args, kwargs))
            self.output_dim = 4

    class Plugin:
        @hookimpl
        def register_encoders(self, register):
            register("typed", Enc, config=Width)
            register("untyped", Enc)

    with temporary_plugin(Plugin(), "factory-calls-under-test") as reg:
        reg.build("encoder", "typed", 7, hidden=4)
        reg.build("encoder", "untyped", 7, hidden=4)
    assert calls == [((7, Width(hidden=4)), {}), ((7,), {"hidden": 4})]
    text = (ROOT / "docs" / "plugins.md").read_text()
    contracts = text.split("## The contracts", 1)[1].split("\n### ", 1)[0]
    assert "| encoder | `factory(input_dim, cfg)` |" in contracts
    assert "`factory(input_dim, **params)`, `factory(**params)` for a dataset" in " ".join(contracts.split())


def test_the_documented_encoder_is_refused_a_modality_it_cannot_read(tmp_path, monkeypatch, capsys):
    # the documented ConvEncoder transposes [B, T, D]: given paired-digits' vector modality it failed inside its
    # forward ("Dimension out of range"); its config now declares the kinds it reads, so validate refuses the suite
    from mfm_bench.cli import main
    from mfm_bench.testing import temporary_plugin

    for name in MODULES:
        (tmp_path / name).write_text(package_files()[name])
    monkeypatch.syspath_prepend(str(tmp_path))
    import mfm_bench_conv

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: t\ndatasets: [paired-digits]\n"
        "models: [{name: supervised, params: {encoder: {image: conv-image, default: conv}}}]\n"
    )
    try:
        with temporary_plugin(mfm_bench_conv, "conv-under-test"):
            assert main(["validate", str(suite)]) == 1
    finally:
        sys.modules.pop("mfm_bench_conv", None)
    err = capsys.readouterr().err
    assert "modality 'signal' of dataset 'paired-digits' is a vector [D]" in err
    assert "which the 'conv' encoder cannot read (it reads sequence modalities)" in err
