"""``misa``: Modality-Invariant and -Specific representations.

Follows Hazarika, Zimmermann and Poria, "MISA: Modality-Invariant and -Specific Representations for Multimodal
Sentiment Analysis" (ACM MM 2020). Each modality's utterance vector u_m (an encoder plugin, then Linear, ReLU,
LayerNorm) is split into an invariant part c_m = E_c(u_m), one encoder shared by all modalities, and a specific
part p_m = E_p^m(u_m) (both Linear + sigmoid). Three auxiliary losses shape the split:

- ``similarity``: the central moment discrepancy (CMD) between the invariant vectors of every pair of modalities;
- ``difference``: a soft orthogonality penalty between c_m and p_m, and between the specific vectors of every pair;
- ``reconstruction``: u_m is rebuilt from c_m + p_m by a per-modality linear decoder (MSE).

The 2M vectors form a sequence of tokens read by a self-attention layer; the outputs are concatenated and an MLP
(Linear, Dropout, ReLU, Linear) predicts.

The defaults follow the reference code (declare-lab/MISA; line numbers in docs/baselines.md): MSE for regression
(solver.py), L2 norms detached in the difference loss (utils/functions.py DiffLoss), dropout 0.5 (config.py), the
attention layer's dropout 0.1 (``nn.TransformerEncoderLayer``'s default) and one Linear after the fusion MLP. Loss:
label + sim_weight * similarity + diff_weight * difference + recon_weight *
reconstruction (each entry of ``Output.losses`` is already weighted).

A missing modality's tokens are masked out of the attention and zeroed, and its vectors take no part in the
auxiliary losses of the samples that lack it. Codes for the evaluator's probes: ``invariant`` (the mean of the
present modalities' c_m) and ``specific_<m>`` (p_m).
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.config import per_modality
from mfm_bench.contracts import Batch, DatasetSpec, Output
from mfm_bench.encoder_kinds import check_encoded, check_model
from mfm_bench.nn import CrossmodalTransformer, Head, masked_mean, masked_mse, modality_present, task_loss
from mfm_bench.registry import get_registry

from .configs import MISAConfig  # noqa: F401 - the config lives torch-free in configs.py


def _row_mean(weight: torch.Tensor | None):
    """The mean over rows [N, d] -> [d]: of every row, or (``weight`` [N] bool) of the rows it marks, as
    ``x[weight].mean(0)`` without reading the mask on the host (``mfm_bench.nn.masked_mean`` over the rows as one
    sequence; zero where none is marked)."""
    if weight is None:
        return lambda t: t.mean(0)
    return lambda t: masked_mean(t.unsqueeze(0), weight.unsqueeze(0)).squeeze(0)


def cmd(x: torch.Tensor, y: torch.Tensor, moments: int, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Central moment discrepancy (Zellinger et al. 2017) between samples x [N, d] and y [N, d]:
    ||E x - E y|| + Σ_{k=2..K} ||E (x - E x)^k - E (y - E y)^k|| (values in [0, 1], as sigmoid outputs are).
    ``weight`` [N] bool: over the marked rows only, as ``cmd(x[weight], y[weight])`` (see :func:`_row_mean`)."""
    mean = _row_mean(weight)
    mx, my = mean(x), mean(y)
    out = (mx - my).norm()
    cx, cy = x - mx, y - my
    for k in range(2, moments + 1):
        out = out + (mean(cx**k) - mean(cy**k)).norm()
    return out


