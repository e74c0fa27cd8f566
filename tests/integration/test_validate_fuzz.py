"""Fuzz `mfm-bench validate` with generated malformed suites: always exit 1 or 2, the file named, no traceback.

A seeded generator (reproducible; hypothesis would shrink, but a failing case here prints its own text) takes a
good suite and applies one to three mutations, each of which alone makes the suite invalid: a NaN anywhere, an
unknown key, a missing required key, wrong shapes, bad seeds, devices, conditions and names, and at the text level
bytes that are not UTF-8, a duplicated key, an unclosed bracket, a tab indent or an alias bomb.
"""

import copy
import random

import yaml

from mfm_bench.cli import main

GOOD = {
    "name": "fuzz",
    "description": "a small suite",
    "datasets": [{"name": "synthetic-factors", "params": {"n_train": 40, "n_valid": 10, "n_test": 10}}],
    "models": [
        {"name": "supervised", "label": "concat", "params": {"fusion": "concat", "encoder": "mean"}},
        {"name": "mfm", "params": {"zy": 4}},
    ],
    "seeds": [0, 1],
    "train": {"epochs": 2, "lr": 0.001, "device": "cpu"},
    "evaluate": {"conditions": ["clean", {"missing": "audio"}, {"noise": {"modality": "visual", "std": [0.1]}}]},
    "report": {"formats": ["markdown"]},
}
N = 300
GARBAGE = [None, [], {}, [[["deep"]]], {"a": {"b": [1, None]}}, True, 3.5, -7, "", "x" * 300, 2**80]


def _mappings(s):
    return [s, s["train"], s["evaluate"], s["report"], s["datasets"][0], s["models"][0], s["models"][0]["params"]]


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def _set(s, path, value):
    for p in path[:-1]:
        s = s[p]
    s[path[-1]] = value


def structural(s, rng):
    kind = rng.randrange(9)
    if kind == 0:
        _set(s, rng.choice(list(_leaves(s))), rng.choice([float("nan"), [float("nan")]]))
    elif kind == 1:
        rng.choice(_mappings(s))[f"zzq{rng.randrange(999)}"] = rng.choice(GARBAGE)
    elif kind == 2:
        del s[rng.choice(["name", "datasets", "models"])]
    elif kind == 3:
        s[rng.choice(["datasets", "models"])] = rng.choice([[], 5, "x" * 80, [None], [{"params": {}}], [[1]]])
    elif kind == 4:
        s["seeds"] = rng.choice([[-1], [2**64], [1.5], ["a"], [0, 0], [], 7, [None]])
    elif kind == 5:
        s["train"]["device"] = rng.choice(["banana", "cuda:99", "gpu", "", "cpu:0", "CUDA"])
    elif kind == 6:
        s["evaluate"]["conditions"] = [
            rng.choice(
                [
                    {"missing": "audoi"},
                    {"noise": {"modality": "visual", "std": -1}},
                    {"noise": {"modality": "nope"}},
                    "noise:visual",
                    {"blur": 1},
                    {"noise": {"modality": "visual", "std": float("inf")}},
                ]
            )
        ]
    elif kind == 7:
        s["name"] = rng.choice(["has space", "ünïcode", "", 12, None, "a/b"])
    else:
        _set(
            s,
            ("train", rng.choice(["epochs", "lr", "threads", "batch_size"])),
            rng.choice(["banana", -4, [], float("inf"), None]),
        )
    return s


