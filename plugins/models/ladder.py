"""``ladder``: cross-modal ladder networks ("Learning Cross-Modal Audiovisual Representations with Ladder Networks
for Emotion Recognition", ICASSP 2023, pp. 1-5, doi:10.1109/ICASSP49357.2023.10096138; docs/digits.md says what
the DOI's record confirms).

The paper's description: representations from a backbone network per modality feed unsupervised auxiliary
tasks that reconstruct intermediate-layer representations across the acoustic and visual networks; skip
connections between the cross-modal encoder and decoder carry modality-specific information, and the
supervised emotion loss is trained jointly. Built here, for any number M >= 2 of modalities:

1. backbone per modality: ``mlp`` (masked mean over time, then Linear-ReLU) or ``lstm`` (last real state);
2. ladder encoder per modality: ``layers`` Linear-LayerNorm-ReLU layers with normalised pre-activations
   z^1..z^L, run twice as in a ladder network: clean, and corrupted with Gaussian noise of std ``noise`` added
   to the input and to every z;
3. cross-modal decoder for every ordered pair (a -> b): top-down from a's corrupted top layer, at each layer l
   it combines the decoded signal from above with a's corrupted h_a^l (the lateral skip connection) and
   reconstructs b's clean z_b^l;
4. loss: the task loss on the corrupted path's prediction (ladder networks train the supervised cost on the
   noisy encoder), plus ``aux_weight`` x the mean squared reconstruction error over layers and pairs, counted
   only on samples where both modalities are present. The clean targets are normalised (LayerNorm) and
   detached: the guard against the trivial solution that the original ladder network gets from batch
   normalisation. Prediction at evaluation reads the clean path: a head on the concatenated top layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.contracts import Batch, DatasetSpec, Output
from mfm_bench.errors import MfmBenchError
from mfm_bench.nn import Head, last_valid, masked_mean, task_loss

from .configs import MORE_MODALITIES, LadderConfig  # noqa: F401 - the config lives torch-free in configs.py


class LadderBuildError(MfmBenchError, ValueError):
    """The ladder model cannot read this dataset; the message names the modality and the fix."""


class Backbone(nn.Module):
    """Sequence [B, T, D] or vector [B, D] -> [B, H]."""

    def __init__(self, dim: int, cfg: LadderConfig) -> None:
        super().__init__()
        self.kind = cfg.backbone
        if self.kind == "lstm":
            self.net = nn.LSTM(dim, cfg.hidden, batch_first=True)
        else:
            self.net = nn.Sequential(nn.Linear(dim, cfg.hidden), nn.ReLU())
        self.norm = nn.LayerNorm(cfg.hidden)  # so the input noise is on the signal's scale

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # vector modality: one step
            x, mask = x.unsqueeze(1), mask.reshape(x.shape[0], -1)[:, :1]
        if self.kind == "lstm":
            seq, _ = self.net(x * mask.unsqueeze(-1).to(x.dtype))  # (B, T, H)
            return self.norm(last_valid(seq, mask))
        return self.norm(self.net(masked_mean(x, mask)))  # (B, H)


class LadderEncoder(nn.Module):
    """h^0 (backbone output) -> z^1..z^L, the normalised pre-activations (what a ladder network reconstructs).

    Each layer: z = LayerNorm(W h) (+ Gaussian noise of std ``noise`` on the corrupted path), h = ReLU(z). The
    normalisation puts the noise on the scale of the signal, as batch normalisation does in the original.
    """

    def __init__(self, cfg: LadderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.LayerNorm(cfg.hidden)) for _ in range(cfg.layers)
        )

    def forward(self, h: torch.Tensor, noise: float = 0.0) -> list[torch.Tensor]:
        out = []
        for layer in self.layers:
            z = layer(h)  # (B, H)
            if noise > 0:
                z = z + noise * torch.randn_like(z)
            out.append(z)
            h = torch.relu(z)
        return out


class CrossDecoder(nn.Module):
    """Top-down decoder from modality a's corrupted layers to modality b's clean layers, with lateral skips."""

    def __init__(self, cfg: LadderConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.top = nn.Linear(h, h)
        # combinator g(u, z_lateral) per layer: an MLP on [u, z] (the original uses a per-unit gated form)
        self.combine = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, h)) for _ in range(cfg.layers)
        )
        self.down = nn.ModuleList(nn.Linear(h, h) for _ in range(cfg.layers - 1))

    def forward(self, noisy_a: list[torch.Tensor]) -> list[torch.Tensor]:
        """Reconstructions of the target's layers 1..L, in order."""
        u = self.top(noisy_a[-1])  # (B, H)
        recon = [None] * len(noisy_a)
        for layer in reversed(range(len(noisy_a))):
            recon[layer] = self.combine[layer](torch.cat([u, noisy_a[layer]], dim=1))  # (B, H)
            if layer > 0:
                u = self.down[layer - 1](recon[layer])
        return recon  # type: ignore[return-value]


