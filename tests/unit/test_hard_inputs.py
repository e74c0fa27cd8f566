"""Careless and hostile suites: each gets one ``error:`` line naming file, line, field and fix, before any work."""

import re

import pytest

from mfm_bench.cli import main
from mfm_bench.suite import SuiteError, load_suite

HEAD = """\
name: t
datasets: [{name: synthetic-factors, params: {n_train: 40, n_valid: 10, n_test: 10}}]
models: [{name: supervised, params: {fusion: concat, encoder: mean}}]
"""

BAD = [  # (suite tail, line, field, words in the message)
    (
        "evaluate: {conditions: [{missing: audoi}]}",
        4,
        "evaluate.conditions[0]",
        ["no modality 'audoi'", "did you mean 'audio'"],
    ),
    ("evaluate: {conditions: [{noise: {modality: visual, std: -1}}]}", 4, "evaluate.conditions[0]", ["outside [0, 1]"]),
    ("evaluate: {conditions: ['noise:visual:nan']}", 4, "evaluate.conditions[0]", ["outside [0, 1]"]),
    ("train: {device: banana}", 4, "train.device", ["unknown device 'banana'"]),
    ("train: {device: 'cuda:7'}", 4, "train.device", ["cuda:7"]),
    ("train: {lr: .nan}", 4, "train.lr", ["is .nan"]),
    ("train: {lr: .inf}", 4, "train.lr", ["finite"]),
    ("train: {threads: -4}", 4, "train.threads", ["got -4"]),
    ("seeds: [-1]", 4, "seeds[0]", ["out of range"]),
    ("seeds: [1e23]", 4, "seeds[0]", ["integers"]),
    ("seeds: [100000000000000000000000]", 4, "seeds[0]", ["out of range"]),
    ("seeds: [0, 0, 0]", 4, "seeds[1]", ["listed twice"]),
    ("train: {epochs: 2}\ntrain: {epochs: 3}", 5, "", ["'train' appears twice", "line 4"]),
    ("train: {epochs: 2, epochs: 3}", 4, "", ["'epochs' appears twice"]),
]


@pytest.mark.parametrize("tail,line,field,words", BAD, ids=[b[0][:30] for b in BAD])
def test_bad_values_are_refused_with_file_line_field(write_suite, tail, line, field, words, capsys):
    if "cuda" in tail:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.device_count() > 7:
            pytest.skip("this machine has a cuda:7")
    path = write_suite(HEAD + tail + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    e = info.value
    assert (e.line, e.field) == (line, field), str(e)
    for w in words:
        assert w in str(e)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and f"{path}:{line}:" in err and "Traceback" not in err


def test_exponent_floats_are_numbers_like_yaml_1_2(write_suite):
    suite = load_suite(write_suite(HEAD + "train: {lr: 1e-3, weight_decay: 1e6, epochs: 1}\n"))
    assert suite.train["lr"] == 0.001 and suite.train["weight_decay"] == 1e6


@pytest.mark.parametrize("where", ["description", "train.epochs", "seeds", "encoder_params"])
def test_billion_laughs_is_refused_without_the_expanded_value(write_suite, where, capsys, monkeypatch):
    anchors = "x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
    )
    bomb = "*a8"
    tail = {
        "description": f"description: {bomb}\n",
        "train.epochs": f"train: {{epochs: {bomb}}}\n",
        "seeds": f"seeds: {bomb}\n",
    }.get(where, "")
    text = HEAD.replace("encoder: mean}", f"encoder: mean, encoder_params: {bomb}}}") if not tail else HEAD + tail
    path = write_suite("# bomb\n" + text.replace("name: t\n", "name: t\n" + anchors.replace("x", "_x")))
    from mfm_bench import yamlload

    built = []  # the size check refuses the node graph before any Python value is built from it

    def build(self, node):
        built.append(1)
        return {}

    monkeypatch.setattr(yamlload.SuiteLoader, "construct_document", build)
    assert main(["validate", str(path)]) == 1
    assert built == []
    err = capsys.readouterr().err
    assert "anchors and aliases" in err and str(path) in err and len(err) < 400


