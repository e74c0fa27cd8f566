"""MFM's generative networks G_i for every modality kind, chosen per modality by MFM's ``decoder`` parameter.

Every decoder maps the factors it reads, f [B, F], to one modality's per-sample shape:

- ``lstm`` (sequence [T, D], or a vector [D] as one step): the paper's decoder, ``SequenceDecoder`` (``impl:
  reference``) or ``FastSequenceDecoder`` (``impl: fast``), unchanged;
- ``conv-image`` (image [C, H, W]): Linear to a 2x2 map, then upsample-conv stages to H/4, H/2 and H (any H, W:
  the parameters do not depend on the image size, so the size need not be known at build);
- ``mlp`` (vector [D]): Linear-ReLU-Linear;
- ``conv-signal`` (vector [D] read as a 1-D signal): Linear to a short map, then upsample-conv1d stages to D/4,
  D/2 and D (the transpose of the ``conv-signal`` encoder).

:func:`check_modality_kinds` and :func:`build_decoder` refuse, at model build, an encoder or decoder that cannot
read or write its modality's kind, naming the modality and the fix.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.config import per_modality
from mfm_bench.contracts import DatasetSpec, Modality
from mfm_bench.errors import MfmBenchError

from .mfm_fast import FastSequenceDecoder
from .mfm_parts import SequenceDecoder

#: decoder name -> the modality kinds it can write
DECODER_KINDS: dict[str, tuple[str, ...]] = {
    "lstm": ("sequence", "vector"),
    "conv-image": ("image",),
    "mlp": ("vector",),
    "conv-signal": ("vector",),
}
#: the decoder to suggest for each kind
SUGGESTED = {"image": "conv-image", "vector": "mlp", "sequence": "lstm"}
#: encoders that read sequences only: MFM gives them a vector as one step and refuses an image
SEQUENCE_ENCODERS = ("lstm", "gru", "mean")
WIDTH = 32  # channels of the conv decoders' hidden maps


class MFMBuildError(MfmBenchError, ValueError):
    """MFM cannot be built for this dataset as configured; the message names the modality and the fix."""


class ImageConvDecoder(nn.Module):
    """f [B, F] -> image [B, C, H, W]: Linear to [WIDTH, 2, 2], then three (upsample, 3x3 conv) stages."""

    def __init__(self, in_dim: int, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, WIDTH * 4)
        self.convs = nn.ModuleList([nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.Conv2d(WIDTH, WIDTH // 2, 3, padding=1)])
        self.out = nn.Conv2d(WIDTH // 2, channels, 3, padding=1)
        self.channels = channels

    def forward(self, f: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        assert len(shape) == 3 and shape[0] == self.channels, (
            f"conv-image decoder writes [{self.channels}, H, W], asked {shape}"
        )
        _, H, W = shape
        x = F.relu(self.fc(f)).view(f.shape[0], WIDTH, 2, 2)  # (B, WIDTH, 2, 2)
        for conv, div in zip(self.convs, (4, 2)):
            x = F.relu(conv(F.interpolate(x, size=(math.ceil(H / div), math.ceil(W / div)), mode="nearest")))
        return self.out(F.interpolate(x, size=(H, W), mode="nearest"))  # (B, C, H, W)


class VectorMLPDecoder(nn.Module):
    """f [B, F] -> vector [B, D]: Linear-ReLU-Linear of hidden width max(F, 2 WIDTH)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        hidden = max(in_dim, 2 * WIDTH)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, f: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        assert tuple(shape) == (self.out_dim,), f"mlp decoder writes [{self.out_dim}], asked {shape}"
        return self.net(f)  # (B, D)