def textual(text, rng):
    kind = rng.randrange(5)
    if kind == 0:
        at = rng.randrange(len(text) + 1)
        return text[:at].encode() + bytes([rng.randrange(0x80, 0x100)]) + text[at:].encode()
    if kind == 1:
        return (text + "name: again\n").encode()
    if kind == 2:
        return (text + rng.choice(["extra: [1, 2\n", "extra: {a: 1\n", "extra: '\n", "- loose\n"])).encode()
    if kind == 3:
        return (text + "\ttab: 1\n").encode()
    levels = "".join(f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    return (text + "zbomb:\n  - &l0 [a, a, a, a, a, a, a, a, a]\n" + levels).encode()


def cases(seed=20261201):
    rng = random.Random(seed)
    for _ in range(N):
        s = copy.deepcopy(GOOD)
        for _ in range(rng.randint(1, 2)):
            try:
                s = structural(s, rng)
            except (KeyError, TypeError, IndexError):  # an earlier mutation removed the place
                pass
        text = yaml.safe_dump(s, allow_unicode=True, sort_keys=rng.random() < 0.5)
        yield textual(text, rng) if rng.random() < 0.35 else text.encode()


def test_fuzzed_suites_fail_cleanly(tmp_path, capsys):
    seen = set()
    for i, data in enumerate(cases()):
        path = tmp_path / f"s{i}.yaml"
        path.write_bytes(data)
        seen.add(data)
        rc = main(["validate", str(path)])
        out = capsys.readouterr()
        assert rc in (1, 2), f"{path} was accepted:\n{data.decode(errors='replace')}"
        assert str(path) in out.err and "Traceback" not in out.err, out.err
        assert out.err.count("error:") == 1 and len(out.err) < 2000, out.err[:500]
    assert len(seen) >= 200


def _plugin_params():
    """(kind, plugin, field, dataclass field) of every param of every built-in model, encoder and fusion."""
    import dataclasses

    from mfm_bench.registry import get_registry

    reg = get_registry()
    for kind in ("model", "encoder", "fusion"):
        for name in reg.names(kind):
            config = reg.get(kind, name).config
            if config is not None and reg.get(kind, name).package == "mfm-bench":
                for f in dataclasses.fields(config):
                    yield kind, name, f.name, f


def _suite_with(kind, name, field, value):
    """A suite that gives plugin ``name`` of ``kind`` the param ``field: value`` (an encoder or fusion through
    supervised), and the path validate names for it."""
    model = {"model": {"name": name, "params": {field: value}}}.get(kind)
    if kind == "encoder":
        model = {"name": "supervised", "params": {"encoder": name, "encoder_params": {field: value}}}
    if kind == "fusion":
        model = {"name": "supervised", "params": {"fusion": name, "fusion_params": {field: value}}}
    where = "models[0].params." + {"model": "", "encoder": "encoder_params.", "fusion": "fusion_params."}[kind] + field
    suite = {"name": "bounds", "datasets": ["synthetic-factors"], "models": [model]}
    return yaml.safe_dump(suite), where


def test_every_bounded_param_of_the_built_ins_is_refused_outside_its_bounds(tmp_path, capsys):
    # encoder_params: {hidden: 0} passed validate and failed every run; misa's heads: 0 was a ZeroDivisionError
    checked = 0
    for kind, name, field, f in _plugin_params():
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        for bad in ([lo - 1] if lo is not None else []) + ([hi + 1] if hi is not None else []):
            path = tmp_path / "s.yaml"
            text, where = _suite_with(kind, name, field, bad)
            path.write_text(text)
            assert main(["validate", str(path)]) == 1, f"{kind} {name}: {field}: {bad} was accepted"
            err = capsys.readouterr().err
            assert f"{where}: must be " in err and "Traceback" not in err, err
            checked += 1
    assert checked >= 40  # the encoders' and models' sizes, rates and weights


def test_zero_or_negative_for_any_number_of_the_built_ins_is_accepted_or_refused_cleanly(tmp_path, capsys):
    # no config check may crash on a value it never expected (heads: 0 divided by zero in MISAConfig)
    for kind, name, field, f in _plugin_params():
        if "int" not in str(f.type) and "float" not in str(f.type):
            continue
        for bad in (0, -1):
            path = tmp_path / "s.yaml"
            text, _ = _suite_with(kind, name, field, bad)
            path.write_text(text)
            assert main(["validate", str(path)]) in (0, 1)
            err = capsys.readouterr().err
            assert "Traceback" not in err and err.count("error:") <= 1, err
