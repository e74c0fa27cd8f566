"""``mfm``: the Multimodal Factorization Model (Tsai, Liang, Zadeh, Morency, Salakhutdinov; ICLR 2019).

MFM factorises multimodal data into one *discriminative* factor shared by all modalities and one *generative*
factor private to each modality (docs/mfm.md explains every part and every default, and how this differs from
the original code):

- z_a(i) = Linear(encoder_i(x_i)): one code per modality, read from that modality alone (any encoder plugin);
- z_y = Linear(fusion(x_1..x_M)): the discriminative code, read from all modalities (any fusion plugin; MFN);
- factors F_y = map_y(z_y), F_a(i) = map_i(z_a(i)) with map(z) = relu(fc2(dropout(relu(fc1(z)))));
- decoders x_hat_i = G_i([F_y, F_a(i)]) (LSTM over the full sequence length) and label y_hat = D(F_y);
- loss = label loss + sum_i lambda_x(i) MSE(x_i, x_hat_i) + lambda_mmd sum_z MMD(z, N(0, I)).

``variant`` selects the paper's ablations; ``surrogate: true`` adds surrogate inference for missing modalities.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mfm_bench.config import per_modality
from mfm_bench.contracts import Batch, DatasetSpec, Output
from mfm_bench.losses import kl_standard_normal, mmd_to_prior, reparameterise
from mfm_bench.nn import Head as LabelHead  # D: Linear-ReLU-Dropout-Linear (fy_to_y), or one Linear (M_D)
from mfm_bench.nn import as_sequence, concat_modalities, per_sample_mse, task_loss
from mfm_bench.registry import get_registry

from .mfm_parts import CodeEncoder, FactorMap, SequenceDecoder, frozen_call
from .configs import Variant, VARIANTS, MFMConfig  # noqa: F401 - the config lives torch-free in configs.py

SHARED = "shared"  # the key of the single generative code of the shared_generative variant


class MFM(nn.Module):
    """The Multimodal Factorization Model; see the module docstring and docs/mfm.md."""

    def __init__(self, spec: DatasetSpec, cfg: MFMConfig) -> None:
        super().__init__()
        reg = get_registry()
        self.spec, self.task, self.cfg = spec, spec.task, cfg
        self.names = spec.modality_names
        if len(self.names) < 2 and cfg.surrogate:
            raise ValueError("MFM surrogate inference needs at least two modalities")
        bad = [m for m in self.names if "." in m or m == SHARED]
        if bad:
            raise ValueError(f"MFM cannot use modality names {bad} ('.' is not allowed and {SHARED!r} is reserved)")
        v = cfg.variant
        self.has_y = v not in ("no_discriminative", "discriminative_only")
        self.has_a = v != "no_generative"
        self.decodes = v != "discriminative_only"
        self.prior = {"discriminative_only": "none", "kl": "kl"}.get(v, "mmd")
        variational = v == "kl"
        dims = spec.input_dims

        # codes and the modalities each one reads
        self.code_inputs: dict[str, list[str]] = {}
        code_dims: dict[str, int] = {}
        self.generative = nn.ModuleDict()
        if self.has_a:
            keys = [SHARED] if v == "shared_generative" else self.names
            for k in keys:
                in_dim = sum(dims.values()) if k == SHARED else dims[k]
                code_dims[f"za_{k}"] = int(per_modality(cfg.za, k, "za"))
                self.generative[k] = CodeEncoder(self._encoder(reg, k, in_dim), code_dims[f"za_{k}"], variational)
                self.code_inputs[f"za_{k}"] = list(self.names) if k == SHARED else [k]
        if self.has_y:
            entry = reg.get("fusion", cfg.fusion)
            if getattr(entry.factory, "predicts", False):
                raise ValueError(f"fusion {cfg.fusion!r} predicts labels directly; MFM needs a fusion that returns a vector for z_y")
            self.fusion_input = getattr(entry.factory, "input_kind", "pooled")
            self.fusion_encoders = nn.ModuleDict()
            if self.fusion_input != "raw":
                for m in self.names:
                    self.fusion_encoders[m] = self._encoder(reg, m, dims[m])
                fused_dims = {m: self.fusion_encoders[m].output_dim for m in self.names}
            else:
                fused_dims = dict(dims)
            self.fusion = reg.build("fusion", cfg.fusion, fused_dims, **cfg.fusion_params)
            self.to_zy = nn.Linear(self.fusion.output_dim, cfg.zy)
            self.to_zy_logvar = nn.Linear(self.fusion.output_dim, cfg.zy) if variational else None
            code_dims["zy"] = cfg.zy
            self.code_inputs["zy"] = list(self.names)
        self.code_dims = code_dims

        # factor maps z -> F, keyed by code name
        self.maps = nn.ModuleDict({code: FactorMap(code_dims[code], self._factor_size(code), cfg.factor_dropout)
                                   for code in code_dims})
        # decoders G_i and the factors each one reads
        self.decoder_inputs: dict[str, list[str]] = {}
        self.decoders = nn.ModuleDict()
        if self.decodes:
            for m in self.names:
                own = [f"za_{SHARED}"] if v == "shared_generative" else ([f"za_{m}"] if self.has_a else [])
                reads = (["zy"] if self.has_y else []) + own
                self.decoder_inputs[m] = reads
                self.decoders[m] = SequenceDecoder(sum(self._factor_size(c) for c in reads), dims[m])
        # label head D: reads F_y, or every F_a(i) when there is no z_y
        self.head_inputs = ["zy"] if self.has_y else [c for c in code_dims if c.startswith("za_")]
        head_in = sum(self._factor_size(c) for c in self.head_inputs)
        # the original: Linear(fy, fy) first (M_B too, from the concatenated F_a); M_D: one Linear
        hidden = cfg.head_hidden if cfg.head_hidden is not None else (0 if v == "discriminative_only" else cfg.fy)
        self.head = LabelHead(self.task, head_in, hidden, cfg.head_dropout)

        # surrogate encoders: for missing modality m, one per code that reads m, from the other modalities
        self.surrogates = nn.ModuleDict()
        if cfg.surrogate:
            for m in self.names:
                others = [o for o in self.names if o != m]
                in_dim = sum(dims[o] for o in others)
                self.surrogates[m] = nn.ModuleDict({
                    code: CodeEncoder(self._encoder(reg, m, in_dim, surrogate=True), code_dims[code])
                    for code, reads in self.code_inputs.items() if m in reads
                })

    # -- construction helpers -------------------------------------------------------------------------
    def _encoder(self, reg: Any, key: str, in_dim: int, surrogate: bool = False) -> nn.Module:
        name = self.cfg.encoder
        if isinstance(name, dict):
            name = name.get("default", next(iter(name.values()))) if (surrogate or key == SHARED) else \
                per_modality(name, key, "encoder")
        return reg.build("encoder", name, in_dim, **self.cfg.encoder_params)

    def _factor_size(self, code: str) -> int:
        return self.cfg.fy if code == "zy" else int(per_modality(self.cfg.fa, code[len("za_"):], "fa"))

    def lambda_x(self, m: str) -> float:
        return float(per_modality(self.cfg.lambda_x, m, "lambda_x"))

    # -- the model, piece by piece (also used by mfm_explain) -----------------------------------
    def encode(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Codes {name: [B, Z]} (means for the kl variant), their log-variances (kl only) and extra fusion losses."""
        codes: dict[str, torch.Tensor] = {}
        logvars: dict[str, torch.Tensor] = {}
        extra: dict[str, torch.Tensor] = {}
        for k, enc in self.generative.items():
            if k == SHARED:
                x, mk = concat_modalities(batch.inputs, batch.mask, self.names)
            else:
                x, mk = batch.inputs[k], batch.mask[k]
            codes[f"za_{k}"], lv = enc(x, mk)
            if lv is not None:
                logvars[f"za_{k}"] = lv
        if self.has_y:
            if self.fusion_input == "raw":
                feats = batch.inputs
            else:
                feats = {}
                for m in self.names:
                    pooled, seq = self.fusion_encoders[m](*as_sequence(batch.inputs[m], batch.mask[m]))
                    feats[m] = pooled if self.fusion_input == "pooled" else seq
            fused = self.fusion(feats, batch.mask)  # (B, H)
            if isinstance(fused, tuple):  # fusions may return (fused, extra losses)
                fused, extra = fused
            codes["zy"] = self.to_zy(fused)
            if self.to_zy_logvar is not None:
                logvars["zy"] = self.to_zy_logvar(fused)
        return codes, logvars, extra

    def surrogate_codes(self, batch: Batch, missing: str) -> dict[str, torch.Tensor]:
        """Codes that read modality ``missing``, predicted from the other modalities only."""
        others = [o for o in self.names if o != missing]
        x, mk = concat_modalities(batch.inputs, batch.mask, others)  # (B, T, sum D)
        return {code: enc(x, mk)[0] for code, enc in self.surrogates[missing].items()}

    def factorize(self, codes: dict[str, torch.Tensor], frozen: bool = False) -> dict[str, torch.Tensor]:
        """Factors {code name: F [B, size]} from codes."""
        call = frozen_call if frozen else (lambda mod, *a: mod(*a))
        return {code: call(self.maps[code], z) for code, z in codes.items()}

    def decode(self, factors: dict[str, torch.Tensor], steps: dict[str, int], frozen: bool = False,
               only: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Reconstructions {modality: [B, T, D] (or [B, D] for vector modalities)}; ``steps[m]`` = T (0: vector).
        ``only`` restricts decoding to those modalities."""
        call = frozen_call if frozen else (lambda mod, *a: mod(*a))
        out = {}
        for m, reads in self.decoder_inputs.items():
            if only is not None and m not in only:
                continue
            f = torch.cat([factors[c] for c in reads], dim=1)  # (B, sum F)
            x_hat = call(self.decoders[m], f, max(steps[m], 1))  # (B, T, D)
            out[m] = x_hat.squeeze(1) if steps[m] == 0 else x_hat
        return out

    def predict(self, factors: dict[str, torch.Tensor], frozen: bool = False) -> torch.Tensor:
        f = torch.cat([factors[c] for c in self.head_inputs], dim=1)
        return frozen_call(self.head, f) if frozen else self.head(f)

    def steps(self, batch: Batch) -> dict[str, int]:
        return {m: (batch.inputs[m].shape[1] if batch.inputs[m].dim() == 3 else 0) for m in self.names}

    def recon_errors(self, x_hat: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Per-sample reconstruction MSE [B] of every modality (padding counted unless ``mask_padding``)."""
        out = {}
        for m, xh in x_hat.items():
            x, mk = as_sequence(batch.inputs[m], batch.mask[m])
            out[m] = per_sample_mse(xh if xh.dim() == 3 else xh.unsqueeze(1), x, mk if self.cfg.mask_padding else None)
        return out

    # -- forward ----------------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> Output:
        cfg = self.cfg
        codes, logvars, extra_losses = self.encode(batch)
        losses: dict[str, torch.Tensor] = dict(extra_losses)
        if self.prior == "mmd" and cfg.lambda_mmd > 0:
            losses["mmd"] = cfg.lambda_mmd * sum(mmd_to_prior(z, cfg.kernel) for z in codes.values())
        elif self.prior == "kl" and cfg.lambda_kl > 0:
            losses["kl"] = cfg.lambda_kl * sum(kl_standard_normal(codes[k], logvars[k]) for k in logvars)
        used = dict(codes)
        if self.prior == "kl" and self.training:
            used = {k: reparameterise(z, logvars[k]) if k in logvars else z for k, z in codes.items()}

        present = {m: batch.present(m) for m in self.names}
        missing = [m for m in self.names if not bool(present[m].all())]
        if cfg.surrogate and missing:
            for m in missing:  # with several missing, z_y comes from the last missing modality's surrogate
                miss = ~present[m]  # (B,)
                for code, z in self.surrogate_codes(batch, m).items():
                    used[code] = torch.where(miss.unsqueeze(1), z.to(used[code].dtype), used[code])

        factors = self.factorize(used)
        prediction = self.predict(factors)
        losses["label"] = task_loss(self.task, prediction, batch.target)
        # codes as the decoders and head saw them: deterministic at evaluation (kl: the means), surrogates
        # in place of the codes of a missing modality
        extras: dict[str, Any] = {"codes": {k: v.detach() for k, v in used.items()}}
        if self.decodes:
            steps = self.steps(batch)
            x_hat = self.decode(factors, steps)
            for m, err in self.recon_errors(x_hat, batch).items():
                lam = self.lambda_x(m)
                w = present[m].to(err.dtype)  # a missing modality is not a reconstruction target
                if lam > 0:
                    losses[f"recon_{m}"] = lam * (err * w).sum() / w.sum().clamp_min(1.0)
            withheld = batch.withheld
            sums = {}
            for m in missing:
                if m in withheld:  # the true inputs of a modality the evaluator removed: (x, mask)
                    x_true, m_true = as_sequence(*withheld[m])
                    xh = x_hat[m] if x_hat[m].dim() == 3 else x_hat[m].unsqueeze(1)
                    err = per_sample_mse(xh.float(), x_true.float(), m_true)
                    miss = ~present[m]
                    sums[f"recon_missing_{m}"] = ((err * miss.to(err.dtype)).sum().detach(), int(miss.sum()))
            if sums:
                extras["metric_sums"] = sums
        if cfg.surrogate and self.training:
            losses.update(self._surrogate_losses(batch, codes, used))
        return Output(prediction, losses, extras)

    def _surrogate_losses(self, batch: Batch, codes: dict[str, torch.Tensor],
                          used: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Surrogate inference training. For each modality m: MSE of the surrogate codes to the full model's codes
        (detached targets), plus the label loss and m's reconstruction loss of the model run on the surrogate
        codes through the same factor maps, decoders and head with their parameters frozen. Only the surrogate
        encoders learn from these terms, so they cannot degrade the full model (the original sums everything
        into one loss, so there the surrogate terms also pull on the full model)."""
        cfg = self.cfg
        mse = label = recon = None
        steps = self.steps(batch)
        for m in self.names:
            sur = self.surrogate_codes(batch, m)
            # targets only from samples that have m (a training sample may lack it: its codes say nothing)
            w = batch.present(m).to(torch.float32)
            term = sum((((z.float() - codes[c].detach().float()) ** 2).mean(1) * w).sum() / w.sum().clamp_min(1.0)
                       for c, z in sur.items())
            mse = term if mse is None else mse + term
            if cfg.surrogate_task_weight > 0:
                replaced = {**{k: v.detach() for k, v in used.items()}, **sur}
                factors = self.factorize(replaced, frozen=True)
                lt = task_loss(self.task, self.predict(factors, frozen=True), batch.target)
                label = lt if label is None else label + lt
                if self.decodes:  # the missing modality's reconstruction, as the original
                    err = self.recon_errors(self.decode(factors, steps, frozen=True, only=[m]), batch)[m]
                    rt = self.lambda_x(m) * (err * w).sum() / w.sum().clamp_min(1.0)
                    recon = rt if recon is None else recon + rt
        out = {"surrogate": cfg.lambda_surrogate * mse}
        if label is not None:
            out["surrogate_label"] = cfg.surrogate_task_weight * label
        if recon is not None:
            out["surrogate_recon"] = cfg.surrogate_task_weight * recon
        return out
