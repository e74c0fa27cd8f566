"""The plugin manager: built-ins and third-party packages, all found through the ``mfm_bench`` entry-point group.

- ``get_registry()`` builds it once: loads every entry point (a failing one is recorded with its package and
  exception, and the others still load), checks hook names (``check_pending``), then calls the ``register_*``
  hooks with a registrar that refuses duplicate names.
- ``MFM_BENCH_LOAD_PLUGINS=a,b`` loads only those entry points (by entry-point or distribution name);
  ``MFM_BENCH_DISABLE_PLUGINS=x,y`` skips those.
- ``registry.build(kind, name, *args, context=None, **params)`` validates params against the plugin's config and
  builds it; ``context`` holds extra keywords the caller hands to the factory (e.g. a predicting fusion's ``out_dim``).
- Nested plugins are config fields marked with :func:`mfm_bench.config.plugin`; ``resolve`` fills their defaults.
- ``registry.commands`` holds the subcommands plugins add through ``register_commands`` (imported lazily).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata as md
import inspect
import os
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .config import ConfigError, build_config, check_type, closest, config_to_dict, did_you_mean, nested_plugins
from .errors import MfmBenchError

KINDS = ("encoder", "fusion", "dataset", "model")
_HOOKS = {
    "encoder": "register_encoders",
    "fusion": "register_fusions",
    "dataset": "register_datasets",
    "model": "register_models",
}


class PluginError(MfmBenchError, LookupError):
    """An unknown plugin name, a duplicate registration or a plugin that failed to load."""


class FactoryCallError(PluginError, TypeError):
    """A typed factory whose signature cannot take the registry's call (``factory(input_dim, cfg)``...)."""


def _load_ref(ref: Any) -> Any:
    """``"package.module:attr"`` -> the object; anything else is returned as it is."""
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
        return obj
    return ref


def _top_level_names(tree: Any) -> set[str] | None:
    """The names a module's source binds at its top level (inside ``if``/``try`` too); None when it may bind
    others that the source does not spell (``from x import *``, a module ``__getattr__``)."""
    import ast

    names: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)) or type(node).__name__ == "TryStar":
            for part in ("body", "orelse", "finalbody"):
                todo.extend(getattr(node, part, []))
            for handler in getattr(node, "handlers", []):
                todo.extend(handler.body)
    return names


def ref_problem(ref: Any) -> str:
    """Why ``"package.module:attr"`` names nothing, found without running the module (so a suite is checked
    without importing torch): its module does not exist, or its source binds no ``attr``. ``""`` when it is found,
    when it is not a string, or when only importing it could tell (an extension module, a ``__getattr__``)."""
    import importlib.util
    import sys

    if not isinstance(ref, str):
        return ""
    module, _, attr = ref.partition(":")
    top = attr.split(".")[0] if attr else ""
    if module in sys.modules:
        mod = sys.modules[module]
        if not top or hasattr(mod, top):
            return ""
        close = closest(top, sorted(n for n in dir(mod) if not n.startswith("_")))
        return f"module {module} defines no {top!r}" + (f"; did you mean {close!r}?" if close else "")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:  # a parent package that is missing or fails to import
        return f"{type(e).__name__}: {e}"
    if spec is None:
        return f"no module named {module!r}"
    if not top or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    try:
        import ast

        with open(spec.origin, encoding="utf-8") as f:
            names = _top_level_names(ast.parse(f.read(), spec.origin))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ""  # importing it will say what is wrong
    if names is None or top in names:
        return ""
    close = closest(top, sorted(n for n in names if not n.startswith("_")))
    return f"module {module} ({spec.origin}) defines no {top!r}" + (f"; did you mean {close!r}?" if close else "")