class SignalConvDecoder(nn.Module):
    """f [B, F] -> signal [B, D]: Linear to [WIDTH, ceil(D/8)], then three (upsample, conv1d k=5) stages."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.start = math.ceil(out_dim / 8)
        self.fc = nn.Linear(in_dim, WIDTH * self.start)
        self.convs = nn.ModuleList([nn.Conv1d(WIDTH, WIDTH, 5, padding=2), nn.Conv1d(WIDTH, WIDTH // 2, 5, padding=2)])
        self.out = nn.Conv1d(WIDTH // 2, 1, 5, padding=2)
        self.out_dim = out_dim

    def forward(self, f: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        assert tuple(shape) == (self.out_dim,), f"conv-signal decoder writes [{self.out_dim}], asked {shape}"
        D = self.out_dim
        x = F.relu(self.fc(f)).view(f.shape[0], WIDTH, self.start)  # (B, WIDTH, D/8)
        for conv, div in zip(self.convs, (4, 2)):
            x = F.relu(conv(F.interpolate(x, size=math.ceil(D / div), mode="linear", align_corners=False)))
        return self.out(F.interpolate(x, size=D, mode="linear", align_corners=False)).squeeze(1)  # (B, D)


def decoder_name(decoder: str | dict, m: str) -> str:
    return str(per_modality(decoder, m, "decoder"))


def build_decoder(spec: DatasetSpec, mod: Modality, decoder: str | dict, in_dim: int, impl: str) -> nn.Module:
    """The decoder G_i of modality ``mod`` reading ``in_dim`` factor features; refuses one that cannot write its
    kind."""
    name = decoder_name(decoder, mod.name)
    if name not in DECODER_KINDS:
        raise MFMBuildError(
            f"mfm: decoder {name!r} of modality {mod.name!r} is unknown; choose one of "
            f"{', '.join(DECODER_KINDS)} (decoder: {{{mod.name}: {SUGGESTED[mod.kind]}}})"
        )
    if mod.kind not in DECODER_KINDS[name]:
        raise MFMBuildError(
            f"mfm: modality {mod.name!r} of {spec.name!r} is {_shape_word(mod)}, "
            f"which the {name!r} decoder cannot write "
            f"(it writes {' or '.join(DECODER_KINDS[name])} modalities); set decoder: "
            f"{{{mod.name}: {SUGGESTED[mod.kind]}, default: lstm}}"
        )
    if name == "lstm":
        return (FastSequenceDecoder if impl == "fast" else SequenceDecoder)(in_dim, mod.dim)
    if name == "conv-image":
        return ImageConvDecoder(in_dim, mod.dim)
    return (VectorMLPDecoder if name == "mlp" else SignalConvDecoder)(in_dim, mod.dim)


def run_decoder(decoder: nn.Module, f: torch.Tensor, shape: tuple[int, ...], call: Any) -> torch.Tensor:
    """``decoder`` on factors f [B, F] -> [B, *shape]; the LSTM decoders take a step count (a vector: one step)."""
    if isinstance(decoder, SequenceDecoder):
        x_hat = call(decoder, f, shape[0] if len(shape) == 2 else 1)  # (B, T, D)
        return x_hat if len(shape) == 2 else x_hat.squeeze(1)
    return call(decoder, f, tuple(shape))


def check_modality_kinds(spec: DatasetSpec, cfg: Any) -> None:
    """Refuse, before any module is built, an image given to a component that reads sequences or vectors only."""
    images = [m.name for m in spec.modalities if m.kind == "image"]
    if not images:
        return
    m = images[0]
    for key in spec.modality_names:
        name = str(per_modality(cfg.encoder, key, "encoder")) if isinstance(cfg.encoder, dict) else cfg.encoder
        if key in images and name in SEQUENCE_ENCODERS + ("conv-signal",):
            raise MFMBuildError(
                f"mfm: modality {key!r} of {spec.name!r} is an image [C, H, W], which the {name!r} "
                f"encoder cannot read; set encoder: {{{key}: conv-image, default: {name}}}"
            )
    if cfg.variant == "shared_generative":
        raise MFMBuildError(
            f"mfm: the shared_generative variant concatenates every modality's features, and "
            f"modality {m!r} of {spec.name!r} is an image; use another variant for image data"
        )
    if cfg.surrogate and len(spec.modalities) > 2:
        raise MFMBuildError(
            f"mfm: surrogate encoders concatenate the other modalities' features, which an image "
            f"({m!r} of {spec.name!r}) cannot join; use surrogate: false, or two modalities"
        )


def _shape_word(mod: Modality) -> str:
    return {"image": "an image [C, H, W]", "vector": "a vector [D]", "sequence": "a sequence [T, D]"}[mod.kind]
