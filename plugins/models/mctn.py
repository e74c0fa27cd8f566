"""``mctn``: Multimodal Cyclic Translation Network.

Follows Pham, Liang et al., "Found in Translation: Learning Robust Joint Representations by Cyclic Translations
Between Modalities" (AAAI 2019). A sequence-to-sequence model translates the source modality into the first target
and back again (the cycle-consistency loss); the encoder's states are the joint representation. With more targets
the model is hierarchical, as in the paper's three-modality MCTN: the joint representation of one level is
translated into the next target by another encoder-decoder. A recurrent predictor reads the last level's encoder
states and a task head predicts the label. The training loss is

    label_weight * task loss + translation_weight * Σ_k MSE(X̂_{t_k}, X_{t_k}) + cycle_weight * MSE(X̂_s, X_s).

At test time only the source modality is read: the prediction does not depend on the targets at all, so a missing
or noisy target modality cannot hurt it (the translation losses are still reported where targets are present).

Choices of this implementation (the paper leaves them open or ties them to its code):
- a decoder is non-autoregressive: its queries are position embeddings of the target's length, read by an LSTM
  started from the encoder's last real state, plus attention over the encoder states; so source and targets may
  have different lengths;
- a vector modality [B, D] is a sequence of one step;
- the back-translation reuses the level-1 encoder (its input passes through a per-modality linear projection), so
  the cycle shapes the same joint representation the predictor reads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mfm_bench.contracts import Batch, DatasetSpec, Output
from mfm_bench.nn import Head, as_sequence, last_valid, masked_mse, safe_attention, sinusoid, task_loss

from .configs import MORE_MODALITIES, MCTNConfig  # noqa: F401 - the config lives torch-free in configs.py


class Decoder(nn.Module):
    """Non-autoregressive decoder: T_out position queries -> LSTM (started from the encoder's summary) -> attention
    over the encoder states -> [B, T_out, out_dim]."""

    def __init__(self, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.rnn = nn.LSTM(hidden, hidden, batch_first=True)
        self.q, self.kv = nn.Linear(hidden, hidden), nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(2 * hidden, out_dim)

    def forward(self, states: torch.Tensor, mask: torch.Tensor, summary: torch.Tensor, T_out: int) -> torch.Tensor:
        B = states.shape[0]
        queries = sinusoid(T_out, self.hidden, states.device).to(states.dtype).expand(B, T_out, self.hidden)
        h0 = summary.unsqueeze(0).contiguous()  # (1, B, H)
        dec, _ = self.rnn(queries, (h0, torch.zeros_like(h0)))  # (B, T_out, H)
        k, v = self.kv(states).chunk(2, dim=-1)  # each (B, T_in, H)
        ctx = safe_attention(self.q(dec), k, v, mask, heads=1, dropout=0.0)  # (B, T_out, H)
        return self.out(torch.cat([dec, ctx], dim=-1))  # (B, T_out, out_dim)


class MCTN(nn.Module):
    """Source -> targets cyclic translation; the prediction reads only the source modality."""

    def __init__(self, spec: DatasetSpec, cfg: MCTNConfig) -> None:
        super().__init__()
        names = spec.modality_names
        self.task, self.cfg = spec.task, cfg
        self.source = cfg.source or names[0]
        if self.source not in names:
            raise ValueError(f"mctn: source {self.source!r} is not a modality of {spec.name!r}; choose one of {names}")
        self.targets = list(cfg.targets) or [m for m in names if m != self.source]
        bad = [t for t in self.targets if t not in names or t == self.source]
        if bad:
            raise ValueError(
                f"mctn: targets {bad} must be modalities of {spec.name!r} other than the source "
                f"{self.source!r}; choose from {[m for m in names if m != self.source]}"
            )
        if not self.targets:
            raise ValueError(
                f"mctn needs at least one target modality besides the source {self.source!r}; "
                f"{spec.name!r} has only {names}: {MORE_MODALITIES}, or use the supervised model"
            )
        H, dims = cfg.hidden, spec.input_dims
        self.in_proj = nn.ModuleDict({m: nn.Linear(dims[m], H) for m in [self.source, self.targets[0]]})
        self.encoders = nn.ModuleList(
            nn.LSTM(H, H, batch_first=True, bidirectional=cfg.bidirectional) for _ in self.targets
        )
        self.decoders = nn.ModuleList(Decoder(H, dims[t]) for t in self.targets)
        self.back = Decoder(H, dims[self.source])  # cycle: first target's translation -> source
        self.predictor = nn.LSTM(H, H, batch_first=True)
        self.score = (
            nn.Linear(H, 1) if cfg.pooling == "attention" else None
        )  # reference: TimeDistributed(Dense(1, tanh))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = Head(self.task, H, cfg.head_hidden, cfg.dropout)

    def encode(self, level: int, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, H] -> (states [B, T, H], summary at the last real step [B, H]); both directions summed."""
        states, _ = self.encoders[level](x * mask.unsqueeze(-1).to(x.dtype))  # (B, T, H) or (B, T, 2 H)
        if self.cfg.bidirectional:
            fwd, bwd = states.chunk(2, dim=-1)
            states = fwd + bwd  # Keras Bidirectional(merge_mode='sum')
        return states, last_valid(states, mask)

    def pool(self, joint: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predictor states [B, T, H] -> [B, H]: attention pooling (softmax over real steps of tanh scores) or the
        state at the last real step."""
        if self.score is None:
            return last_valid(joint, mask)
        scores = torch.tanh(self.score(joint)).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # a sample with no real step gets zeros
        return (weights.unsqueeze(-1) * joint).sum(1)  # (B, H)

    def output_layer(self) -> nn.Linear:
        """The head's last Linear layer (the reference's ``regression_output`` Dense)."""
        return [m for m in self.head.modules() if isinstance(m, nn.Linear)][-1]

    def forward(self, batch: Batch) -> Output:
        src, src_mask = as_sequence(batch.inputs[self.source], batch.mask[self.source])  # (B, T_s, D_s), (B, T_s)
        seq = self.in_proj[self.source](src)  # (B, T_s, H)
        trans_terms: list[torch.Tensor] = []
        cycle = torch.zeros((), device=src.device)
        for k, t in enumerate(self.targets):
            states, summary = self.encode(k, seq, src_mask)  # (B, T_s, H), (B, H)
            tgt, tgt_mask = as_sequence(
                batch.inputs[t], batch.mask[t]
            )  # (B, T_t, D_t), (B, T_t); not read by the prediction
            pred_t = self.decoders[k](states, src_mask, summary, tgt.shape[1])  # (B, T_t, D_t)
            trans_terms.append(masked_mse(pred_t, tgt, tgt_mask)[0])
            if k == 0:  # cycle: encode the translation with the same encoder, decode back to the source
                # The translation is read at the target's real steps, or at every step where the target is missing.
                read = tgt_mask | ~tgt_mask.any(1, keepdim=True)  # (B, T_t)
                b_states, b_summary = self.encode(0, self.in_proj[t](pred_t), read)  # (B, T_t, H), (B, H)
                back = self.back(b_states, read, b_summary, src.shape[1])  # (B, T_s, D_s)
                cycle = masked_mse(back, src, src_mask)[0]
            seq = states  # the joint representation of this level feeds the next
        joint, _ = self.predictor(seq * src_mask.unsqueeze(-1).to(seq.dtype))  # (B, T_s, H)
        h = self.drop(self.pool(joint, src_mask))  # (B, H)
        pred = self.head(h)
        c = self.cfg
        losses = {
            "label": c.label_weight * task_loss(self.task, pred, batch.target),
            "translation": c.translation_weight * torch.stack(trans_terms).sum(),
            "cycle": c.cycle_weight * cycle,
            "l2": c.l2 * self.output_layer().weight.pow(2).sum(),  # Keras l2(l2_factor) on the output kernel
        }
        extras: dict[str, Any] = {"codes": {"joint": h.detach()}}
        return Output(pred, losses, extras)
