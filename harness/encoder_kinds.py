"""Which modality kinds (sequence, vector, image) each encoder reads, checked before any data is read.

An encoder declares the kinds it reads as ``modality_kinds``, a class attribute of its config dataclass (which
``mfm-bench validate`` imports without torch); an encoder that declares none is not checked. A model config names
its encoders in :func:`mfm_bench.config.plugin` fields of kind ``encoder`` (a name, or ``{modality: name,
default: name}``). :func:`check_model` is called by ``validate`` for every (dataset, model) pair whose
modalities the dataset can describe without reading data, and by a model at build, so an image given to an
LSTM stops there with the fix, never inside ``forward``.
"""

from __future__ import annotations

from typing import Any

from .config import nested_plugins, per_modality
from .errors import MfmBenchError

#: how each kind is spelled in messages
SHAPES = {"image": "an image [C, H, W]", "vector": "a vector [D]", "sequence": "a sequence [T, D]"}
#: the built-in encoder to suggest for each kind
SUGGESTED = {"image": "conv-image", "vector": "mean", "sequence": "lstm"}


class EncoderKindError(MfmBenchError, ValueError):
    """An encoder chosen for a modality whose kind it cannot read."""


def encoder_kinds(reg: Any, name: str) -> tuple[str, ...] | None:
    """The kinds encoder ``name`` reads; None when it declares none (or is unknown: the registry reports that)."""
    try:
        config = reg.get("encoder", name).config
    except LookupError:
        return None
    return getattr(config, "modality_kinds", None)


def describe_modality(mod: Any) -> str:
    """``an image [C, H, W] = [1, 8, 8]``: the kind, and the sample shape when the dataset gives it."""
    shape = getattr(mod, "shape", ()) or ()
    return SHAPES[mod.kind] + (f" = [{', '.join(map(str, shape))}]" if shape else f" (dim {mod.dim})")


def problem(reg: Any, spec: Any, model: str, field: str, value: Any) -> str | None:
    """Why encoder setting ``value`` (of field ``field`` of model ``model``) cannot read ``spec``'s modalities,
    or None when every modality's encoder declares its kind (or declares nothing)."""
    for mod in spec.modalities:
        try:
            name = per_modality(value, mod.name, field)
        except ValueError:
            return None  # a mapping without this modality: the model's own error names it
        kinds = encoder_kinds(reg, str(name)) if isinstance(name, str) else None
        if kinds is None or mod.kind in kinds:
            continue
        fix = {**(value if isinstance(value, dict) else {"default": value}), mod.name: SUGGESTED[mod.kind]}
        fix = {mod.name: fix.pop(mod.name), **fix}  # the changed modality first
        fix_text = "{" + ", ".join(f"{k}: {v}" for k, v in fix.items()) + "}"
        return (
            f"{model}: modality {mod.name!r} of dataset {spec.name!r} is {describe_modality(mod)}, which the "
            f"{name!r} encoder cannot read (it reads {' and '.join(kinds)} modalities); "
            f"set {field}: {fix_text}"
        )
    return None


def fusion_attribute(reg: Any, name: str, attr: str) -> Any:
    """Class attribute ``attr`` of fusion ``name`` (``input_kind``, ``predicts``), found without importing torch:
    a ClassVar of its config, the factory itself once imported, or else the literal its factory class assigns in
    its module's source (read, not run). None when none of these tells (an inherited or computed value)."""
    import sys

    try:
        entry = reg.get("fusion", name)
        config = entry.config
    except (LookupError, ImportError, MfmBenchError):
        return None  # unknown or unloadable: reported where the name is resolved
    if getattr(config, attr, None) is not None:
        return getattr(config, attr)
    ref = entry.factory_ref
    if not isinstance(ref, str):
        return getattr(ref, attr, None)
    module, _, qual = ref.partition(":")
    if module in sys.modules:
        obj: Any = sys.modules[module]
        for part in qual.split(".") if qual else []:
            obj = getattr(obj, part, None)
        return getattr(obj, attr, None)
    return _assigned_in_source(module, qual, attr)