@dataclass
class Entry:
    """One registered plugin. ``factory`` and ``config`` may be given as ``"module:attr"`` strings and are then
    imported on first use, so listing plugins never imports torch."""

    kind: str
    name: str
    factory_ref: Any
    config_ref: Any
    help: str
    plugin: str  # the entry point / plugin name that registered it
    package: str  # distribution name
    version: str

    _checked: Any = field(default=None, repr=False, compare=False)  # the config class whose defaults were checked

    def _unloadable(self, what: str, ref: Any, why: str) -> PluginError:
        return PluginError(
            f"{self.kind} {self.name!r} from {self.package} (plugin {self.plugin}): its {what} {ref!r} cannot be "
            f'loaded ({why}); fix the "module:attr" given to register() in its {_HOOKS[self.kind]} hook, or install '
            "what that module imports"
        )

    def _load(self, what: str, ref: Any) -> Any:
        try:
            return _load_ref(ref)
        except (ImportError, AttributeError) as e:
            raise self._unloadable(what, ref, f"{type(e).__name__}: {e}") from e

    def check_factory(self) -> None:
        """Raise the error :attr:`factory` would, for a ``"module:attr"`` factory whose module does not exist or
        does not define it, without importing the module (:func:`ref_problem`)."""
        why = ref_problem(self.factory_ref)
        if why:
            raise self._unloadable("factory", self.factory_ref, why)

    @property
    def factory(self) -> Callable[..., Any]:
        return self._load("factory", self.factory_ref)

    @property
    def config(self) -> type | None:
        cls = self._load("config", self.config_ref)
        if cls is not None and cls is not self._checked:
            if not _is_dataclass_type(cls):
                raise PluginError(
                    f"{self.kind} {self.name!r} from {self.package} (plugin {self.plugin}): its config "
                    f"{self.config_ref!r} is {cls!r}, not a dataclass; name the config dataclass"
                )
            _check_defaults(self, cls)
            self._checked = cls
        return cls


def _is_dataclass_type(obj: Any) -> bool:
    """A dataclass itself, not one of its instances (``config=MyConfig``, not ``config=MyConfig()``)."""
    return isinstance(obj, type) and dataclasses.is_dataclass(obj)


def _check_defaults(entry: Entry, cls: type) -> None:
    """Refuse a config whose own defaults do not fit their fields' types (``hidden: int = option("16", ...)``):
    the run would fail on them blaming a param the user never set. The defaults are read as a run config holds
    them, after ``__post_init__`` (which may fill a sentinel from a preset); a config with required fields is
    left to the suite."""
    where = f"{entry.kind} {entry.name!r} from {entry.package} (plugin {entry.plugin}): its config {cls.__name__}"
    try:
        hints = typing.get_type_hints(cls)
    except Exception as e:  # noqa: BLE001 - an annotation that names something the module does not import
        raise PluginError(f"{where} has a type annotation that cannot be read ({type(e).__name__}: {e})") from e
    try:
        defaults = config_to_dict(cls())
    except Exception:  # noqa: BLE001 - required fields, or a check that needs params: the suite's params decide
        return
    for name, default in defaults.items():
        try:
            check_type(default, hints.get(name, Any), name)
        except ConfigError as e:
            raise PluginError(
                f"{where} gives field {name!r} the default {default!r}, which does not fit its type "
                f"{_type_text(hints.get(name, Any))} ({e.message}); fix the default or the annotation in "
                f"{cls.__module__}.{cls.__qualname__}"
            ) from None


INPUT_KINDS = ("pooled", "sequence", "raw")


def _check_built(entry: Entry, built: Any) -> None:
    """What the contract of ``entry.kind`` asks of the built object and costs nothing to check (docs/plugins.md,
    "The contracts"): without it the first model that uses the object fails later on an attribute or a shape,
    naming neither the plugin nor the contract."""
    problem = ""
    if entry.kind in ("encoder", "fusion"):
        dim = getattr(built, "output_dim", None)
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            problem = (
                f"has output_dim {dim!r}; set self.output_dim to the width H of its output in __init__"
                if hasattr(built, "output_dim")
                else "has no attribute output_dim; set self.output_dim to the width H of its output in __init__"
            )
        kind = getattr(built, "input_kind", "pooled")
        if entry.kind == "fusion" and kind not in INPUT_KINDS:
            problem = f"has input_kind {kind!r}; it must be one of {', '.join(map(repr, INPUT_KINDS))}"
    elif entry.kind == "dataset":
        from .contracts import DatasetSpec

        if not isinstance(getattr(built, "spec", None), DatasetSpec):
            problem = f"has spec {getattr(built, 'spec', None)!r}; set self.spec to a mfm_bench.contracts.DatasetSpec"
        elif not callable(getattr(built, "split", None)):
            problem = "has no method split(name); it returns the named split (a TensorSplit or a torch Dataset)"
    if problem:
        raise PluginError(
            f"{entry.kind} {entry.name!r} from {entry.package} (plugin {entry.plugin}): its factory built a "
            f"{type(built).__name__}, which {problem} (the {entry.kind} contract, docs/plugins.md)"
        )