def test_not_utf8_folder_and_unreadable_files(tmp_path, monkeypatch, capsys):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert main(["validate", str(latin), str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{latin}:1: is not UTF-8" in err and f"{folder}: is a folder" in err and "Traceback" not in err
    locked = tmp_path / "locked.yaml"
    locked.write_text(HEAD)

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("mfm_bench.yamlload.open", denied, raising=False)
    assert main(["validate", str(locked)]) == 1
    assert "cannot be read: Permission denied" in capsys.readouterr().err


def test_same_dataset_twice_with_one_label(write_suite):
    text = HEAD.replace("datasets: [", "datasets: [synthetic-factors, ")
    with pytest.raises(SuiteError, match=r"datasets\[0\]: dataset 'synthetic-factors' appears 2 times"):
        load_suite(write_suite(text))
    labelled = HEAD.replace(
        "datasets: [{name: synthetic-factors, params:",
        "datasets: [{name: synthetic-factors, label: same}, {name: synthetic-factors, label: same, params:",
    )
    with pytest.raises(SuiteError, match=r"label 'same' is used twice"):
        load_suite(write_suite(labelled))


def test_paths_and_vars_resolve_once_against_the_suite_folder(write_suite, tmp_path, monkeypatch):
    data = tmp_path / "data" / "mmmo"
    data.mkdir(parents=True)
    monkeypatch.setenv("MY_DATA", str(tmp_path / "data"))
    monkeypatch.chdir("/")
    for given in ("data/mmmo", "$MY_DATA/mmmo", "${MY_DATA}/mmmo"):
        text = f"name: p\ndatasets: [{{name: ict-mmmo, params: {{path: '{given}'}}}}]\nmodels: [supervised]\n"
        suite = load_suite(write_suite(text), check_files=True)
        assert suite.datasets[0].params["path"] == str(data), given  # what run builds the dataset from
    text = "name: p\ndatasets: [{name: ict-mmmo, params: {path: $NOT_SET_X/m}}]\nmodels: [supervised]\n"
    with pytest.raises(SuiteError, match=r"NOT_SET_X, which is not set"):
        load_suite(write_suite(text))


def test_dataset_paths_and_files_are_sniffed(write_suite, tmp_path):
    text = "name: p\ndatasets: [{name: ict-mmmo, params: {path: /etc/passwd}}]\nmodels: [supervised]\n"
    with pytest.raises(SuiteError, match="is a file; it must be the folder"):
        load_suite(write_suite(text))
    from mfm_bench.registry import get_registry

    reg = get_registry()
    folder = tmp_path / "mmmo"
    folder.mkdir()
    decl = reg.get("dataset", "ict-mmmo").factory.declare(reg.config_of("dataset", "ict-mmmo", {"path": str(folder)}))
    first = decl.formats[0].files[0].name
    (folder / first).write_text("root:x:0:0:root:/root:/bin/bash\n")
    text = f"name: p\ndatasets: [{{name: ict-mmmo, params: {{path: {folder}}}}}]\nmodels: [supervised]\n"
    with pytest.raises(SuiteError, match=re.escape(f"{folder / first} is not an HDF5 file")):
        load_suite(write_suite(text))


def test_sniff_formats(tmp_path):
    from mfm_bench.data.sniff import format_problem

    h5py = pytest.importorskip("h5py")
    good = tmp_path / "a.csd"
    with h5py.File(good, "w") as f:
        f.create_group("words/data")
        f.create_group("words/metadata")
    plain = tmp_path / "b.csd"
    with h5py.File(plain, "w") as f:
        f.create_dataset("x", data=[1])
    (tmp_path / "c.pkl").write_bytes(b"\x80\x04K\x01.")
    (tmp_path / "d.pkl").write_text("hello")
    assert format_problem(good) is None and format_problem(tmp_path / "c.pkl") is None
    assert "not a computational sequence" in format_problem(plain)
    assert "not a pickle" in format_problem(tmp_path / "d.pkl")


def test_validate_builds_configs_without_torch():
    import subprocess
    import sys
    from pathlib import Path

    suites = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "suites").glob("*.yaml"))
    code = (
        "import sys\nfrom mfm_bench.cli import main\n"
        f"rc = main(['validate', *{suites!r}])\n"
        "print(rc)\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rc = out.stdout.strip().splitlines()[-2]
    assert rc == "0" and out.stdout.strip().endswith("NOTORCH"), out.stdout[-500:] + out.stderr


def test_generated_datasets_describe_their_modalities_for_conditions(write_suite):
    text = "name: t\ndatasets: [paired-digits]\nmodels: [supervised]\nevaluate: {conditions: [{missing: audio}]}\n"
    with pytest.raises(SuiteError, match=r"'paired-digits' has no modality 'audio' \(available: image, signal\)"):
        load_suite(write_suite(text))