def difference(
    a: torch.Tensor, b: torch.Tensor, detach_norm: bool = True, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Soft orthogonality of a [N, d] and b [N, d]: mean squared entry of A^T B, rows centred and L2-normalised.

    ``detach_norm``: divide by the rows' norms + 1e-6 with the norms detached, as the reference DiffLoss; otherwise
    ``F.normalize`` with gradients through the norms. ``weight`` [N] bool: over the marked rows only, as
    ``difference(a[weight], b[weight])`` (see :func:`_row_mean`)."""
    mean = _row_mean(weight)
    a, b = a - mean(a), b - mean(b)
    if detach_norm:
        a = a / (a.norm(dim=1, keepdim=True).detach() + 1e-6)
        b = b / (b.norm(dim=1, keepdim=True).detach() + 1e-6)
    else:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    if weight is not None:
        a = a * weight.unsqueeze(1).to(a.dtype)  # unmarked rows add nothing to A^T B
    return (a.T @ b).pow(2).mean()


def row_mse(x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``F.mse_loss(x[rows], y[rows])`` for x, y [N, d] and ``rows`` [N] bool, without reading the mask on the host
    (``mfm_bench.nn.masked_mse`` over the rows as one sequence; zero where no row is marked)."""
    return masked_mse(x.unsqueeze(0), y.unsqueeze(0), rows.unsqueeze(0))[0]


def label_loss(task, prediction: torch.Tensor, target: torch.Tensor, regression_loss: str) -> torch.Tensor:
    """The task loss, with MSE instead of L1 for (multi-)regression when ``regression_loss`` is mse."""
    if task.kind == "classification" or regression_loss == "l1":
        return task_loss(task, prediction, target)
    assert prediction.shape == target.shape, f"prediction {tuple(prediction.shape)} vs target {tuple(target.shape)}"
    return F.mse_loss(prediction, target.float())


class MISA(nn.Module):
    """Invariant and specific vectors per modality, their auxiliary losses, attention over the 2M tokens."""

    def __init__(self, spec: DatasetSpec, cfg: MISAConfig) -> None:
        super().__init__()
        reg = get_registry()
        self.task, self.cfg, self.names = spec.task, cfg, spec.modality_names
        check_model(reg, spec, "misa", cfg)  # an encoder that cannot read a modality's kind stops here
        self.encoders = nn.ModuleDict(
            {
                m: reg.build(
                    "encoder", per_modality(cfg.encoder, m, "encoder"), spec.input_dims[m], **cfg.encoder_params
                )
                for m in self.names
            }
        )
        d = cfg.hidden
        self.project = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(self.encoders[m].output_dim, d), nn.ReLU(), nn.LayerNorm(d))
                for m in self.names
            }
        )
        self.shared = nn.Sequential(nn.Linear(d, d), nn.Sigmoid())
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, d), nn.Sigmoid()) for m in self.names})
        self.recon = nn.ModuleDict({m: nn.Linear(d, d) for m in self.names})
        self.attend = CrossmodalTransformer(d, cfg.heads, 1, cfg.attn_dropout, cfg.attn_dropout)
        M = len(self.names)
        self.fuse = nn.Sequential(nn.Linear(2 * M * d, M * d), nn.Dropout(cfg.dropout), nn.ReLU())
        self.head = Head(self.task, M * d, cfg.head_hidden, cfg.dropout)

    def forward(self, batch: Batch) -> Output:
        u, c, p, present = {}, {}, {}, {}
        for m in self.names:
            x, mask = batch.inputs[m], batch.mask[m]
            present[m] = modality_present(mask)  # (B,)
            u[m] = self.project[m](check_encoded(self.encoders[m], m, x, self.encoders[m](x, mask))[0])  # (B, d)
            c[m], p[m] = self.shared(u[m]), self.private[m](u[m])  # (B, d) each
        keep = {m: present[m].unsqueeze(1).to(u[m].dtype) for m in self.names}  # (B, 1)
        tokens = torch.stack(
            [p[m] * keep[m] for m in self.names] + [c[m] * keep[m] for m in self.names], 1
        )  # (B, 2M, d)
        token_mask = torch.stack([present[m] for m in self.names] * 2, 1)  # (B, 2M)
        fused = self.attend(tokens, None, token_mask) * token_mask.unsqueeze(-1).to(tokens.dtype)  # (B, 2M, d)
        pred = self.head(self.fuse(fused.flatten(1)))  # (B, 2M d) -> (B, M d) -> prediction
        cfg, zero = self.cfg, pred.new_zeros(())
        sim = diff = rec = zero
        # each auxiliary term over the samples that have its modalities, where there are at least two; computed
        # over masked rows rather than selected ones, so that no step reads the masks on the host
        for m in self.names:
            rows = present[m]
            enough = rows.sum() >= 2
            diff = diff + torch.where(enough, difference(c[m], p[m], cfg.detach_norm, rows), zero)
            rec = rec + torch.where(enough, row_mse(self.recon[m](c[m] + p[m]), u[m], rows), zero)
        pairs = list(combinations(self.names, 2))
        for a, b in pairs:
            rows = present[a] & present[b]
            enough = rows.sum() >= 2
            sim = sim + torch.where(enough, cmd(c[a], c[b], cfg.cmd_moments, rows), zero) / len(pairs)
            diff = diff + torch.where(enough, difference(p[a], p[b], cfg.detach_norm, rows), zero)
        losses = {
            "label": label_loss(self.task, pred, batch.target, cfg.regression_loss),
            "similarity": cfg.sim_weight * sim,
            "difference": cfg.diff_weight * diff,
            "reconstruction": cfg.recon_weight * rec / len(self.names),
        }
        n_present = torch.stack([keep[m] for m in self.names], 0).sum(0).clamp_min(1.0)  # (B, 1)
        codes = {
            "invariant": (sum(c[m] * keep[m] for m in self.names) / n_present).detach(),
            **{f"specific_{m}": p[m].detach() for m in self.names},
        }
        return Output(pred, losses, {"codes": codes})