#: how the registry calls each kind's factory, for messages (docs/plugins.md, "The contracts")
CALLS = {
    "encoder": "factory(input_dim, cfg)",
    "fusion": "factory(input_dims, cfg)",
    "dataset": "factory(cfg)",
    "model": "factory(spec, cfg)",
}


def _check_signature(entry: Entry, factory: Any, args: tuple, kwargs: dict[str, Any]) -> None:
    """Refuse, naming the plugin and its contract, a typed factory whose signature cannot take the registry's call
    (``__init__(self, cfg)`` for an encoder, which is given the input dim first): otherwise a bare TypeError
    from inside the model that builds it. Untyped factories (their params are the suite's, unvalidated) and
    signatures that cannot be read are left to the call."""
    if entry.config is None:
        return
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:  # partial: an argument the caller left out (a predicting fusion's out_dim) is the call's own TypeError
        sig.bind_partial(*args, **kwargs)
    except TypeError as e:
        extra = f" (and the keywords {', '.join(sorted(kwargs))})" if kwargs else ""
        raise FactoryCallError(
            f"{entry.kind} {entry.name!r} from {entry.package} (plugin {entry.plugin}): its factory "
            f"{getattr(factory, '__qualname__', factory)}{sig} cannot be called as {CALLS[entry.kind]}{extra}, "
            f"as the registry calls it ({e}); take the arguments of the {entry.kind} contract (docs/plugins.md, "
            '"The contracts")'
        ) from None


def _type_text(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


@dataclass
class Command:
    """A subcommand added by a plugin. ``target`` (``"package.module"`` or ``"package.module:attr"``) holds
    ``add_arguments(parser)`` and ``run(args) -> int`` and is imported only when the command is parsed."""

    name: str
    target: Any
    help: str
    plugin: str
    package: str
    version: str

    @property
    def module(self) -> Any:
        who = f"command {self.name!r} from {self.package} (plugin {self.plugin})"
        try:
            mod = _load_ref(self.target)
        except (ImportError, AttributeError) as e:
            raise PluginError(
                f"{who}: its target {self.target!r} cannot be loaded ({type(e).__name__}: {e}); fix the "
                '"package.module" or "package.module:attr" given to register() in its register_commands hook, '
                "or install what that module imports"
            ) from e
        lacking = [f for f in ("add_arguments", "run") if not callable(getattr(mod, f, None))]
        if lacking:
            raise PluginError(
                f"{who}: its target {self.target!r} has no {' and no '.join(lacking)}; define "
                "add_arguments(parser) and run(args) -> int there"
            )
        return mod


def _duplicate(what: str, taken: Any, package: str, plugin: str) -> PluginError:
    return PluginError(
        f"{what} is registered twice: by {taken.package} (plugin {taken.plugin}) and by {package} (plugin {plugin}); "
        f"uninstall one or disable it with MFM_BENCH_DISABLE_PLUGINS={plugin}"
    )


def _hook_specs() -> dict[str, list[str]]:
    """Every hook of :mod:`mfm_bench.hookspecs` -> its argument names."""
    return {
        n: list(inspect.signature(f).parameters)
        for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(f, f"{hookspecs.PROJECT}_spec")
    }


def _check_hooks(obj: Any, plugin: str, package: str) -> None:
    """The mistakes pluggy would report in a paragraph, or not at all, as one line each: a misspelled hook
    (``register_encoder``), a hook whose argument is misnamed (``register_encoders(reg)``), and a hook
    function without ``@hookimpl``, which pluggy silently never calls."""
    specs = _hook_specs()
    who = f"plugin {plugin!r} ({package})"
    implemented = 0
    for attr in dir(obj):
        try:
            fn = getattr(obj, attr)
        except Exception:  # noqa: BLE001 - an attribute that cannot be read is no hook
            continue
        opts = getattr(fn, f"{hookspecs.PROJECT}_impl", None)
        if opts is None:
            if attr in specs and callable(fn) and not hasattr(fn, f"{hookspecs.PROJECT}_spec"):
                raise PluginError(
                    f"{who} defines {attr}() without @hookimpl, so mfm-bench never calls it; decorate it: "
                    f"`from mfm_bench import hookimpl` and `@hookimpl` above `def {attr}`"
                )
            continue
        implemented += 1
        hook = (opts.get("specname") if isinstance(opts, dict) else None) or attr
        if hook not in specs:
            raise PluginError(
                f"{who} implements {hook!r}, which is not a hook of mfm-bench: {did_you_mean(hook, specs)}"
            )
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            continue
        required = [
            p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)
        ]
        unknown = [a for a in required if a not in specs[hook]]
        if unknown:
            raise PluginError(
                f"{who}: {hook} takes {', '.join(unknown)}, which the hook does not pass (pluggy passes arguments by "
                f"name); write it as {hook}({', '.join(specs[hook])})"
            )
    if not implemented:
        what = f"module {obj.__name__}" if inspect.ismodule(obj) else f"the {type(obj).__name__} object"
        raise PluginError(
            f"{who} implements no hook: {what} has no function marked @hookimpl, so it would add nothing; point "
            "its entry point at the module that defines the hooks (a package's __init__ must import them)"
        )


