"""The mistakes a plugin author makes, each reported in one line naming the plugin, its package and the fix."""

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from mfm_bench import hookimpl
from mfm_bench.config import option
from mfm_bench.registry import PluginError, create_registry, get_registry
from mfm_bench.testing import temporary_plugin


def make_dist(site, dist, module, code, entry):
    """An installed distribution as pip lays it out: the module and its .dist-info with one entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[mfm_bench]\n{entry} = {module}\n")
    (info / "RECORD").write_text("")


CLASHING_FUSION = """
from mfm_bench import hookimpl


@hookimpl
def register_fusions(register):
    register("concat", "aardvark_fusions:Concat", help="my own concat")
"""


def test_a_package_named_before_mfm_bench_cannot_take_a_builtin_name(tmp_path, monkeypatch):
    # third-party distributions used to load before the built-ins when their name sorted first: the clash then
    # cost mfm-bench every built-in fusion, and the message told the user to disable the built-ins
    make_dist(tmp_path, "aardvark-fusions", "aardvark_fusions", CLASHING_FUSION, entry="aard")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = create_registry()
    assert reg.get("fusion", "concat").package == "mfm-bench"
    assert {"late", "tfn", "mult"} <= set(reg.names("fusion"))
    (err,) = [e for e in reg.errors]
    assert err.package == "aardvark-fusions"
    assert "MFM_BENCH_DISABLE_PLUGINS=aard" in err.error and "mfm-bench (plugin fusions)" in err.error


class MisspelledHook:
    @hookimpl
    def register_encoder(self, register):  # missing "s"
        register("x", "m:X")


class MisnamedArgument:
    @hookimpl
    def register_encoders(self, reg):
        reg("x", "m:X")


class ForgotHookimpl:
    def register_models(self, register):
        register("x", "m:X")


@pytest.mark.parametrize(
    "plugin, message",
    [
        (
            MisspelledHook(),
            "implements 'register_encoder', which is not a hook of mfm-bench: did you mean 'register_encoders'?",
        ),
        (
            MisnamedArgument(),
            "register_encoders takes reg, which the hook does not pass (pluggy passes arguments "
            "by name); write it as register_encoders(register)",
        ),
        (ForgotHookimpl(), "defines register_models() without @hookimpl, so mfm-bench never calls it"),
    ],
)
def test_a_hook_mistake_is_one_line_naming_the_plugin_and_the_fix(plugin, message):
    reg = create_registry()
    with pytest.raises(PluginError) as info:
        reg.add_plugin(plugin, "oops", "mfm-bench-oops", "0.1")
    assert str(info.value).startswith("plugin 'oops' (mfm-bench-oops)")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert "oops" not in reg.dists and reg.pm.get_plugin("oops") is None


@dataclass
class StrDefault:
    hidden: int = option("16", "a width written as a string")


class BrokenRefs:
    @hookimpl
    def register_encoders(self, register):
        register("bad-default", "mfm_bench.plugins.encoders.mean:MeanEncoder", config=StrDefault)
        register("no-config", "mfm_bench.plugins.encoders.mean:MeanEncoder", config="mfm_bench.config:NoSuchConfig")
        register("no-module", "mfm_bench_no_such_module:Encoder")


def test_a_config_default_of_the_wrong_type_is_the_plugins_error_not_the_suites():
    with temporary_plugin(BrokenRefs(), "broken-refs", "mfm-bench-broken") as reg:
        with pytest.raises(PluginError) as info:
            reg.resolve("encoder", "bad-default", {})
    assert str(info.value).startswith("encoder 'bad-default' from mfm-bench-broken (plugin broken-refs)")
    assert "gives field 'hidden' the default '16', which does not fit its type int" in str(info.value)
    assert f"{__name__}.StrDefault" in str(info.value)


def test_a_module_attr_that_does_not_load_names_the_plugin_and_the_ref():
    with temporary_plugin(BrokenRefs(), "broken-refs", "mfm-bench-broken") as reg:
        with pytest.raises(
            PluginError,
            match=r"encoder 'no-config' from mfm-bench-broken .*its config "
            r"'mfm_bench.config:NoSuchConfig' cannot be loaded \(AttributeError",
        ):
            reg.resolve("encoder", "no-config", {})
        with pytest.raises(
            PluginError,
            match=r"its factory 'mfm_bench_no_such_module:Encoder' cannot be loaded "
            r"\(ModuleNotFoundError.*register_encoders hook",
        ):
            reg.build("encoder", "no-module", 4)


BROKEN_CONFIG_PLUGIN = """
from mfm_bench import hookimpl


