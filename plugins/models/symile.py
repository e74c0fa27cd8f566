"""``symile``: contrastive representation learning beyond pairs (Saporta et al., NeurIPS 2024), or pairwise CLIP.

One encoder per modality, a linear projection to a shared width d, L2 normalisation, then

- ``objective: symile``: for each modality as anchor, a softmax over a batch of multilinear inner products
  MIP(a, b, c, ...) = sum_k a_k b_k c_k ... with the positive tuple on the diagonal, averaged over anchors
  (the paper's eq. 3 with O(N) or O(N^2) negatives, as the authors' ``symile`` package computes it);
- ``objective: clip``: the symmetric InfoNCE of every pair of modalities, averaged over pairs (the paper's
  pairwise-CLIP baseline).

Missing modalities, as the paper adapts Symile to them: each encoder also sees a missingness indicator, and a
missing input becomes an out-of-support value. An encoder that reads only "missing" can output one vector per
modality, so this is implemented as a learned embedding per modality that replaces the representation of
an absent modality (in training and in evaluation).

Evaluation, both reported to the harness:

- prediction: a linear probe on the frozen representations ([r_1, ..., r_M, r_1 * ... * r_M], detached), trained
  jointly with the contrastive loss; its task loss is ``"label"``. Detaching keeps the representations
  shaped by the contrastive objective alone, which is what a linear probe measures;
- ``retrieval_acc`` (``extras["metric_sums"]``): zero-shot, within the batch: for each present modality m and
  sample i, does the candidate m-representation with the highest score against i's other modalities belong
  to i? Symile scores by MIP, CLIP by the sum of pairwise dot products. Chance is 1 / batch size.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.contracts import Batch, DatasetSpec, Output
from mfm_bench.encoder_kinds import check_encoded
from mfm_bench.errors import MfmBenchError
from mfm_bench.nn import shape_prediction, task_loss
from mfm_bench.registry import get_registry

from .configs import MORE_MODALITIES, SymileConfig  # noqa: F401 - the config lives torch-free in configs.py

#: encoder of each modality kind, for modalities the config names none for
AUTO_ENCODERS = {"image": "conv-image", "vector": "conv-signal", "sequence": "lstm"}


class ModelBuildError(MfmBenchError, ValueError):
    """A model cannot be built for this dataset; the message names the modality and the fix."""


def mip(reps: list[torch.Tensor]) -> torch.Tensor:
    """Multilinear inner product of matched rows: [B, d] each -> [B]."""
    return _prod(reps).sum(-1)


def symile_logits(anchor: torch.Tensor, others: list[torch.Tensor], negatives: str = "n") -> torch.Tensor:
    """Logits of ``anchor`` [N, d] against tuples of ``others``; the positive tuple of row i is column i.

    ``n``: [N, N], negatives are the others' rows each shuffled by an independent permutation (drawn in the
    order of ``others``); ``n_squared``: [N, N^(M-1)], every combination of the others' rows (column j < N
    is the aligned tuple j, so the diagonal is still the positive).
    """
    n = anchor.shape[0]
    if negatives == "n":
        shuffled = torch.ones_like(anchor)
        for r in others:
            shuffled = shuffled * r[torch.randperm(n, device=r.device)]
        logits = anchor @ shuffled.t()  # (N, N)
        eye = torch.eye(n, dtype=torch.bool, device=anchor.device)
        return torch.where(eye, mip([anchor, *others]).unsqueeze(1).expand(n, n), logits)
    combos = _all_products(others)  # (N^(M-1), d)
    return anchor @ combos.t()


def _all_products(reps: list[torch.Tensor]) -> torch.Tensor:
    """Rows of the elementwise product of every combination of rows, as cyclic shifts: shift s of the last
    tensor fastest; the first N rows are the aligned tuples."""
    if len(reps) == 1:
        return reps[0]
    first, rest = reps[0], _all_products(reps[1:])  # rest: (N^(k-1), d)
    n = first.shape[0]
    blocks = []
    for s in range(n):
        # rest's rows come in blocks of N (one per shift of the deeper tensors); pair block b's row j with first[j - s]
        shifted = torch.roll(first, shifts=s, dims=0).repeat(rest.shape[0] // n, 1)
        blocks.append(rest * shifted)
    return torch.cat(blocks, 0)


def symile_loss(reps: list[torch.Tensor], logit_scale: torch.Tensor, negatives: str = "n") -> torch.Tensor:
    """Mean over anchors of the cross-entropy of the positive tuple against its negatives."""
    labels = torch.arange(reps[0].shape[0], device=reps[0].device)
    losses = [
        F.cross_entropy(logit_scale * symile_logits(r, reps[:i] + reps[i + 1 :], negatives), labels)
        for i, r in enumerate(reps)
    ]
    return torch.stack(losses).mean()


def clip_loss(reps: list[torch.Tensor], logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of every pair of modalities, averaged over pairs."""
    labels = torch.arange(reps[0].shape[0], device=reps[0].device)
    losses = []
    for a, b in itertools.combinations(reps, 2):
        logits = logit_scale * a @ b.t()  # (N, N)
        losses.append((F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2)
    return torch.stack(losses).mean()


def retrieval_hits(
    reps: list[torch.Tensor], present: list[torch.Tensor], objective: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct retrievals, attempts) over every present candidate modality, both on the device; see the module
    docstring."""
    hits = reps[0].new_zeros(())
    count = torch.zeros((), dtype=torch.int64, device=hits.device)
    for m, cand in enumerate(reps):
        query = [r for k, r in enumerate(reps) if k != m]
        if objective == "symile":
            scores = _prod(query) @ cand.t()  # (N, N): MIP(query_i, cand_j)
        else:
            scores = sum(q @ cand.t() for q in query)  # (N, N)
        rows = present[m]
        correct = scores.argmax(1) == torch.arange(cand.shape[0], device=cand.device)
        hits = hits + (correct & rows).sum().float()
        count = count + rows.sum()
    return hits, count


def _prod(reps: list[torch.Tensor]) -> torch.Tensor:
    out = reps[0]
    for r in reps[1:]:
        out = out * r
    return out


class Centre(nn.BatchNorm1d):
    """BatchNorm1d that uses its running statistics for a training batch of one sample (the trainer keeps a last,
    possibly single-sample, batch; batch statistics of one sample are undefined)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def build_encoders(spec: DatasetSpec, encoder: Any, params: dict, model: str) -> nn.ModuleDict:
    """One encoder per modality, by kind where none is named. An image given to a sequence-only encoder is refused."""
    reg = get_registry()
    encoders = nn.ModuleDict()
    for mod in spec.modalities:
        name = encoder.get(mod.name) if isinstance(encoder, dict) else encoder
        name = AUTO_ENCODERS[mod.kind] if name is None else name
        if mod.kind == "image" and name in ("lstm", "gru", "mean", "conv-signal"):
            raise ModelBuildError(
                f"{model}: modality {mod.name!r} of {spec.name!r} is an image [C, H, W], which the "
                f"{name!r} encoder cannot read; use encoder: {{{mod.name}: conv-image}} (the default for images)"
            )
        encoders[mod.name] = reg.build("encoder", name, mod.dim, **params)
    return encoders


class Symile(nn.Module):
    """Encoders -> projections -> normalised representations; Symile or CLIP loss; a detached linear probe."""

    def __init__(self, spec: DatasetSpec, cfg: SymileConfig) -> None:
        super().__init__()
        if len(spec.modalities) < 2:
            raise ModelBuildError(
                f"symile: dataset {spec.name!r} has one modality ({spec.modality_names[0]!r}); a "
                f"contrastive objective needs at least 2 (Symile differs from CLIP from 3 on): {MORE_MODALITIES}, "
                "or use the supervised model"
            )
        self.cfg, self.task, self.names = cfg, spec.task, spec.modality_names
        self.encoders = build_encoders(spec, cfg.encoder, cfg.encoder_params, "symile")
        # BatchNorm before the projection: freshly initialised ReLU encoders give nearly the same direction for every
        # input, which leaves the normalised representations collapsed (loss log N) for epochs; centring fixes it
        self.proj = nn.ModuleDict(
            {
                m: nn.Sequential(Centre(self.encoders[m].output_dim), nn.Linear(self.encoders[m].output_dim, cfg.dim))
                for m in self.names
            }
        )
        # the representation of an absent modality (see the module docstring)
        self.missing = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(cfg.dim) / math.sqrt(cfg.dim)) for m in self.names}
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        self.probe = nn.Linear(cfg.dim * (len(self.names) + 1), spec.task.output_dim)

    def represent(self, batch: Batch) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """([B, d] unit-norm representation per modality, [B] bool presence per modality)."""
        reps, present = [], []
        for m in self.names:
            x = batch.inputs[m]
            pooled, _ = check_encoded(self.encoders[m], m, x, self.encoders[m](x, batch.mask[m]))  # (B, H)
            r = F.normalize(self.proj[m](pooled), dim=-1)  # (B, d)
            p = batch.present(m)
            reps.append(torch.where(p.unsqueeze(1), r, F.normalize(self.missing[m], dim=0).expand_as(r)))
            present.append(p)
        return reps, present

    def forward(self, batch: Batch) -> Output:
        reps, present = self.represent(batch)
        scale = self.log_scale.exp().clamp(max=100.0)  # CLIP's cap on the learned inverse temperature
        if self.cfg.objective == "symile":
            contrastive = symile_loss(reps, scale, self.cfg.negatives)
        else:
            contrastive = clip_loss(reps, scale)
        joint = torch.cat([*reps, _prod(reps)], dim=1).detach()  # (B, d * (M + 1))
        pred = shape_prediction(self.task, self.probe(joint))
        losses = {"label": task_loss(self.task, pred, batch.target), self.cfg.objective: self.cfg.weight * contrastive}
        with torch.no_grad():
            hits, count = retrieval_hits(reps, present, self.cfg.objective)
        return Output(pred, losses, {"codes": {"joint": joint}, "metric_sums": {"retrieval_acc": (hits, count)}})