@dataclass
class LoadError:
    plugin: str
    package: str
    error: str
    traceback: str = ""  # the whole traceback, which ``mfm-bench --debug plugins`` prints


def _where(e: BaseException) -> str:
    """`` (at FILE:LINE)``: the innermost line of the traceback outside Python's import machinery, pluggy and
    this module, which for a plugin is the line of its own code that failed."""
    skip = (os.path.dirname(importlib.__file__), os.path.dirname(pluggy.__file__), __file__)
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<frozen")]
    frames = [f for f in frames if not f.filename.startswith(skip)]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


@dataclass
class Registry:
    pm: pluggy.PluginManager
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    errors: list[LoadError] = field(default_factory=list)
    dists: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin name -> (package, version)
    commands: dict[str, Command] = field(default_factory=dict)

    # -- registration ---------------------------------------------------------------------------------
    def _registrar(self, kind: str, plugin: str) -> Callable[..., None]:
        package, version = self.dists.get(plugin, (plugin, ""))

        def register(name: str, factory: Any, config: Any = None, help: str = "") -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin!r} ({package}) registered a {kind} with an invalid name {name!r}")
            if config is not None and not isinstance(config, str) and not _is_dataclass_type(config):
                raise PluginError(
                    f"{kind} {name!r} from {package} (plugin {plugin}): config must be a dataclass, not {config!r}"
                    + (f"; pass the class, config={type(config).__name__}" if dataclasses.is_dataclass(config) else "")
                )
            taken = self.entries[kind].get(name)
            if taken is not None:
                raise _duplicate(f"{kind} {name!r}", taken, package, plugin)
            doc = help or ("" if isinstance(factory, str) else (factory.__doc__ or "").strip().split("\n")[0])
            self.entries[kind][name] = Entry(kind, name, factory, config, doc, plugin, package, version)

        return register

    def _command_registrar(self, plugin: str) -> Callable[..., None]:
        package, version = self.dists.get(plugin, (plugin, ""))

        def register(name: str, target: Any, help: str = "") -> None:
            if not isinstance(name, str) or not name or name.startswith("-"):
                raise PluginError(f"plugin {plugin!r} ({package}) registered a command with an invalid name {name!r}")
            if not help:
                raise PluginError(
                    f'command {name!r} from {package}: give help="one line" (mfm-bench --help shows '
                    "it without importing the command)"
                )
            if name in self.commands:
                raise _duplicate(f"command {name!r}", self.commands[name], package, plugin)
            self.commands[name] = Command(name, target, help, plugin, package, version)

        return register

    def _hooks(self, plugin: str) -> list[tuple[str, Callable[..., None]]]:
        return [(_HOOKS[k], self._registrar(k, plugin)) for k in KINDS] + [
            ("register_commands", self._command_registrar(plugin))
        ]

    def add_plugin(self, obj: Any, name: str, package: str | None = None, version: str = "") -> None:
        """Register a plugin object (module or class instance with hookimpls) and run its register hooks."""
        taken = self.pm.get_plugin(name)
        if taken is not None or name in self.dists:  # undoing this registration must not remove the other one
            owner = self.dists.get(name, (name, ""))[0]
            what = f"module {taken.__name__}" if inspect.ismodule(taken) else f"a {type(taken).__name__} object"
            raise PluginError(
                f"plugin name {name!r} ({package or name}) is taken: {owner} registered {what} under it; give this "
                "plugin another name (its entry-point name, or temporary_plugin's second argument)"
            )
        self.dists[name] = (package or name, version)
        try:
            _check_hooks(obj, name, package or name)
            self.pm.register(obj, name=name)
            self.pm.check_pending()
            for hook_name, registrar in self._hooks(name):
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name == name:
                        impl.function(register=registrar)
        except BaseException:
            self.remove_plugin(name)  # all or nothing: no half-registered plugin
            raise

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and every name it added (used by ``mfm_bench.testing``)."""
        for kind in KINDS:
            for key in [k for k, e in self.entries[kind].items() if e.plugin == name]:
                del self.entries[kind][key]
        for key in [k for k, c in self.commands.items() if c.plugin == name]:
            del self.commands[key]
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.dists.pop(name, None)

    # -- lookup ---------------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        if kind not in self.entries:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        try:
            return self.entries[kind][name]
        except KeyError:
            broken = [e for e in self.errors]
            extra = ""
            if broken:
                extra = "; note that these plugins failed to load: " + ", ".join(
                    f"{e.plugin} ({e.package})" for e in broken
                )
            for var, effect in (("MFM_BENCH_LOAD_PLUGINS", "only those"), ("MFM_BENCH_DISABLE_PLUGINS", "not those")):
                if _split_env(var):
                    extra += f"; {var}={os.environ[var].strip()} is set, so {effect} plugins are loaded"
            raise PluginError(
                f"unknown {kind} {name!r}: {did_you_mean(str(name), self.entries[kind])}{extra}"
            ) from None

    def resolve(self, kind: str, name: str, params: dict[str, Any] | None, where: str = "params") -> dict[str, Any]:
        """Validated params with every default filled in, nested plugins' params too (see :meth:`_resolve_nested`)."""
        entry = self.get(kind, name)
        if entry.config is None:
            return dict(params or {})
        out = config_to_dict(build_config(entry.config, self.own_params(entry, params), where))
        for fname, nested_kind, pname in nested_plugins(entry.config):
            out[pname] = self._resolve_nested(nested_kind, out[fname], out.get(pname), where, fname, pname)
        return out

    def _resolve_nested(self, kind: str, names: Any, params: Any, where: str, fname: str, pname: str) -> dict[str, Any]:
        """A name -> its resolved params; a mapping ``{modality: name}`` -> ``{name: resolved params}`` for every
        distinct name (each plugin keeps its own defaults; :meth:`own_params` picks them back out at build time)."""
        chosen = [names] if not isinstance(names, dict) else list(dict.fromkeys(names.values()))
        resolved = {}
        for n in chosen:
            try:
                entry = self.get(kind, n)
            except PluginError as e:
                raise ConfigError(str(e), f"{where}.{fname}") from None
            sub = f"{where}.{pname}.{n}" if self._per_name(entry, params) else f"{where}.{pname}"
            resolved[n] = self.resolve(kind, n, self.own_params(entry, params), sub)
        return resolved[names] if not isinstance(names, dict) else resolved

    def own_params(self, entry: Entry, params: dict[str, Any] | None) -> dict[str, Any]:
        """``entry``'s params out of ``params``: either params shared by every plugin of a nested field
        (``{hidden: 16}``), or a mapping plugin name -> params (``{gru: {...}, lstm: {...}}``, what ``resolve``
        writes for a mapping of names), told apart by its keys: registered names of the kind, none a config field."""
        params = dict(params or {})
        return dict(params.get(entry.name, {})) if self._per_name(entry, params) else params

    def _per_name(self, entry: Entry, params: dict[str, Any] | None) -> bool:
        fields = {f.name for f in dataclasses.fields(entry.config)} if entry.config else set()
        return bool(params) and all(
            k in self.entries[entry.kind] and k not in fields and isinstance(v, dict) for k, v in params.items()
        )

    def build(self, kind: str, name: str, *args: Any, context: dict[str, Any] | None = None, **params: Any) -> Any:
        """Build plugin ``name`` of ``kind``: ``factory(*args, cfg, **context)`` (typed) or
        ``factory(*args, **params, **context)``. ``context`` carries what the caller knows and the suite does not
        set, e.g. ``out_dim`` for a fusion whose class says ``predicts = True``."""
        entry = self.get(kind, name)
        params = self.own_params(entry, params)
        factory = entry.factory
        if entry.config is None:
            call_args, call_kwargs = args, {**params, **(context or {})}
        else:
            call_args, call_kwargs = (*args, build_config(entry.config, params)), dict(context or {})
        _check_signature(entry, factory, call_args, call_kwargs)
        built = factory(*call_args, **call_kwargs)
        _check_built(entry, built)
        try:  # errors about what the object does later (a model's forward) name the plugin that built it
            built.mfm_bench_plugin = f"{kind} {name!r} from {entry.package} (plugin {entry.plugin})"
        except Exception:  # noqa: BLE001, S110 - an object that takes no attributes is only named by its class
            pass
        return built

    def config_of(self, kind: str, name: str, params: dict[str, Any] | None) -> Any:
        entry = self.get(kind, name)
        params = self.own_params(entry, params)
        return build_config(entry.config, params) if entry.config else params