@hookimpl
def register_encoders(register):
    register("half-done", "mfm_bench_half:Encoder", config="mfm_bench_half:NotWrittenYet", help="work in progress")
"""


def test_plugins_params_lists_the_others_and_reports_a_broken_config(tmp_path):
    make_dist(tmp_path, "mfm-bench-half", "mfm_bench_half", BROKEN_CONFIG_PLUGIN, entry="half")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "mfm_bench.cli", "plugins", "--kind", "encoder", "--params"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "encoder mean:" in out.stdout and "encoder lstm:" in out.stdout
    assert (
        "error: encoder 'half-done' from mfm-bench-half (plugin half): its config 'mfm_bench_half:NotWrittenYet' "
        "cannot be loaded" in out.stdout
    )


class Installed:
    @hookimpl
    def register_models(self, register):
        register("installed-model", "m:X", help="a model of an installed package")


def test_temporary_plugin_of_an_installed_module_runs_with_it_and_keeps_it():
    # docs/plugins.md's test_conv.py wraps the installed module in temporary_plugin: that used to raise pluggy's
    # "Plugin already registered under a different name"
    plugin = Installed()
    with temporary_plugin(plugin, "entry-point-name", "mfm-bench-installed"):
        with temporary_plugin(plugin, "under-test") as reg:
            assert reg.get("model", "installed-model").package == "mfm-bench-installed"
        assert get_registry().get("model", "installed-model").plugin == "entry-point-name"
    assert "installed-model" not in get_registry().names("model")


class NoOutputDim:
    def __init__(self, input_dim, cfg):
        self.width = cfg.hidden  # output_dim forgotten


class PoolingTypo:
    input_kind = "pooling"  # for "pooled"

    def __init__(self, input_dims, cfg):
        self.output_dim = cfg.hidden


class SpecLess:
    def __init__(self, cfg):
        pass

    def split(self, name):
        return []


@dataclass
class Width:
    hidden: int = option(4, "width")


class ContractBreakers:
    @hookimpl
    def register_encoders(self, register):
        register("no-output-dim", NoOutputDim, config=Width)

    @hookimpl
    def register_fusions(self, register):
        register("pooling-typo", PoolingTypo, config=Width)

    @hookimpl
    def register_datasets(self, register):
        register("spec-less", SpecLess, config=Width)


@pytest.mark.parametrize(
    "kind, name, args, message",
    [
        (
            "encoder",
            "no-output-dim",
            (3,),
            "built a NoOutputDim, which has no attribute output_dim; set self.output_dim",
        ),
        ("fusion", "pooling-typo", ({"a": 3},), "has input_kind 'pooling'; it must be one of 'pooled', 'sequence'"),
        ("dataset", "spec-less", (), "built a SpecLess, which has spec None; set self.spec to a mfm_bench.contracts"),
    ],
)
def test_a_built_object_that_breaks_its_contract_is_refused_at_build_naming_the_plugin(kind, name, args, message):
    # these used to fail later, in the model or the runner, as an AttributeError or a prediction of the wrong shape
    with temporary_plugin(ContractBreakers(), "breakers", "mfm-bench-breakers") as reg:
        with pytest.raises(PluginError) as info:
            reg.build(kind, name, *args)
    assert str(info.value).startswith(f"{kind} {name!r} from mfm-bench-breakers (plugin breakers): its factory")
    assert message in str(info.value)


def test_every_builtin_encoder_and_fusion_meets_the_build_checks():
    reg = get_registry()
    for name in reg.names("encoder"):
        reg.build("encoder", name, 4 if name != "conv-image" else 3)
    for name in reg.names("fusion"):
        fusion = reg.get("fusion", name).factory
        context = {"out_dim": 1} if getattr(fusion, "predicts", False) else {}
        reg.build("fusion", name, {"a": 4, "b": 4}, context=context)


def test_a_misspelt_load_plugins_name_is_an_error_not_an_empty_registry(monkeypatch):
    # it used to load nothing: `mfm-bench plugins` printed an empty table with exit status 0
    monkeypatch.setenv("MFM_BENCH_LOAD_PLUGINS", "encoders,fusoins")
    with pytest.raises(
        PluginError,
        match=r"MFM_BENCH_LOAD_PLUGINS names 'fusoins', which no installed plugin has "
        r".*did you mean 'fusions'\?",
    ):
        create_registry()


def test_an_unknown_name_under_load_plugins_says_the_switch_is_set(monkeypatch):
    monkeypatch.setenv("MFM_BENCH_LOAD_PLUGINS", "encoders")
    reg = create_registry()
    with pytest.raises(PluginError, match="MFM_BENCH_LOAD_PLUGINS=encoders is set, so only those plugins are loaded"):
        reg.get("model", "supervised")


BROKEN_COMMANDS = """
from mfm_bench import hookimpl


