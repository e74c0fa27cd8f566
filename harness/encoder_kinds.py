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


def check_model(reg: Any, spec: Any, model: str, cfg: Any) -> None:
    """Raise :class:`EncoderKindError` when an encoder that model config ``cfg`` (a config dataclass instance)
    names cannot read a modality of ``spec``; ``model`` names the model in the message."""
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
