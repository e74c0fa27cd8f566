"""No plugin imports another plugin: plugin modules import only ``mfm_bench`` public modules, third-party libraries
and helper modules of their own folder.

The rule (docs/plugins.md, "Building blocks for plugin authors"):

- a *plugin module* is a module of ``mfm_bench.plugins`` that a registration names as its ``"module:attr"``
  factory; any other module in a plugin folder is a *parts* module (``models/mfm_parts.py``, ``datasets/base.py``,
  the torch-free ``configs.py`` that registrations name as config);
- a module under ``mfm_bench.plugins`` may import the core's public modules (``mfm_bench.X``, no ``_private``
  part), third-party libraries, and parts modules of its own folder; never a plugin module nor anything of another
  folder. Shared blocks belong in ``mfm_bench.nn`` (or another core module), not in a plugin.

Two checks: the imports written in each file (AST, lazy imports inside functions included), and what importing each
module in isolation actually loads (a fresh subprocess, plugin modules dropped from ``sys.modules`` before each).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from mfm_bench.registry import get_registry

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
PREFIX = "mfm_bench.plugins"

#: imports that break the rule today and are being moved by other work; (importer, imported) -> why.
#: An entry that no longer occurs fails the test: delete it then.
PENDING = {}


def module_files() -> dict[str, Path]:
    """Every module under plugins/ by import name (package __init__ files under the package's name)."""
    out = {}
    for path in sorted(PLUGINS.rglob("*.py")):
        parts = list(path.relative_to(PLUGINS).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PREFIX, *parts])] = path
    return out


def plugin_modules() -> set[str]:
    """Modules that a registration names: each is one plugin."""
    refs = set()
    for entries in get_registry().entries.values():
        for entry in entries.values():
            ref = entry.factory_ref  # a module named only as config (configs.py) is a parts module of its folder
            if isinstance(ref, str) and ref.startswith(PREFIX + "."):
                refs.add(ref.partition(":")[0])
    return refs


def folder(name: str) -> str:
    return name.rpartition(".")[0]


def allowed(importer: str, imported: str, plugins: set[str], files: dict[str, Path]) -> bool:
    """May ``importer`` (a module under mfm_bench.plugins) import ``imported``?"""
    if imported == importer or not imported.startswith("mfm_bench"):
        return True
    if not (imported + ".").startswith(PREFIX + "."):
        return not any(p.startswith("_") for p in imported.split(".")[1:])  # the core's public modules
    return (
        imported in files
        and folder(imported) == folder(importer)
        and imported not in plugins
        and not files[imported].name == "__init__.py"
    )


def written_imports(name: str, path: Path, files: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in the file, relative ones resolved."""
    package = name if path.name == "__init__.py" else folder(name)
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            for a in node.names:  # `from pkg import module` imports the module
                out.append((node.lineno, f"{module}.{a.name}" if f"{module}.{a.name}" in files else module))
    return out


def test_the_rule_tells_plugin_modules_from_parts_and_core():
    files, plugins = module_files(), plugin_modules()
    assert {
        "mfm_bench.plugins.models.mfm",
        "mfm_bench.plugins.fusions.mult",
        "mfm_bench.plugins.encoders.rnn",
    } <= plugins
    assert "mfm_bench.plugins.models.mfm_parts" not in plugins
    assert "mfm_bench.plugins.models.configs" not in plugins  # config dataclasses: a parts module
    mfm = "mfm_bench.plugins.models.mfm"
    assert allowed(mfm, "mfm_bench.plugins.models.mfm_parts", plugins, files)
    assert allowed(mfm, "mfm_bench.nn", plugins, files) and allowed(mfm, "torch.nn", plugins, files)
    assert not allowed(mfm, "mfm_bench.plugins.models.misa", plugins, files)  # another plugin of the folder
    assert not allowed(mfm, "mfm_bench.plugins.fusions.mfn", plugins, files)  # another folder
    assert not allowed(mfm, "mfm_bench.plugins.fusions", plugins, files)
    assert not allowed(mfm, "mfm_bench._private", plugins, files)


def test_imports_are_read_with_relative_and_lazy_forms_resolved(tmp_path):
    files = {**module_files(), "mfm_bench.plugins.models.x": tmp_path / "x.py"}
    (tmp_path / "x.py").write_text(
        "from .mfm_parts import CodeEncoder\nfrom . import misa\n"
        "from mfm_bench.plugins.fusions import mfn\nimport torch.nn\n\n"
        "def f():\n    from ..fusions.tfn import TFNFusion\n"
    )
    found = written_imports("mfm_bench.plugins.models.x", tmp_path / "x.py", files)
    assert found == [
        (1, "mfm_bench.plugins.models.mfm_parts"),
        (2, "mfm_bench.plugins.models.misa"),
        (3, "mfm_bench.plugins.fusions.mfn"),
        (4, "torch.nn"),
        (7, "mfm_bench.plugins.fusions.tfn"),
    ]


def test_no_plugin_module_imports_another_plugin_in_its_source():
    files, plugins = module_files(), plugin_modules()
    bad, seen = [], set()
    for name, path in files.items():
        for line, imported in written_imports(name, path, files):
            if not allowed(name, imported, plugins, files):
                seen.add((name, imported))
                if (name, imported) not in PENDING:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: imports {imported}")
    assert not bad, "plugins import other plugins (move the shared part to mfm_bench.nn or the core):\n" + "\n".join(
        bad
    )
    stale = set(PENDING) - seen
    assert not stale, f"these PENDING entries no longer occur; delete them: {sorted(stale)}"


_PROBE = """
import importlib, json, sys
loaded = {}
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m.startswith("mfm_bench.plugins.")]:
        del sys.modules[m]
    importlib.import_module(name)
    loaded[name] = sorted(m for m in sys.modules if m.startswith("mfm_bench.plugins."))
print(json.dumps(loaded))
"""


def test_importing_each_plugin_module_in_isolation_loads_no_other_plugin():
    files, plugins = module_files(), plugin_modules()
    names = [n for n, p in files.items() if p.name != "__init__.py"]
    run = subprocess.run([sys.executable, "-c", _PROBE, *names], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    loaded = json.loads(run.stdout)
    pending_targets = {b for _, b in PENDING}  # also loaded through the module that imports it
    bad = [
        f"{name} loads {other}"
        for name in names
        for other in loaded[name]
        if other not in files or files[other].name != "__init__.py"  # the packages themselves register hooks
        if not allowed(name, other, plugins, files) and other not in pending_targets
    ]
    assert not bad, "importing a plugin module loads other plugin modules:\n" + "\n".join(bad)