@hookimpl
def register_commands(register):
    register("cmd-missing", "mfm_bench_cmds_cli_not_written", help="its module does not exist")
    register("cmd-half", "mfm_bench_cmds:HALF", help="its target has no run")


class HALF:
    @staticmethod
    def add_arguments(parser):
        pass
"""


@pytest.mark.parametrize(
    "command, message",
    [
        ("cmd-missing", "its target 'mfm_bench_cmds_cli_not_written' cannot be loaded (ModuleNotFoundError"),
        ("cmd-half", "its target 'mfm_bench_cmds:HALF' has no run; define add_arguments(parser) and run(args)"),
    ],
)
def test_a_plugin_command_that_cannot_run_is_one_error_line(tmp_path, command, message):
    # these used to end in a traceback (ModuleNotFoundError, AttributeError) from inside the CLI's parser
    make_dist(tmp_path, "mfm-bench-cmds", "mfm_bench_cmds", BROKEN_COMMANDS, entry="cmds")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for args in ([command], [command, "--help"]):
        out = subprocess.run(
            [sys.executable, "-m", "mfm_bench.cli", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert f"error: command {command!r} from mfm-bench-cmds (plugin cmds): {message}" in out.stderr


def test_an_entry_point_at_a_module_without_hooks_is_reported_not_silently_empty(tmp_path, monkeypatch):
    # e.g. `mypkg = "mypkg"` where the hooks live in mypkg/hooks.py, which mypkg/__init__.py never imports: the
    # package loaded, registered nothing, and `mfm-bench plugins` showed no sign of it
    make_dist(tmp_path, "mfm-bench-empty", "mfm_bench_empty", '"""The hooks are elsewhere."""\n', entry="empty")
    monkeypatch.syspath_prepend(str(tmp_path))
    (err,) = create_registry().errors
    assert err.package == "mfm-bench-empty"
    assert "implements no hook: module mfm_bench_empty has no function marked @hookimpl" in err.error
    assert "point its entry point at the module that defines the hooks" in err.error


FAILS_AT_IMPORT = """from mfm_bench import hookimpl


def width():
    return undefined_name


WIDTH = width()
"""


def test_a_plugin_that_raises_at_import_is_reported_with_its_line_and_debug_prints_the_traceback(tmp_path):
    # the report used to give the exception alone ("NameError: name 'undefined_name' is not defined"), and
    # --debug added nothing: the author could not tell where in the package it failed
    make_dist(tmp_path, "mfm-bench-fails", "mfm_bench_fails", FAILS_AT_IMPORT, entry="fails")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    at = f"(at {tmp_path / 'mfm_bench_fails.py'}:5)"
    for args in (["plugins"], ["--debug", "plugins"]):
        out = subprocess.run(
            [sys.executable, "-m", "mfm_bench.cli", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 1
        assert (
            "error: plugin 'fails' from package mfm-bench-fails failed to load: NameError: name 'undefined_name' "
            f"is not defined {at}" in out.stdout
        )
        assert ("Traceback (most recent call last)" in out.stdout) == (args[0] == "--debug")
    assert 'mfm_bench_fails.py", line 8, in <module>' in out.stdout


class AnotherEncoder:
    @hookimpl
    def register_encoders(self, register):
        register("another-enc", "m:X")


def test_a_taken_plugin_name_is_refused_and_leaves_the_plugin_that_holds_it():
    # the failed registration used to be undone by name: it removed every built-in encoder for the rest of the
    # process, after a bare pluggy "Plugin name already registered"
    reg = get_registry()
    before = reg.names("encoder")
    with pytest.raises(PluginError) as e:
        with temporary_plugin(AnotherEncoder(), "encoders", package="my-encoders"):
            pass
    assert "plugin name 'encoders' (my-encoders) is taken: mfm-bench registered module " in str(e.value)
    assert "give this plugin another name" in str(e.value)
    assert reg.names("encoder") == before and reg.dists["encoders"][0] == "mfm-bench"


CONV_A = """
from mfm_bench import hookimpl


