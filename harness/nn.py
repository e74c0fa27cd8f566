"""Shared neural building blocks for plugins: sequence and mask helpers, heads, masked losses, attention.

Plugins import these from ``mfm_bench.nn`` (never from another plugin's module), so each block has one copy.
Latent-code losses (MMD, KL) live in :mod:`mfm_bench.losses`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .contracts import Task

# -- sequences and masks ([B, T, D] sequences, [B, T] bool masks, True = a real step) --------------------------------


def modality_present(mask: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """mask [B, T] (or [B], [B, 1]) -> [B] bool (``keepdim``: [B, 1]): True where the sample has the modality at all."""
    return mask.reshape(mask.shape[0], -1).any(1, keepdim=keepdim)


def as_sequence(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A modality as a sequence: x [B, T, D] with mask [B, T] as they are (mask as bool); a vector x [B, D] as one
    step [B, 1, D] with mask [B, 1] (True where the sample has it)."""
    if x.dim() == 2:
        return x.unsqueeze(1), modality_present(mask, keepdim=True)  # (B, 1, D), (B, 1)
    if x.dim() != 3 or mask.shape != x.shape[:2]:  # an image [B, C, H, W] would reach a sequence model unnoticed
        raise ValueError(
            f"as_sequence: expected x [B, T, D] with mask [B, T] (or x [B, D]), got {tuple(x.shape)} and "
            f"{tuple(mask.shape)}; an image modality needs an encoder that reads images (conv-image), and a sequence "
            "mask is one bool per time step"
        )
    return x, mask.bool()


