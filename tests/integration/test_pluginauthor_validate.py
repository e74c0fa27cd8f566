"""`mfm-bench validate` refuses, before any training, a suite whose plugins break their registration or their
contract: a lazy "module:attr" factory that names nothing, a dataset without describe(cfg)."""

import sys
import textwrap

import pytest

from mfm_bench import hookimpl
from mfm_bench.cli import main
from mfm_bench.suite import SuiteError, load_suite
from mfm_bench.testing import temporary_plugin

SUITE = """\
name: t
datasets:
  - {name: synthetic-factors, params: {n_train: 16, n_valid: 8, n_test: 8}}
models:
  - {name: MODEL, params: PARAMS}
train: {epochs: 1, device: cpu}
"""


@pytest.fixture
def broken_module(tmp_path, monkeypatch):
    """A plugin module that defines SupervisedModel and fails if anything imports it."""
    (tmp_path / "broken_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            raise RuntimeError("imported")


            class SupervisedModel:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "broken_plugin_mod"
    sys.modules.pop("broken_plugin_mod", None)


class WrongRefs:
    @hookimpl
    def register_models(self, register):
        register("typo-model", "broken_plugin_mod:SupervisedModle")
        register("no-module", "no_such_plugin_pkg.models:Model")

    @hookimpl
    def register_encoders(self, register):
        register("typo-encoder", "broken_plugin_mod:Encodr")

    @hookimpl
    def register_fusions(self, register):
        register("typo-fusion", "broken_plugin_mod:Fusio")


@pytest.mark.parametrize(
    ("model", "params", "field", "message"),
    [
        (
            "typo-model",
            "{}",
            "models[0].name",
            "model 'typo-model' from my-plugins (plugin refs-under-test): its factory "
            "'broken_plugin_mod:SupervisedModle' cannot be loaded (module broken_plugin_mod (",
        ),
        (
            "no-module",
            "{}",
            "models[0].name",
            "cannot be loaded (ModuleNotFoundError: No module named 'no_such_plugin_pkg')",
        ),
        (
            "supervised",
            "{encoder: typo-encoder}",
            "models[0].params.encoder",
            "model 'supervised' uses encoder 'typo-encoder': encoder 'typo-encoder' from my-plugins",
        ),
    ],
)
def test_a_factory_that_cannot_be_found_is_refused_before_training(
    write_suite, broken_module, capsys, model, params, field, message
):
    # a wrong "module:attr" used to pass validate and fail every run of the suite at build
    path = write_suite(SUITE.replace("MODEL", model).replace("PARAMS", params))
    with temporary_plugin(WrongRefs(), "refs-under-test", package="my-plugins"):
        assert main(["validate", str(path)]) == 1
        with pytest.raises(SuiteError) as e:
            load_suite(path)  # run refuses it as well
    err = capsys.readouterr().err
    assert f"{path}:5: {field}: " in err and message in err, err
    assert 'fix the "module:attr" given to register()' in err
    assert e.value.field == field
    assert "broken_plugin_mod" not in sys.modules  # found without importing it


def test_a_misspelt_attribute_gets_did_you_mean(write_suite, broken_module, capsys):
    path = write_suite(SUITE.replace("MODEL", "typo-model").replace("PARAMS", "{}"))
    with temporary_plugin(WrongRefs(), "refs-under-test"):
        assert main(["validate", str(path)]) == 1
    assert "defines no 'SupervisedModle'; did you mean 'SupervisedModel'?" in capsys.readouterr().err


class Describeless:
    def __init__(self, cfg):
        from mfm_bench.registry import get_registry

        real = get_registry().build("dataset", "synthetic-factors", n_train=16, n_valid=8, n_test=8)
        self.spec, self.split = real.spec, real.split


class NoDescribe:
    @hookimpl
    def register_datasets(self, register):
        register("no-describe", Describeless)


def test_a_dataset_without_describe_is_refused_by_validate(write_suite, capsys, dummy):
    path = write_suite("name: t\ndatasets: [no-describe]\nmodels: [dummy]\n")
    with temporary_plugin(NoDescribe(), "describe-under-test", package="my-data"):
        assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: datasets[0]: dataset 'no-describe' from my-data (plugin describe-under-test)" in err
    assert "has no describe(cfg)" in err and "add a classmethod describe(cls, cfg) -> DatasetSpec" in err


def test_builtin_suites_still_validate(capsys):
    from pathlib import Path

    suites = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "suites").glob("*.yaml"))
    assert main(["validate", *suites]) == 0, capsys.readouterr().err


def test_a_search_choice_whose_factory_cannot_be_found_is_refused(write_suite, broken_module, capsys):
    # only the trials that drew it would have failed
    pytest.importorskip("optuna")
    text = SUITE.replace("  - {name: MODEL, params: PARAMS}\n", "").replace(
        "models:\n",
        "models:\n  - name: supervised\n    search:\n      params:\n        fusion: {choices: [concat, typo-fusion]}\n"
        "      n_trials: 2\n",
    )
    path = write_suite(text)
    with temporary_plugin(WrongRefs(), "refs-under-test", package="my-plugins"):
        assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:8: models[0].search.params.fusion: model 'supervised' may choose fusion 'typo-fusion': " in err
    assert "its factory 'broken_plugin_mod:Fusio' cannot be loaded" in err


class DescribesNothing(Describeless):
    @classmethod
    def describe(cls, cfg):
        return None  # forgot the return


class BadDescribe:
    @hookimpl
    def register_datasets(self, register):
        register("describes-nothing", DescribesNothing)


@pytest.mark.parametrize("conditions", ["", "evaluate: {conditions: [clean, {missing: text}]}\n"])
def test_a_describe_that_returns_no_spec_names_the_dataset(write_suite, capsys, conditions):
    # validate used to end on "AttributeError: 'NoneType' object has no attribute 'modality_names'" (a traceback)
    path = write_suite("name: t\ndatasets: [describes-nothing]\nmodels: [supervised]\n" + conditions)
    with temporary_plugin(BadDescribe(), "describe-under-test", package="my-data"):
        assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "dataset 'describes-nothing' from my-data (plugin describe-under-test): its factory's describe(cfg) " in err
    assert "returned NoneType, not a mfm_bench.contracts.DatasetSpec" in err