@hookimpl
def register_encoders(register):
    register("conv-a", "conv_a:Conv")
"""


def test_two_distributions_with_one_entry_point_name_keep_the_first(tmp_path, monkeypatch):
    make_dist(tmp_path, "mfm-bench-conv-a", "conv_a", CONV_A, entry="conv")
    make_dist(tmp_path, "mfm-bench-conv-b", "conv_b", CONV_A.replace("conv-a", "conv-b"), entry="conv")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = create_registry()
    assert reg.get("encoder", "conv-a").package == "mfm-bench-conv-a"
    assert "lstm" in reg.names("encoder") and "conv-b" not in reg.names("encoder")
    (err,) = reg.errors
    assert err.package == "mfm-bench-conv-b" and "plugin name 'conv' (mfm-bench-conv-b) is taken" in err.error


class TypoFactory:
    @hookimpl
    def register_encoders(self, register):
        register(
            "typo-mean",
            "mfm_bench.plugins.encoders.mean:MeanEncodr",
            config="mfm_bench.plugins.encoders.configs:MeanConfig",
        )


def test_plugins_params_reports_a_factory_that_cannot_be_found(capsys):
    # --params loaded only configs: a misspelt factory was listed with its params and found only by a run
    from mfm_bench.cli import main

    with temporary_plugin(TypoFactory(), "typo-factory", "mfm-bench-typo"):
        assert main(["plugins", "--kind", "encoder", "--params"]) == 1
    out = capsys.readouterr().out
    assert "encoder typo-mean: its factory cannot be found, see the error below" in out
    assert "encoder lstm:" in out
    assert (
        "error: encoder 'typo-mean' from mfm-bench-typo (plugin typo-factory): its factory "
        "'mfm_bench.plugins.encoders.mean:MeanEncodr' cannot be loaded (module mfm_bench.plugins.encoders.mean "
    ) in out
    assert "defines no 'MeanEncodr'; did you mean 'MeanEncoder'?" in out


@dataclass
class InstanceWidth:
    hidden: int = option(4, "width")


class ConfigInstance:
    @hookimpl
    def register_encoders(self, register):
        register("config-instance", "m:X", config=InstanceWidth())


class ConfigInstanceRef:
    @hookimpl
    def register_encoders(self, register):
        register("config-instance-ref", "m:X", config=f"{__name__}:INSTANCE")


INSTANCE = InstanceWidth()


def test_a_config_given_as_an_instance_is_refused_with_the_fix():
    # config=MyConfig() passed registration as "a dataclass" and failed at first use on "'InstanceWidth' object
    # has no attribute '__name__'"
    with pytest.raises(PluginError) as e:
        with temporary_plugin(ConfigInstance(), "instance-under-test", package="my-encoders"):
            pass
    assert "encoder 'config-instance' from my-encoders (plugin instance-under-test): config must be a dataclass, " in (
        str(e.value)
    )
    assert "not InstanceWidth(hidden=4); pass the class, config=InstanceWidth" in str(e.value)
    with temporary_plugin(ConfigInstanceRef(), "instance-ref-under-test") as reg:
        with pytest.raises(PluginError, match=r"is InstanceWidth\(hidden=4\), not a dataclass; name the config"):
            reg.resolve("encoder", "config-instance-ref", {})


class OneArgEncoder:
    def __init__(self, cfg):  # forgot input_dim
        self.output_dim = cfg.hidden


class OneArg:
    @hookimpl
    def register_encoders(self, register):
        register("one-arg", OneArgEncoder, config=InstanceWidth)


def test_a_typed_factory_that_cannot_take_the_registrys_call_names_the_contract():
    # a bare "OneArgEncoder.__init__() takes 2 positional arguments but 3 were given" from inside a model
    with temporary_plugin(OneArg(), "one-arg-under-test", package="my-encoders") as reg:
        with pytest.raises(PluginError) as e:
            reg.build("encoder", "one-arg", 5)
    assert str(e.value).startswith(
        "encoder 'one-arg' from my-encoders (plugin one-arg-under-test): its factory OneArgEncoder(cfg) cannot be "
        "called as factory(input_dim, cfg), as the registry calls it (too many positional arguments)"
    )