def aligned_steps(
    inputs: dict[str, torch.Tensor],
    mask: dict[str, torch.Tensor],
    names: list[str],
    who: str = "concat_modalities",
    hint: str = "align the dataset (e.g. word-level alignment)",
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Modalities ``names`` on one time axis: sequences [B, T, D_m] as they are, vectors [B, D_m] repeated at every
    step; with their masks [B, T]. Sequences of different lengths raise a ValueError naming ``who`` and ``hint``."""
    lengths = {m: inputs[m].shape[1] for m in names if inputs[m].dim() == 3}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{who} needs time-aligned modalities (the same number of time steps), got {lengths}; {hint}")
    T = next(iter(lengths.values()), 1)
    xs, ms = [], []
    for m in names:
        x, k = as_sequence(inputs[m], mask[m])
        xs.append(x.expand(x.shape[0], T, x.shape[2]))  # a vector modality, repeated over time
        ms.append(k.expand(k.shape[0], T))
    return xs, ms


def concat_modalities(
    inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], names: list[str], who: str = "concat_modalities"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate modalities ``names`` along features ([B, T, sum D]); vectors are repeated at every step.
    The mask [B, T] is True where any of them is real. Sequences must share their length (time-aligned data)."""
    xs, ms = aligned_steps(inputs, mask, names, who)
    return torch.cat(xs, dim=2), torch.stack(ms, dim=0).any(0)  # (B, T, sum D), (B, T)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over time of x [B, T, H] at real steps (mask [B, T]); zeros for a sample with no real step."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def last_valid(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The state at the last real step of each sample: seq [B, T, H], mask [B, T] -> [B, H] (zeros if none)."""
    B, T, _ = seq.shape
    steps = torch.arange(T, device=seq.device).expand(B, T)
    idx = torch.where(mask, steps, torch.full_like(steps, -1)).max(dim=1).values  # (B,)
    out = seq[torch.arange(B, device=seq.device), idx.clamp_min(0)]
    return out * (idx >= 0).unsqueeze(-1).to(seq.dtype)


def with_one(z: torch.Tensor) -> torch.Tensor:
    """[B, d] -> [B, d + 1], appending a constant 1 (TFN's eq. (1): the tensor then keeps the unimodal terms)."""
    return torch.cat([z, torch.ones_like(z[:, :1])], dim=1)


# -- layers and heads ---------------------------------------------------------------------------------------------


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Linear, ReLU, Dropout, Linear: in_dim -> hidden -> out_dim."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


def modality_projections(input_dims: dict[str, int], width: int) -> tuple[nn.ModuleDict, dict[str, int]]:
    """Per modality Linear + ReLU to ``width`` (``width`` 0: identity); returns the modules and the widths after."""
    if width > 0:
        return (
            nn.ModuleDict({m: nn.Sequential(nn.Linear(d, width), nn.ReLU()) for m, d in input_dims.items()}),
            {m: width for m in input_dims},
        )
    return nn.ModuleDict({m: nn.Identity() for m in input_dims}), dict(input_dims)


class Head(nn.Module):
    """Prediction head chosen from the task: :func:`mlp` to ``task.output_dim`` (one Linear with ``hidden=0``).

    Regression returns [B]; classification logits [B, C]; multi_regression [B, K].
    """

    def __init__(self, task: Task, in_dim: int, hidden: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        self.task = task
        self.net = mlp(in_dim, hidden, task.output_dim, dropout) if hidden > 0 else nn.Linear(in_dim, task.output_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return shape_prediction(self.task, self.net(h))


def shape_prediction(task: Task, out: torch.Tensor) -> torch.Tensor:
    """[B, output_dim] -> the prediction shape of ``task`` ([B] for regression)."""
    return out.squeeze(-1) if task.kind == "regression" else out


# -- losses ---------------------------------------------------------------------------------------------------------


def task_loss(task: Task, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 for (multi-)regression, as MFM and MFN train; cross-entropy for classification."""
    if task.kind == "classification":
        return F.cross_entropy(prediction, target.long())
    if prediction.shape != target.shape:  # L1 would broadcast [B, 1] against [B] to [B, B], a wrong loss
        form = "[B]" if task.kind == "regression" else f"[B, {len(task.targets)}]"
        raise ValueError(
            f"task_loss({task.kind}): the prediction is [{', '.join(map(str, prediction.shape))}] and the target "
            f"[{', '.join(map(str, target.shape))}]; a {task.kind} prediction is {form}: pass the model's output "
            "through mfm_bench.nn.shape_prediction(task, out) (or use mfm_bench.nn.Head, which does)"
        )
    return F.l1_loss(prediction, target.float())


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error over the real steps of a batch: pred, target [B, T, D], mask [B, T] -> (loss, real steps).

    Zero (with a gradient path) when there is no real step, e.g. a modality missing from the whole batch.
    """
    m = mask.unsqueeze(-1).to(pred.dtype)  # (B, T, 1)
    n = m.sum()
    loss = (((pred - target) ** 2) * m).sum() / (n * pred.shape[-1]).clamp_min(1.0)
    return loss, n


def per_sample_mse(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """[B] mean squared error per sample over steps and features, in float32 at least; with ``mask`` [B, T] only
    real steps count (zero for a sample with none)."""
    err = (x_hat - x).pow(2).float()  # (B, T, D)
    if mask is None:
        return err.reshape(err.shape[0], -1).mean(1)
    m = mask.unsqueeze(-1).to(err.dtype)
    return (err * m).sum((1, 2)) / (m.sum((1, 2)) * err.shape[2]).clamp_min(1.0)


# -- attention ------------------------------------------------------------------------------------------------------


def sinusoid(T: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    """[T, d] sinusoidal position embeddings (Vaswani et al. 2017)."""
    pos = torch.arange(T, device=device, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    freq = torch.exp(
        torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d)
    )  # (ceil(d/2),)
    out = torch.zeros(T, d, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return out


def future_mask(Tq: int, Tk: int, device: torch.device | None = None) -> torch.Tensor:
    """[Tq, Tk] bool, True where query step i may read key step j: j <= i + |Tk - Tq|.

    MulT's ``buffered_future_mask`` (yaohungt/Multimodal-Transformer, modules/transformer.py:179-186): a causal mask
    shifted by the length difference, so with Tq = Tk step i reads steps up to i.
    """
    i = torch.arange(Tq, device=device).unsqueeze(1)  # (Tq, 1)
    j = torch.arange(Tk, device=device).unsqueeze(0)  # (1, Tk)
    return j <= i + abs(Tk - Tq)


def safe_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    heads: int,
    dropout: float,
    causal: bool = False,
) -> torch.Tensor:
    """Multi-head scaled dot-product attention with a key padding mask, NaN-free for fully masked key sequences.

    q [B, Tq, d], k and v [B, Tk, d] (already projected), key_mask [B, Tk] bool (True = real) -> [B, Tq, d];
    ``causal`` also applies :func:`future_mask`. Query rows left with no key to read come back as zeros.
    """
    B, Tq, d = q.shape
    Tk = k.shape[1]
    allowed = key_mask[:, None, :].expand(B, Tq, Tk)  # (B, Tq, Tk)
    if causal:
        allowed = allowed & future_mask(Tq, Tk, q.device)
    has_key = allowed.any(-1)  # (B, Tq)
    allowed = allowed | ~has_key.unsqueeze(-1)  # a row with no key attends to all (then zeroed)
    split = lambda x, T: x.view(B, T, heads, d // heads).transpose(1, 2)  # noqa: E731  (B, h, T, d/h)
    out = F.scaled_dot_product_attention(
        split(q, Tq), split(k, Tk), split(v, Tk), attn_mask=allowed[:, None], dropout_p=dropout
    )  # (B, h, Tq, d/h)
    out = out.transpose(1, 2).reshape(B, Tq, d)  # (B, Tq, d)
    return out * has_key.unsqueeze(-1).to(out.dtype)


class CrossmodalLayer(nn.Module):
    """One pre-norm transformer layer whose queries come from ``x`` and keys/values from ``y`` (y = x: self-attention).

    ``shared_norm``: one LayerNorm for queries, keys and values, as MulT's reference layer (modules/transformer.py:
    145-151); otherwise keys/values get their own. ``causal``: :func:`future_mask` on the attention. ``relu_dropout``
    (None: ``dropout``) is the dropout between the two feed-forward layers; ``dropout`` the one on residual branches.
    """

    def __init__(
        self,
        d: int,
        heads: int,
        dropout: float,
        attn_dropout: float,
        shared_norm: bool = False,
        causal: bool = False,
        relu_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.heads, self.attn_dropout, self.causal = heads, attn_dropout, causal
        self.norm_q, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d)
        self.norm_kv = None if shared_norm else nn.LayerNorm(d)
        self.q, self.kv, self.o = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.ff = mlp(d, 4 * d, d, dropout if relu_dropout is None else relu_dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        k, v = self.kv((self.norm_kv or self.norm_q)(y)).chunk(2, dim=-1)  # each (B, Ty, d)
        a = safe_attention(
            self.q(self.norm_q(x)), k, v, y_mask, self.heads, self.attn_dropout if self.training else 0.0, self.causal
        )
        x = x + self.drop(self.o(a))  # (B, Tx, d)
        return x + self.drop(self.ff(self.norm_ff(x)))


class CrossmodalTransformer(nn.Module):
    """A stack of :class:`CrossmodalLayer` with a final LayerNorm: target x [B, Tx, d] attends to source y [B, Ty, d]
    (``y=None``: self-attention); ``y_mask`` [B, Ty] masks the keys (MulT, Tsai et al. ACL 2019, eq. 5).
    ``layer_options`` (``shared_norm``, ``causal``, ``relu_dropout``) go to every layer."""

    def __init__(self, d: int, heads: int, layers: int, dropout: float, attn_dropout: float, **layer_options) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            CrossmodalLayer(d, heads, dropout, attn_dropout, **layer_options) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None, y_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, x if y is None else y, y_mask)
        return self.norm(x)