def _wanted(ep: md.EntryPoint, load: set[str] | None, disable: set[str]) -> bool:
    dist = ep.dist.name if ep.dist else ""
    if ep.name in disable or dist in disable:
        return False
    return load is None or ep.name in load or dist in load


def _split_env(var: str) -> set[str] | None:
    raw = os.environ.get(var, "").strip()
    return {x.strip() for x in raw.split(",") if x.strip()} if raw else None


def _load_order(ep: md.EntryPoint) -> tuple[bool, str, str]:
    module = ep.value.partition(":")[0]
    builtin = module == "mfm_bench" or module.startswith("mfm_bench.")
    return (not builtin, ep.dist.name if ep.dist else "", ep.name)


def create_registry() -> Registry:
    """A fresh registry with every installed plugin loaded (see module docstring)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    reg = Registry(pm)
    load = _split_env("MFM_BENCH_LOAD_PLUGINS")
    disable = _split_env("MFM_BENCH_DISABLE_PLUGINS") or set()
    found = md.entry_points(group=hookspecs.PROJECT)
    if load is not None:  # a misspelt name would load nothing and say nothing: every name then looks unknown
        known = {ep.name for ep in found} | {ep.dist.name for ep in found if ep.dist}
        unknown = sorted(load - known)
        if unknown:
            raise PluginError(
                f"MFM_BENCH_LOAD_PLUGINS names {', '.join(map(repr, unknown))}, which no installed plugin has (an "
                f"entry-point or distribution name): {did_you_mean(unknown[0], known)}; unset it to load every plugin"
            )
    seen: set[tuple[str, str]] = set()
    # the built-ins first, whatever a third-party distribution is called: a name clash then costs the third-party
    # plugin its registration, never every built-in of a kind
    for ep in sorted(found, key=_load_order):
        key = (ep.name, ep.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        if not _wanted(ep, load, disable):
            continue
        package = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else ""
        try:
            obj = ep.load()
            reg.add_plugin(obj, ep.name, package, version)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not take the others down
            trace = "".join(traceback.format_exception(e))
            reg.errors.append(LoadError(ep.name, package, f"{type(e).__name__}: {e}{_where(e)}", trace))
    return reg


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = create_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the process-wide registry (the next ``get_registry`` rediscovers entry points)."""
    global _REGISTRY
    _REGISTRY = None


__all__ = [
    "Registry",
    "Entry",
    "Command",
    "PluginError",
    "ConfigError",
    "get_registry",
    "create_registry",
    "reset_registry",
    "KINDS",
]