class Ladder(nn.Module):
    """Backbones, clean and corrupted ladder encoders, a cross-modal decoder per ordered pair, a task head."""

    def __init__(self, spec: DatasetSpec, cfg: LadderConfig) -> None:
        super().__init__()
        if len(spec.modalities) < 2:
            raise LadderBuildError(
                f"ladder: dataset {spec.name!r} has one modality ({spec.modality_names[0]!r}); "
                f"cross-modal reconstruction needs at least 2: {MORE_MODALITIES}, or use the supervised model"
            )
        for mod in spec.modalities:
            if mod.kind == "image":
                raise LadderBuildError(
                    f"ladder: modality {mod.name!r} of {spec.name!r} is an image [C, H, W]; the "
                    f"{cfg.backbone} backbone reads sequence and vector modalities. Use symile or "
                    f"supervised with encoder: {{{mod.name}: conv-image}}"
                )
        self.cfg, self.task, self.names = cfg, spec.task, spec.modality_names
        self.backbones = nn.ModuleDict({m: Backbone(spec.input_dims[m], cfg) for m in self.names})
        self.encoders = nn.ModuleDict({m: LadderEncoder(cfg) for m in self.names})
        self.pairs = [(a, b) for a in self.names for b in self.names if a != b]
        self.decoders = nn.ModuleDict({f"{a}_to_{b}": CrossDecoder(cfg) for a, b in self.pairs})
        self.head = Head(spec.task, cfg.hidden * len(self.names), cfg.head_hidden, cfg.dropout)

    def forward(self, batch: Batch) -> Output:
        h0 = {m: self.backbones[m](batch.inputs[m], batch.mask[m]) for m in self.names}  # each (B, H)
        clean = {m: self.encoders[m](h0[m]) for m in self.names}
        noise = self.cfg.noise if self.training else 0.0
        if noise > 0:
            noisy = {m: self.encoders[m](h0[m] + noise * torch.randn_like(h0[m]), noise) for m in self.names}
        else:
            noisy = clean
        pred = self.head(torch.cat([noisy[m][-1] for m in self.names], dim=1))  # the noisy path when training
        recon_sum, recon_n = self.reconstruction(batch, clean, noisy)
        aux = recon_sum / recon_n.clamp_min(1)
        losses = {"label": task_loss(self.task, pred, batch.target), "reconstruction": self.cfg.aux_weight * aux}
        return Output(pred, losses, {"metric_sums": {"xmodal_recon_mse": (recon_sum.detach(), recon_n)}})

    def reconstruction(self, batch: Batch, clean: dict, noisy: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum over pairs and samples of the layer-mean squared error, number of (pair, sample) terms), both on
        the device (a training step reads nothing on the host)."""
        total = next(iter(clean.values()))[0].new_zeros(())
        count = torch.zeros((), dtype=torch.int64, device=total.device)
        for a, b in self.pairs:
            both = batch.present(a) & batch.present(b)  # (B,)
            recon = self.decoders[f"{a}_to_{b}"](noisy[a])
            err = 0.0
            for r, target in zip(recon, clean[b]):
                target = F.layer_norm(target.detach(), target.shape[-1:])  # (B, H), no affine: a fixed scale
                err = err + ((r - target) ** 2).mean(dim=1)  # (B,)
            total = total + (err / len(recon) * both.to(total.dtype)).sum()
            count = count + both.sum()
        return total, count