def _assigned_in_source(module: str, cls: str, attr: str) -> Any:
    """The constant ``cls.attr = ...`` assigns in the body of class ``cls`` of ``module``'s source, or None."""
    import ast
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), spec.origin)
    except (ImportError, ValueError, OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name == cls):
            continue
        for item in node.body:
            targets = (
                item.targets
                if isinstance(item, ast.Assign)
                else [item.target]
                if isinstance(item, ast.AnnAssign)
                else []
            )
            value = getattr(item, "value", None)
            if any(isinstance(t, ast.Name) and t.id == attr for t in targets) and isinstance(value, ast.Constant):
                return value.value
    return None


def encoded_fusions(reg: Any, predicting: bool = True) -> list[str]:
    """The fusions known to read encoded modalities (``input_kind`` pooled or sequence), without those that
    predict labels themselves unless ``predicting``."""
    return [
        n
        for n in sorted(reg.names("fusion"))
        if fusion_attribute(reg, n, "input_kind") in ("pooled", "sequence")
        and (predicting or fusion_attribute(reg, n, "predicts") is not True)
    ]


def fusion_problem(reg: Any, spec: Any, model: str, cfg: Any) -> str | None:
    """Why the fusion that model config ``cfg`` names cannot serve ``spec``, or None: a raw-sequence fusion (MulT,
    MFN, EF-LSTM: no encoder runs before it, so no encoder setting helps) given an image modality, or a fusion
    that predicts labels given to a model whose config says ``predicting_fusions = False`` (MFM's z_y)."""
    predicting = getattr(type(cfg), "predicting_fusions", True)
    images = [m for m in spec.modalities if m.kind == "image"]
    for field, kind, _ in nested_plugins(type(cfg)):
        name = getattr(cfg, field)
        if kind != "fusion" or not isinstance(name, str):
            continue
        refused = not predicting and fusion_attribute(reg, name, "predicts") is True
        raw = bool(images) and fusion_attribute(reg, name, "input_kind") == "raw"
        if not (refused or raw):
            continue
        works = encoded_fusions(reg, predicting)
        choose = "concat" if "concat" in works else (works[0] if works else "")
        fix = f"set {field}: {choose}" if choose else "use a fusion that reads encoded modalities"
        listed = f" (fusions that read encoded modalities{'' if predicting else ' and return a vector'}: " + (
            f"{', '.join(works)})" if works else "none is registered)"
        )
        if refused:
            return (
                f"{model}: fusion {name!r} predicts labels itself (its class sets predicts = True), and this model "
                f"reads a vector from its fusion; {fix}{listed}"
            )
        img, image_names = images[0], {m.name for m in images}
        for enc_field, k, _ in nested_plugins(type(cfg)):
            if k == "encoder":  # the first encoder field: what the fusion will read
                value = getattr(cfg, enc_field)
                given = value if isinstance(value, dict) else {"default": value}
                fixed = {**dict.fromkeys(sorted(image_names), SUGGESTED["image"]), **given}
                fixed.update(dict.fromkeys(image_names, SUGGESTED["image"]))
                fix += f" with an image encoder, {enc_field}: {{{', '.join(f'{a}: {b}' for a, b in fixed.items())}}}"
                break
        return (
            f"{model}: fusion {name!r} reads the raw modalities as sequences [T, D], before any encoder (so no "
            f"encoder setting helps), and modality {img.name!r} of dataset {spec.name!r} is "
            f"{describe_modality(img)}; {fix}{listed}"
        )
    return None


def check_model(reg: Any, spec: Any, model: str, cfg: Any) -> None:
    """Raise :class:`EncoderKindError` when the fusion that model config ``cfg`` (a config dataclass instance)
    names cannot serve ``spec`` (:func:`fusion_problem`), or an encoder it names cannot read a modality of
    ``spec``; ``model`` names the model in the message."""
    why = fusion_problem(reg, spec, model, cfg)
    if why:
        raise EncoderKindError(why)
    for field, kind, _ in nested_plugins(type(cfg)):
        why = problem(reg, spec, model, field, getattr(cfg, field)) if kind == "encoder" else None
        if why:
            raise EncoderKindError(why)


