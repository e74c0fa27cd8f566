"""Docs stay in sync with the code: every hook is documented once, from its docstring, with its signature."""

import inspect
import subprocess
import sys
from pathlib import Path

from mfm_bench import hookdoc, hookspecs

ROOT = Path(__file__).resolve().parents[2]


def test_plugins_md_hook_reference_is_generated_from_docstrings():
    text = (ROOT / "docs" / "plugins.md").read_text()
    assert hookdoc.render() in text, "run: python -m mfm_bench.hookdoc --write"
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("register_"):
            assert f"### `{name}{inspect.signature(fn)}`" in text
            assert fn.__doc__ and "Called" in fn.__doc__ and ":return:" in fn.__doc__


def test_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mfm-bench run suites/quickstart.yaml" in readme
    assert "python -m pytest" in readme and "\npython -m pytest\n" in ci
    assert "torch==2.13.0" in readme and "torch==2.13.0" in ci


def test_help_teaches_and_does_not_import_torch():
    code = (
        "import sys\nfrom mfm_bench.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().endswith("NOTORCH")
    for cmd in ("run", "validate", "plugins", "leaderboard"):
        assert f"    {cmd}" in out.stdout
    assert "examples:" in out.stdout
