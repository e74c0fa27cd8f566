"""Bad suites are rejected before any training, with file, line, field and fix."""

from pathlib import Path

import pytest

from mfm_bench.suite import SuiteError, load_suite

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: tiny
datasets:
  - name: synthetic-factors
    params: {n_train: 40, n_valid: 10, n_test: 10}
models:
  - {name: supervised, label: concat, params: {fusion: concat, encoder: mean}}
  - {name: supervised, label: late, params: {fusion: late}}
seeds: [0, 1]
train: {epochs: 2}
evaluate:
  conditions: [clean, {missing: audio}, {noise: {modality: visual, std: [0.1, 1.0]}}]
"""


def error_of(write_suite, text):
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(text))
    return info.value


def test_good_suite_resolves_every_default(write_suite):
    suite = load_suite(write_suite(GOOD))
    assert [m.label for m in suite.models] == ["concat", "late"]
    params = suite.models[0].params
    assert params["head_hidden"] == 64 and params["encoder_params"] == {"hidden": 32, "dropout": 0.0}
    assert params["fusion_params"]["hidden"] == 64  # nested plugin defaults are filled too
    assert suite.train["epochs"] == 2 and suite.train["batch_size"] == 32
    assert [c.name for c in suite.conditions] == ["clean", "missing:audio", "noise:visual:0.1", "noise:visual:1"]


def test_shipped_suites_validate():
    load_suite(ROOT / "suites" / "quickstart.yaml")


def test_the_commented_example_of_docs_suites_validates(write_suite):
    # it listed synthetic-factors twice with a label on one entry only, and a report.reference no model had
    text = (ROOT / "docs" / "suites.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    suite = load_suite(write_suite(example))
    assert [d.label for d in suite.datasets] == ["synthetic-regression", "synthetic-3class"]
    assert suite.reference == "concat-LSTM" and len(suite.conditions) == 17


def test_unknown_top_level_key_names_line_and_suggests(write_suite):
    e = error_of(write_suite, GOOD.replace("seeds:", "seedz:"))
    assert e.line == 8 and e.field == "seedz" and "did you mean 'seeds'" in e.hint
    assert str(e).startswith(str(e.file) + ":8: seedz: unknown key")


def test_wrong_type(write_suite):
    e = error_of(write_suite, GOOD.replace("seeds: [0, 1]", "seeds: zero"))
    assert e.line == 8 and e.field == "seeds" and "array" in e.message


def test_unknown_plugin_name_suggests(write_suite):
    e = error_of(write_suite, GOOD.replace("name: synthetic-factors", "name: synthetic-factor"))
    assert e.line == 3 and e.field == "datasets[0].name" and "did you mean 'synthetic-factors'" in e.message


def test_unknown_plugin_param_suggests(write_suite):
    e = error_of(write_suite, GOOD.replace("n_train: 40", "n_trian: 40"))
    assert e.line == 4 and e.field == "datasets[0].params.n_trian" and "did you mean 'n_train'" in e.hint


def test_wrong_param_type_in_nested_plugin(write_suite):
    e = error_of(write_suite, GOOD.replace("fusion: late}", "fusion: late, fusion_params: {hidden: big}}"))
    assert e.field == "models[1].params.fusion_params.hidden" and "integer" in e.message and e.line == 7


def test_unknown_nested_plugin_name(write_suite):
    e = error_of(write_suite, GOOD.replace("fusion: late}", "fusion: lat}"))
    assert e.field == "models[1].params.fusion" and "did you mean 'late'" in e.message


def test_train_options_are_checked(write_suite):
    e = error_of(write_suite, GOOD.replace("epochs: 2", "epochs: 2, lr: -1"))
    assert e.field == "train" and "lr must be positive" in e.message
    e = error_of(write_suite, GOOD.replace("epochs: 2", "epoch: 2"))
    assert e.field == "train.epoch" and "did you mean 'epochs'" in e.hint


@pytest.mark.parametrize(
    "option, words",
    [
        ("early_stop: -1", "must be 0 (never stop early) or more"),
        ("grad_clip: -1.0", "must be 0 (no clipping) or more"),
        ("weight_decay: -0.01", "must be 0 (none) or more"),
        ("plateau_factor: 1.5", "must be between 0 and 1"),
        ("plateau_factor: 0", "must be between 0 and 1"),
        ("plateau_patience: -2", "must be 0 or more epochs"),
    ],
)
def test_train_options_that_would_change_training_silently_are_refused(write_suite, option, words):
    # early_stop: -1 used to stop every run after its first epoch, grad_clip: -1 to clip nothing
    e = error_of(write_suite, GOOD.replace("epochs: 2", f"epochs: 2, {option}"))
    assert e.field == f"train.{option.split(':')[0]}" and e.line == 9 and words in e.message
    assert load_suite(write_suite(GOOD.replace("epochs: 2", "epochs: 2, early_stop: 0, grad_clip: 0")))


def test_an_encoder_per_modality_names_modalities_the_datasets_have(write_suite):
    # a misspelt key left that modality on default without a word; a missing one without default failed every run
    e = error_of(write_suite, GOOD.replace("encoder: mean}", "encoder: {txt: lstm, default: mean}}"))
    assert e.field == "models[0].params.encoder.txt" and e.line == 6 and "did you mean 'text'" in e.hint
    e = error_of(write_suite, GOOD.replace("encoder: mean}", "encoder: {text: lstm}}"))
    assert e.field == "models[0].params.encoder" and "no encoder for modality 'audio'" in e.message
    assert load_suite(write_suite(GOOD.replace("encoder: mean}", "encoder: {text: lstm, default: mean}}")))


def test_too_few_bootstrap_resamples_are_refused(write_suite):
    # bootstrap: 5 passed and gave no interval at all, without a word (an interval needs 10 draws)
    e = error_of(write_suite, GOOD + "  bootstrap: 5\n")
    assert e.field == "evaluate.bootstrap" and e.line == 12 and "at least 10" in e.message
    for ok in ("0", "10"):
        assert load_suite(write_suite(GOOD + f"  bootstrap: {ok}\n")).bootstrap == int(ok)


def test_an_empty_list_of_report_formats_is_refused(write_suite):
    # formats: [] passed and wrote markdown, csv and json, the defaults it seemed to turn off
    e = error_of(write_suite, GOOD + "report: {formats: []}\n")
    assert e.field == "report.formats" and e.line == 12 and "non-empty" in e.message


def test_a_repeated_model_label_points_at_the_repeat(write_suite):
    # it pointed at models[0] (line 6), the first of the two, without naming the other
    e = error_of(write_suite, GOOD.replace("label: late", "label: concat"))
    assert e.field == "models[1].label" and e.line == 7 and "(also models[0])" in e.message


def test_synthetic_splits_need_samples(write_suite):
    # n_test: 0 used to validate, then fail every run on a bare torch.cat error; n_train: -3 on numpy's
    e = error_of(write_suite, GOOD.replace("n_test: 10", "n_test: 0"))
    assert e.field == "datasets[0].params.n_test" and e.line == 4 and "must be 1 or more samples" in e.message


def test_compile_takes_true_or_a_torch_compile_mode(write_suite):
    suite = load_suite(write_suite(GOOD.replace("epochs: 2", "epochs: 2, compile: reduce-overhead")))
    assert suite.train["compile"] == "reduce-overhead"
    assert load_suite(write_suite(GOOD.replace("epochs: 2", "epochs: 2, compile: true"))).train["compile"] is True
    e = error_of(write_suite, GOOD.replace("epochs: 2", "epochs: 2, compile: reduce_overhead"))
    assert e.field == "train.compile" and e.line == 9 and "did you mean 'reduce-overhead'" in e.hint
    assert "true or false, or one of 'default', 'reduce-overhead'" in e.message


def test_duplicate_model_without_labels(write_suite):
    e = error_of(write_suite, GOOD.replace("label: concat, ", "").replace("label: late, ", ""))
    assert e.field == "models[0]" and "distinct label" in e.hint


def test_bad_condition(write_suite):
    e = error_of(write_suite, GOOD.replace("{missing: audio}", "{mising: audio}"))
    assert e.field == "evaluate.conditions[1]" and e.line == 11


def test_missing_data_file(write_suite, tmp_path, dummy):
    from mfm_bench import hookimpl
    from mfm_bench.plugins.datasets.synthetic import SyntheticFactors
    from mfm_bench.testing import temporary_plugin

    class FilePlugin:
        @hookimpl
        def register_datasets(self, register):
            register("from-file", lambda path: SyntheticFactors, help="needs a path")

    with temporary_plugin(FilePlugin(), "file-plugin"):
        text = "name: f\ndatasets:\n  - {name: from-file, params: {path: nowhere/data.h5}}\nmodels: [dummy]\n"
        e = error_of(write_suite, text)
        assert (
            e.line == 3 and e.field == "datasets[0].params.path" and "does not exist" in e.message and "fetch" in e.hint
        )
        (tmp_path / "nowhere").mkdir()
        (tmp_path / "nowhere" / "data.h5").write_bytes(b"")
        e = error_of(write_suite, text)  # found relative to the suite file, but empty
        assert e.field == "datasets[0].params.path" and "is empty" in e.message
        (tmp_path / "nowhere" / "data.h5").write_text("root:x:0:0:root:/root:/bin/bash\n")
        assert "not an HDF5 file" in error_of(write_suite, text).message
        (tmp_path / "nowhere" / "data.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
        suite = load_suite(write_suite(text))  # relative to the suite file: found, and resolved for run
        assert suite.datasets[0].params["path"] == str(tmp_path / "nowhere" / "data.h5")


def test_invalid_yaml_and_missing_file(write_suite, tmp_path):
    e = error_of(write_suite, "name: x\ndatasets: [\n")
    assert "not valid YAML" in e.message
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "absent.yaml")


def test_a_dataset_refusing_its_params_is_named_with_its_line(write_suite, tmp_path):
    """A plugin that refuses its params while the conditions are checked against its modalities: the error points
    at that dataset's params line and names it, what was being checked and the fix."""
    import numpy as np

    from mfm_bench.data.prepare import write_tensors

    rng = np.random.default_rng(0)
    folds = {
        s: {
            "acoustic": rng.normal(size=(n, 4, 3)),
            "labels": rng.normal(size=(n, 1)),
            "ids": [f"v{i}" for i in range(n)],
        }
        for s, n in (("train", 6), ("valid", 2), ("test", 2))
    }
    write_tensors(tmp_path / "d.npz", folds, labels="labels", meta={})
    err = error_of(
        write_suite,
        """\
name: t
datasets:
  - {name: tensors, label: good, params: {path: d.npz}}
  - name: tensors
    label: bad
    params: {path: d.npz, modalities: [visual]}
models:
  - {name: supervised, params: {fusion: concat}}
evaluate: {conditions: [clean, {missing: acoustic}]}
""",
    )
    text = str(err)
    assert text.startswith(
        f"{tmp_path / 'suite.yaml'}:6: datasets[1].params: dataset 'bad' (tensors) refused its params"
    )
    assert "modalities ['visual'] are not numeric sequences" in text and "it has ['acoustic']" in text
    assert "cannot tell" not in text and "fix that dataset's params" in text