class EncoderOutputError(MfmBenchError, ValueError):
    """An encoder whose forward does not return ``(pooled [B, H], sequence [B, T, H])`` with H its ``output_dim``."""


def shown(value: Any, depth: int = 0) -> str:
    """A short description of what a plugin returned, for its error: ``tensor [32, 1]``, ``dict with keys
    ['label']``, ``tuple of 2 (tensor [8], ...)`` (shapes only: nothing is read from the device)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"tensor [{', '.join(map(str, shape))}]"
    if isinstance(value, dict):
        return f"dict with keys {list(value)[:6]}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(shown(v, depth + 1) for v in value[:4]) if depth < 1 else "..."
        more = ", ..." if len(value) > 4 else ""
        return f"{type(value).__name__} of {len(value)} ({inner}{more})"
    return type(value).__name__


def check_encoded(encoder: Any, modality: str, x: Any, out: Any) -> tuple[Any, Any]:
    """``out``, what ``encoder(x, mask)`` returned for ``modality``, as ``(pooled, sequence)`` when it is
    ``(pooled [B, H], sequence [B, T', H])`` with H the encoder's ``output_dim``; else an
    :class:`EncoderOutputError` naming the encoder plugin, what it returned, what was expected and the fix.
    Shapes only: nothing is read from the device."""
    batch, width = x.shape[0], encoder.output_dim
    if isinstance(out, (tuple, list)) and len(out) == 2:
        pooled, seq = out
        p_shape, s_shape = getattr(pooled, "shape", None), getattr(seq, "shape", None)
        if (
            p_shape is not None
            and s_shape is not None
            and tuple(p_shape) == (batch, width)
            and len(s_shape) == 3
            and s_shape[0] == batch
            and s_shape[-1] == width
        ):
            return pooled, seq
    who = getattr(encoder, "mfm_bench_plugin", "") or f"encoder {type(encoder).__qualname__}"
    fix = (
        "return both from forward: `return pooled, seq` with pooled [B, H] and seq [B, T, H], H = output_dim; "
        "a pooling-only encoder can return its pooled vector as one step, `pooled, pooled.unsqueeze(1)`"
        if not (isinstance(out, (tuple, list)) and len(out) == 2)
        else f"make both outputs {width} wide, or set self.output_dim to the width the encoder returns"
    )
    raise EncoderOutputError(
        f"{who}, given modality {modality!r} as tensor [{', '.join(map(str, x.shape))}], returned {shown(out)}; "
        f"expected a tuple (pooled [{batch}, {width}], sequence [{batch}, T, {width}]) (its output_dim is {width}): "
        f"{fix} (the encoder contract, docs/plugins.md)"
    )


class FusionOutputError(MfmBenchError, ValueError):
    """A fusion whose forward does not return ``[B, output_dim]`` (or ``([B, output_dim], extra losses)``)."""


def check_fused(fusion: Any, out: Any, batch: int, width: int | None = None) -> Any:
    """``out``, the fused vector a fusion returned (its extra losses already split off), when it is
    ``[batch, width]`` (``width``: the fusion's ``output_dim``, or the task's width for a predicting fusion); else a
    :class:`FusionOutputError` naming the fusion plugin, the shape returned, the shape expected and the fix."""
    width = fusion.output_dim if width is None else width
    shape = getattr(out, "shape", None)
    if shape is not None and tuple(shape) == (batch, width):
        return out
    who = getattr(fusion, "mfm_bench_plugin", "") or f"fusion {type(fusion).__qualname__}"
    raise FusionOutputError(
        f"{who} returned {shown(out)}; expected the fused tensor [{batch}, {width}] (its output_dim is "
        f"{fusion.output_dim}), or a tuple (fused [{batch}, {width}], {{name: extra loss}}): pool or project to "
        "[B, output_dim] in forward, or set self.output_dim to the width it returns (the fusion contract, "
        "docs/plugins.md)"
    )
