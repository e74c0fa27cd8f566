"""Credited settings of MFM (``preset:``); docs/mfm.md gives the file and line of every number.

A field of ``MFMConfig`` left at :data:`FROM_PRESET` takes its preset's value in ``__post_init__``, so the
registry's resolved params (and the run id) hold the values actually used; params given next to a preset win.
``fusion_params`` merge key by key (preset's MFN params under the given ones) and only when the fusion is ``mfn``.

- ``original``: pliang279/factorized ``mfm_mosi.py`` function ``best_acc`` (the authors' best MOSI setting),
  with the original's architecture: each generative encoder as wide as its code (``encoderLSTM``), the MFN run
  over padding, the checkpoint of the lowest total validation loss when surrogates are trained (else label).
- ``mmsa``: thuiar/MMSA ``config_regression.json``, ``mfm`` common and ``mosi`` params (MMSA's re-tuning).
- ``default``: the original's numbers; our MFN skips padded steps (``skip_padding``, its own default).

Per-modality values name text/audio/visual (MOSI); other modality names take the ``default`` entry, the
visual value. The training each preset expects (optimiser, batch, epochs, normalisation) is set by the suite:
docs/mfm.md lists it.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class _FromPreset:
    """The default of a field the preset fills (shown as ``(preset)`` by ``mfm-bench plugins --params``)."""

    def __repr__(self) -> str:
        return "(preset)"

    def __deepcopy__(self, memo: Any) -> _FromPreset:
        return self


FROM_PRESET: Any = _FromPreset()


def _mosi(text: Any, audio: Any, visual: Any) -> dict[str, Any]:
    return {"text": text, "audio": audio, "visual": visual, "default": visual}


def _code(text: Any, audio: Any, visual: Any) -> dict[str, Any]:
    """Per-code values: ``shared`` (the one generative code of ``variant: shared_generative``) takes the text
    value, as the original ``M_A`` builds it from ``zl_size``, ``fl_size`` and ``zl_to_fl_dropout``."""
    return {**_mosi(text, audio, visual), "shared": text}


_ORIGINAL: dict[str, Any] = {
    "zy": 32,
    "za": _code(32, 8, 80),
    "fy": 16,
    "fa": _code(88, 8, 8),
    "factor_dropout": {"zy": 0.0, **_code(0.2, 0.2, 0.7)},
    "head_hidden": None,
    "head_dropout": 0.0,
    "lambda_mmd": 1.0,
    "lambda_x": _mosi(1.0, 0.01, 0.5),
    "encoder_width": "code",
    "fusion_params": {
        "hidden": _mosi(88, 64, 48),
        "memory": 64,
        "window": 2,
        "attention_hidden": 128,
        "memory_hidden": 128,
        "gamma_hidden": 128,
        "attention_dropout": 0.5,
        "memory_dropout": 0.5,
        "gamma_dropout": 0.5,
        "skip_padding": False,
    },
}

PRESETS: dict[str, dict[str, Any]] = {
    # select_on: the original's train_mfm keeps the lowest validation L1, train_mfm_missing the lowest total
    "original": {**_ORIGINAL, "select_on": {"surrogate": "total", "clean": "label"}},
    "mmsa": {
        "zy": 80,
        "za": _code(64, 80, 80),
        "fy": 64,
        "fa": _code(32, 16, 64),
        "factor_dropout": {"zy": 0.5, **_code(0.5, 0.7, 0.5)},
        "head_hidden": None,
        "head_dropout": 0.0,
        "lambda_mmd": 100.0,
        "lambda_x": _mosi(0.5, 0.01, 0.5),
        "encoder_width": "code",
        "select_on": "label",
        "fusion_params": {
            "hidden": _mosi(128, 32, 128),
            "memory": 64,
            "window": 2,
            "attention_hidden": 32,
            "memory_hidden": 64,
            "gamma_hidden": [32, 64],
            "attention_dropout": 0.7,
            "memory_dropout": 0.0,
            "gamma_dropout": [0.0, 0.5],
            "skip_padding": False,
        },
    },
    "default": {
        **_ORIGINAL,
        "select_on": "label",
        "fusion_params": {k: v for k, v in _ORIGINAL["fusion_params"].items() if k != "skip_padding"},
    },
}


def preset_help(field: str, text: str) -> str:
    """``text`` followed by the value of ``field`` in every preset."""

    def show(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {x}" for k, x in v.items() if k != "default") + "}"
        return "null" if v is None else str(v)

    return f"{text}; from the preset unless given ({'; '.join(f'{p}: {show(v[field])}' for p, v in PRESETS.items())})"


def apply_preset(cfg: Any) -> None:
    """Fill every field of ``cfg`` left at :data:`FROM_PRESET` from ``PRESETS[cfg.preset]``; merge fusion_params."""
    if cfg.preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {cfg.preset!r}")
    values = PRESETS[cfg.preset]
    for f in dataclasses.fields(cfg):
        if getattr(cfg, f.name) is FROM_PRESET:
            value = values[f.name]
            if f.name == "select_on" and isinstance(value, dict):  # depends on surrogate training
                value = value["surrogate" if cfg.surrogate else "clean"]
            setattr(cfg, f.name, _copy(value))
    if cfg.fusion == "mfn":
        cfg.fusion_params = {**_copy(values["fusion_params"]), **cfg.fusion_params}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return list(value) if isinstance(value, list) else value
