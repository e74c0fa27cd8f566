"""Meta-tests that keep the repository in sync with itself: shipped suites validate, every hook has a test,
and docs/mfm.md's parameter table states MFMConfig's (and MFNConfig's) real defaults."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import yaml

from mfm_bench import hookspecs
from mfm_bench.hookspecs import PROJECT
from mfm_bench.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]  # tests/, every subfolder
SHARED_DATA = ROOT.parent / "shared" / "data"
SUITES = sorted((ROOT / "suites").glob("*.yaml"))


# -- every shipped suite validates ------------------------------------------------------------------------------
def test_there_are_suites():
    assert len(SUITES) >= 3, SUITES


@pytest.mark.parametrize("path", SUITES, ids=[p.name for p in SUITES])
def test_shipped_suite_validates(path):
    # file checks only where the data is present (CI machines have no data; fetch: true suites skip them anyway)
    suite = load_suite(path, check_files=SHARED_DATA.is_dir())
    assert suite.name and suite.datasets and suite.models and suite.conditions[0].name == "clean"


# -- every hook is exercised by a test --------------------------------------------------------------------------
def hook_names() -> list[str]:
    """Every function hookspecs.py marks as a hook specification (found by pluggy's marker, not by a list)."""
    marker = f"{PROJECT}_spec"
    return sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker))


def test_hookspecs_are_found():
    assert {"register_encoders", "register_fusions", "register_datasets", "register_models"} <= set(hook_names())


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_test(hook):
    """The hook's name appears in a test module other than this one (as a @hookimpl function or a call)."""
    pattern = re.compile(rf"\b{re.escape(hook)}\b")
    users = [
        p.relative_to(TESTS)
        for p in sorted(TESTS.rglob("*.py"))
        if p.resolve() != Path(__file__).resolve() and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert users, f"no test under tests/ names the hook {hook!r}; add one that registers a plugin through it"


# -- docs/mfm.md's parameter table matches the config dataclasses -----------------------------------------------
def parameter_rows(doc: Path) -> list[tuple[str, list[str], str]]:
    """(prefix, names, default cell) of each row of the table headed `| parameter | default | source |`."""
    rows, inside = [], False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if re.match(r"\|\s*parameter\s*\|\s*default\s*\|", line):
            inside = True
            continue
        if not inside or line.startswith("|---"):
            continue
        if not line.startswith("|"):
            break
        first, default = [c.strip() for c in line.strip("|").split("|")][:2]
        m = re.fullmatch(r"(?:(\w+) )?(`\w+`(?:, `\w+`)*)", first)
        if m:  # rows like "MFN hidden, MLP widths, dropouts" name no fields and are not checked
            rows.append((m.group(1) or "", re.findall(r"`(\w+)`", m.group(2)), default))
    return rows


def parse_defaults(cell: str, n: int) -> list:
    """'`lstm`, `{}` (hidden 32)' -> ['lstm', {}]; 'null = `fy`' -> [None]; one value given for n names repeats."""
    text = re.sub(r"\([^)]*\)", "", cell)  # remarks in parentheses
    text = re.sub(r"\s*=\s*`[^`]*`", "", text)  # "null = `fy`": what null means
    values = yaml.safe_load("[" + text.replace("`", "") + "]")
    return values * n if len(values) == 1 else values


from mfm_bench.plugins.models.mfm_presets import FROM_PRESET, PRESETS  # noqa: E402


def _config_classes() -> dict[str, type]:
    """The config dataclasses the table documents, found through the registry wherever the plugins keep them."""
    from mfm_bench.registry import get_registry

    reg = get_registry()
    return {"": reg.get("model", "mfm").config, "MFN": reg.get("fusion", "mfn").config}


def test_parameter_table_parser_reads_every_form():
    assert parse_defaults("`lstm`, `{}` (hidden 32)", 2) == ["lstm", {}]
    assert parse_defaults("`{text: 64, default: 80}`", 1) == [{"text": 64, "default": 80}]
    assert parse_defaults("null = `fy`", 1) == [None]
    assert parse_defaults("0.0", 2) == [0.0, 0.0]
    assert parse_defaults("false, 1.0, 1.0", 3) == [False, 1.0, 1.0]


def test_mfm_doc_table_states_the_config_defaults():
    classes = _config_classes()
    rows = parameter_rows(ROOT / "docs" / "mfm.md")
    assert rows, "docs/mfm.md has no `| parameter | default | source |` table"
    documented: dict[str, set[str]] = {prefix: set() for prefix in classes}
    for prefix, names, cell in rows:
        assert prefix in classes, f"docs/mfm.md: unknown prefix {prefix!r} in the parameter table"
        fields = {f.name: f for f in dataclasses.fields(classes[prefix])}
        values = parse_defaults(cell, len(names))
        assert len(values) == len(names), f"docs/mfm.md: {names} has {len(values)} defaults: {cell!r}"
        for name, value in zip(names, values):
            label = f"{prefix} {name}".strip()
            assert name in fields, f"docs/mfm.md names {label!r}, which {classes[prefix].__name__} lacks"
            f = fields[name]
            actual = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if actual is FROM_PRESET:  # filled by the preset: the table states the default preset's value
                actual = PRESETS["default"][name]
            assert value == actual, f"docs/mfm.md: {label} default {value!r}, the config says {actual!r}"
            documented[prefix].add(name)
    missing = [f.name for f in dataclasses.fields(classes[""]) if f.name not in documented[""]]
    assert not missing, f"docs/mfm.md's parameter table lacks MFMConfig fields {missing}"
