"""``mfm``: the Multimodal Factorization Model (Tsai, Liang, Zadeh, Morency, Salakhutdinov; ICLR 2019).

MFM factorises multimodal data into one *discriminative* factor shared by all modalities and one *generative*
factor private to each modality (docs/mfm.md explains every part and every default, and how this differs from
the original code):

- z_a(i) = Linear(encoder_i(x_i)): one code per modality, read from that modality alone (any encoder plugin);
- z_y = Linear(fusion(x_1..x_M)): the discriminative code, read from all modalities (any fusion plugin; MFN);
- factors F_y = map_y(z_y), F_a(i) = map_i(z_a(i)) with map(z) = relu(fc2(dropout(relu(fc1(z)))));
- decoders x_hat_i = G_i([F_y, F_a(i)]) (the paper: an LSTM over the full sequence length; per modality, the
  ``decoder`` parameter picks one that writes the modality's kind, see ``mfm_decoders.py``) and label y_hat = D(F_y);
- loss = label loss + sum_i lambda_x(i) MSE(x_i, x_hat_i) + lambda_mmd sum_z MMD(z, N(0, I)).

``variant`` selects the paper's ablations; ``surrogate: true`` adds surrogate inference for missing modalities.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from mfm_bench.config import per_modality
from mfm_bench.contracts import Batch, DatasetSpec, Output
from mfm_bench.encoder_kinds import check_encoded
from mfm_bench.losses import kl_standard_normal, mmd_to_prior, reparameterise
from mfm_bench.nn import Head as LabelHead  # D: Linear-ReLU-Dropout-Linear (fy_to_y), or one Linear (M_D)
from mfm_bench.nn import as_sequence, concat_modalities, modality_present, per_sample_mse, task_loss
from mfm_bench.registry import get_registry

from .configs import VARIANTS, MFMConfig, Variant  # noqa: F401 - the config lives torch-free in configs.py
from .mfm_decoders import SEQUENCE_ENCODERS, MFMBuildError, build_decoder, check_modality_kinds, run_decoder
from .mfm_parts import CodeEncoder, FactorMap, frozen_call

SHARED = "shared"  # the key of the single generative code of the shared_generative variant


class MFM(nn.Module):
    """The Multimodal Factorization Model; see the module docstring and docs/mfm.md."""

    def __init__(self, spec: DatasetSpec, cfg: MFMConfig) -> None:
        super().__init__()
        self.spec, self.task, self.cfg = spec, spec.task, cfg
        self.names = spec.modality_names
        self._check_names()
        check_modality_kinds(spec, cfg)
        v = cfg.variant
        self.has_y = v not in ("no_discriminative", "discriminative_only")
        self.has_a = v != "no_generative"
        self.decodes = v != "discriminative_only"
        self.prior = {"discriminative_only": "none", "kl": "kl"}.get(v, "mmd")
        reg = get_registry()
        # codes {name: size} and the modalities each one reads
        self.code_inputs: dict[str, list[str]] = {}
        self.code_dims: dict[str, int] = {}
        self._build_generative(reg)
        self._build_discriminative(reg)
        # factor maps z -> F, keyed by code name
        self.maps = nn.ModuleDict(
            {
                code: FactorMap(size, self._factor_size(code), self._factor_dropout(code))
                for code, size in self.code_dims.items()
            }
        )
        self.select_on = cfg.select_on  # read by the trainer when its select_on is auto
        self._build_decoders()
        self._build_head()
        self._build_surrogates(reg)

    # -- construction ---------------------------------------------------------------------------------
    def _check_names(self) -> None:
        if len(self.names) < 2 and self.cfg.surrogate:
            raise ValueError("MFM surrogate inference needs at least two modalities")
        bad = [m for m in self.names if "." in m or m == SHARED]
        if bad:
            raise ValueError(f"MFM cannot use modality names {bad} ('.' is not allowed and {SHARED!r} is reserved)")

    def _build_generative(self, reg: Any) -> None:
        """Generative encoders: z_a(i) per modality, or one shared code (shared_generative)."""
        self.generative = nn.ModuleDict()
        if not self.has_a:
            return
        dims, variational = self.spec.input_dims, self.cfg.variant == "kl"
        keys = [SHARED] if self.cfg.variant == "shared_generative" else self.names
        for k in keys:
            in_dim = sum(dims.values()) if k == SHARED else dims[k]
            code = f"za_{k}"
            self.code_dims[code] = int(per_modality(self.cfg.za, k, "za"))
            encoder = self._encoder(reg, k, in_dim, width=self.code_dims[code])
            self.generative[k] = CodeEncoder(
                encoder,
                self.code_dims[code],
                variational,
                self._reads_sequences(k),
                name=" + ".join(dims) if k == SHARED else k,
                inner=variational and self.cfg.kl_encoder == "original",
            )
            self.code_inputs[code] = list(self.names) if k == SHARED else [k]

    def _build_discriminative(self, reg: Any) -> None:
        """The fusion giving z_y, with per-modality encoders first unless the fusion reads raw sequences."""
        cfg, dims = self.cfg, self.spec.input_dims
        if not self.has_y:
            return
        entry = reg.get("fusion", cfg.fusion)
        if getattr(entry.factory, "predicts", False):
            raise ValueError(
                f"fusion {cfg.fusion!r} predicts labels directly; MFM needs a fusion that returns a vector for z_y"
            )
        self.fusion_input = getattr(entry.factory, "input_kind", "pooled")
        images = [m.name for m in self.spec.modalities if m.kind == "image"]
        if self.fusion_input == "raw" and images:
            raise MFMBuildError(
                f"mfm: fusion {cfg.fusion!r} reads raw sequences, and modality {images[0]!r} of "
                f"{self.spec.name!r} is an image [C, H, W]; use a fusion of encoded modalities that returns a vector "
                "(fusion: concat; late and lmf predict labels, which MFM refuses) with encoder: {image: conv-image}"
            )
        self.fusion_encoders = nn.ModuleDict()
        if self.fusion_input != "raw":
            for m in self.names:
                self.fusion_encoders[m] = self._encoder(reg, m, dims[m])
            fused_dims = {m: self.fusion_encoders[m].output_dim for m in self.names}
        else:
            fused_dims = dict(dims)
        self.fusion = reg.build("fusion", cfg.fusion, fused_dims, **cfg.fusion_params)
        self.to_zy = nn.Linear(self.fusion.output_dim, cfg.zy)
        self.to_zy_logvar = nn.Linear(self.fusion.output_dim, cfg.zy) if cfg.variant == "kl" else None
        self.code_dims["zy"] = cfg.zy
        self.code_inputs["zy"] = list(self.names)

    def _build_decoders(self) -> None:
        """Decoders G_i and the factors each one reads ([F_y, F_a(i)])."""
        self.decoder_inputs: dict[str, list[str]] = {}
        self.decoders = nn.ModuleDict()
        if not self.decodes:
            return
        for m in self.names:
            own = [f"za_{SHARED}"] if self.cfg.variant == "shared_generative" else ([f"za_{m}"] if self.has_a else [])
            reads = (["zy"] if self.has_y else []) + own
            self.decoder_inputs[m] = reads
            in_dim = sum(self._factor_size(c) for c in reads)
            self.decoders[m] = build_decoder(self.spec, self.spec.modality(m), self.cfg.decoder, in_dim, self.cfg.impl)

    def _build_head(self) -> None:
        """Label head D: reads F_y, or every F_a(i) when there is no z_y."""
        cfg = self.cfg
        self.head_inputs = ["zy"] if self.has_y else [c for c in self.code_dims if c.startswith("za_")]
        head_in = sum(self._factor_size(c) for c in self.head_inputs)
        # the original: Linear(fy, fy) first (M_B too, from the concatenated F_a); M_D: one Linear
        hidden = (
            cfg.head_hidden if cfg.head_hidden is not None else (0 if cfg.variant == "discriminative_only" else cfg.fy)
        )
        self.head = LabelHead(self.task, head_in, hidden, cfg.head_dropout)

    def _build_surrogates(self, reg: Any) -> None:
        """For missing modality m, one surrogate encoder per code that reads m, from the other modalities."""
        self.surrogates = nn.ModuleDict()
        if not self.cfg.surrogate:
            return
        dims = self.spec.input_dims
        for m in self.names:
            others = [o for o in self.names if o != m]
            # one other modality: its own encoder reads it as it is (an image, too); several: concatenated features
            key = others[0] if len(others) == 1 else m
            in_dim = sum(dims[o] for o in others)
            self.surrogates[m] = nn.ModuleDict(
                {
                    code: CodeEncoder(
                        self._encoder(reg, key, in_dim, surrogate=len(others) > 1, width=self.code_dims[code]),
                        self.code_dims[code],
                        sequence_input=len(others) > 1 or self._reads_sequences(key),
                        name=" + ".join(others),
                    )
                    for code, reads in self.code_inputs.items()
                    if m in reads
                }
            )

    def _encoder_name(self, key: str, surrogate: bool = False) -> str:
        name = self.cfg.encoder
        if isinstance(name, dict):
            name = (
                name.get("default", next(iter(name.values())))
                if (surrogate or key == SHARED)
                else per_modality(name, key, "encoder")
            )
        return str(name)

    def _encoder(self, reg: Any, key: str, in_dim: int, surrogate: bool = False, width: int | None = None) -> nn.Module:
        """An encoder plugin; ``width``: the code size it serves (used under ``encoder_width: code``)."""
        name = self._encoder_name(key, surrogate)
        entry = reg.get("encoder", name)
        params = reg.own_params(entry, self.cfg.encoder_params)
        if width is not None and self.cfg.encoder_width == "code":
            if entry.config is None or "hidden" not in {f.name for f in dataclasses.fields(entry.config)}:
                raise ValueError(
                    f"encoder_width: code needs an encoder with a 'hidden' param; {name!r} has none "
                    "(set encoder_width: plugin)"
                )
            params = {**params, "hidden": width}
        return reg.build("encoder", name, in_dim, **params)

    def _reads_sequences(self, key: str) -> bool:
        """True when modality ``key``'s encoder reads sequences only (it gets a vector as one step)."""
        return self._encoder_name(key) in SEQUENCE_ENCODERS

    def _factor_dropout(self, code: str) -> float:
        return float(
            per_modality(self.cfg.factor_dropout, code if code == "zy" else code[len("za_") :], "factor_dropout")
        )

    def _factor_size(self, code: str) -> int:
        return self.cfg.fy if code == "zy" else int(per_modality(self.cfg.fa, code[len("za_") :], "fa"))

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
                    x, mk = batch.inputs[m], batch.mask[m]
                    pooled, seq = check_encoded(
                        self.fusion_encoders[m],
                        m,
                        x,
                        self.fusion_encoders[m](*(as_sequence(x, mk) if self._reads_sequences(m) else (x, mk))),
                    )
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
        if len(others) == 1:  # its own form: (B, T, D), (B, D) or (B, C, H, W)
            x, mk = batch.inputs[others[0]], batch.mask[others[0]]
        else:
            x, mk = concat_modalities(batch.inputs, batch.mask, others)  # (B, T, sum D)
        return {code: enc(x, mk)[0] for code, enc in self.surrogates[missing].items()}

    def factorize(self, codes: dict[str, torch.Tensor], frozen: bool = False) -> dict[str, torch.Tensor]:
        """Factors {code name: F [B, size]} from codes."""
        call = frozen_call if frozen else (lambda mod, *a: mod(*a))
        return {code: call(self.maps[code], z) for code, z in codes.items()}

    def decode(
        self,
        factors: dict[str, torch.Tensor],
        shapes: dict[str, tuple[int, ...]],
        frozen: bool = False,
        only: list[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Reconstructions {modality: [B, *shapes[m]]}: [B, T, D] for sequences, [B, D] for vectors, [B, C, H, W]
        for images (``shapes``: :meth:`shapes` of a batch). ``only`` restricts decoding to those modalities."""
        call = frozen_call if frozen else (lambda mod, *a: mod(*a))
        out = {}
        for m, reads in self.decoder_inputs.items():
            if only is not None and m not in only:
                continue
            f = torch.cat([factors[c] for c in reads], dim=1)  # (B, sum F)
            out[m] = run_decoder(self.decoders[m], f, shapes[m], call)  # (B, *shape)
        return out

    def predict(self, factors: dict[str, torch.Tensor], frozen: bool = False) -> torch.Tensor:
        f = torch.cat([factors[c] for c in self.head_inputs], dim=1)
        return frozen_call(self.head, f) if frozen else self.head(f)

    def shapes(self, batch: Batch) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of every modality in ``batch``: (T, D), (D,) or (C, H, W)."""
        return {m: tuple(batch.inputs[m].shape[1:]) for m in self.names}

    def recon_errors(self, x_hat: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Per-sample reconstruction MSE [B] of every modality (padding counted unless ``mask_padding``)."""
        out = {}
        for m, xh in x_hat.items():
            x, mk = as_rows(batch.inputs[m], batch.mask[m])
            out[m] = per_sample_mse(as_rows(xh, batch.mask[m])[0], x, mk if self.cfg.mask_padding else None)
        return out

    def write_artifacts(self, dataset: Any, run_dir: Any, device: Any) -> list[tuple[str, str, str, float]]:
        """Called by the runner after evaluation. On image data with a classification task: the conditional
        generation grid and its measurement (``mfm_generate``) into the run folder, returned as metric rows."""
        from .mfm_generate import write_generation

        return [("clean", "test", k, v) for k, v in write_generation(self, dataset, run_dir, device).items()]

    # -- forward ----------------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> Output:
        codes, logvars, extra_losses = self.encode(batch)
        losses: dict[str, torch.Tensor] = {**extra_losses, **self._prior_losses(codes, logvars)}
        used = dict(codes)
        if self.prior == "kl" and self.training and self.cfg.kl_sample:
            used = {k: reparameterise(z, logvars[k]) if k in logvars else z for k, z in codes.items()}
        present = {m: batch.present(m) for m in self.names}
        # training: every modality's surrogate codes (their losses need them), used where m is missing, with no
        # host read of which rows miss what; evaluation: only those of the modalities missing in this batch
        # (also at validation under select_on: total, whose total includes the surrogate terms, as the original)
        sur = (
            {m: self.surrogate_codes(batch, m) for m in self.names}
            if self.cfg.surrogate and (self.training or self.cfg.select_on == "total")
            else None
        )
        if self.cfg.surrogate:
            used = self._fill_missing(batch, used, present, sur)
        factors = self.factorize(used)
        prediction = self.predict(factors)
        losses["label"] = task_loss(self.task, prediction, batch.target)
        # codes as the decoders and head saw them: deterministic at evaluation (kl: the means), surrogates
        # in place of the codes of a missing modality
        extras: dict[str, Any] = {"codes": {k: v.detach() for k, v in used.items()}}
        if self.decodes:
            x_hat = self.decode(factors, self.shapes(batch))
            losses.update(self._recon_losses(x_hat, batch, present))
            sums = self._missing_recon_sums(x_hat, batch, present)
            if sums:
                extras["metric_sums"] = sums
        if sur is not None:
            losses.update(self._surrogate_losses(batch, codes, used, sur))
        return Output(prediction, losses, extras)

    def _prior_losses(
        self, codes: dict[str, torch.Tensor], logvars: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if self.prior == "mmd" and cfg.lambda_mmd > 0:
            fused = cfg.impl == "fast"  # one autograd node per code (losses.PriorMMD): the same value and gradient
            return {"mmd": cfg.lambda_mmd * sum(mmd_to_prior(z, cfg.kernel, fused=fused) for z in codes.values())}
        if self.prior == "kl" and cfg.lambda_kl > 0:
            kls = (kl_standard_normal(codes[k], logvars[k], cfg.kl_reduction) for k in logvars)
            return {"kl": cfg.lambda_kl * sum(kls)}
        return {}

    def _fill_missing(
        self,
        batch: Batch,
        used: dict[str, torch.Tensor],
        present: dict[str, torch.Tensor],
        sur: dict[str, dict[str, torch.Tensor]] | None,
    ) -> dict[str, torch.Tensor]:
        """Surrogate codes in place of the codes of the rows that miss a modality. With several missing, z_y
        comes from the last missing modality's surrogate."""
        used = dict(used)
        todo = self.names if sur is not None else [m for m in self.names if not bool(present[m].all())]
        for m in todo:
            miss = ~present[m]  # (B,)
            codes = sur[m] if sur is not None else self.surrogate_codes(batch, m)
            for code, z in codes.items():
                used[code] = torch.where(miss.unsqueeze(1), z.to(used[code].dtype), used[code])
        return used

    def _recon_losses(
        self, x_hat: dict[str, torch.Tensor], batch: Batch, present: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        losses = {}
        for m, err in self.recon_errors(x_hat, batch).items():
            lam = self.lambda_x(m)
            w = present[m].to(err.dtype)  # a missing modality is not a reconstruction target
            if lam > 0:
                losses[f"recon_{m}"] = lam * (err * w).sum() / w.sum().clamp_min(1.0)
        return losses

    def _missing_recon_sums(
        self, x_hat: dict[str, torch.Tensor], batch: Batch, present: dict[str, torch.Tensor]
    ) -> dict[str, tuple[torch.Tensor, int]]:
        """Metric sums of the reconstruction of modalities the evaluator removed (their truth is withheld)."""
        sums = {}
        for m, (x_true, m_true) in batch.withheld.items():
            if m not in x_hat or bool(present[m].all()):
                continue
            x_true, m_true = as_rows(x_true, m_true)
            xh = as_rows(x_hat[m], m_true)[0]
            err = per_sample_mse(xh.float(), x_true.float(), m_true)
            miss = ~present[m]
            sums[f"recon_missing_{m}"] = ((err * miss.to(err.dtype)).sum().detach(), int(miss.sum()))
        return sums

    def _surrogate_losses(
        self,
        batch: Batch,
        codes: dict[str, torch.Tensor],
        used: dict[str, torch.Tensor],
        surrogates: dict[str, dict[str, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        """Surrogate inference training. For each modality m: MSE of the surrogate codes to the full model's codes
        (detached targets), plus the label loss and m's reconstruction loss of the model run on the surrogate
        codes through the same factor maps, decoders and head with their parameters frozen. Only the surrogate
        encoders learn from these terms, so they cannot degrade the full model. ``surrogate_grad: joint`` restores
        the original's single summed loss (nothing detached or frozen: the surrogate terms also pull on the full
        model). ``surrogates``: {m: codes}."""
        cfg = self.cfg
        frozen = cfg.surrogate_grad == "frozen"  # joint: the original's one summed loss, nothing detached

        def target(z: torch.Tensor) -> torch.Tensor:
            return z.detach() if frozen else z

        mse = label = recon = None
        shapes = self.shapes(batch)
        for m in self.names:
            sur = surrogates[m]
            # targets only from samples that have m (a training sample may lack it: its codes say nothing)
            w = batch.present(m).to(torch.float32)
            term = sum(
                (((z.float() - target(codes[c]).float()) ** 2).mean(1) * w).sum() / w.sum().clamp_min(1.0)
                for c, z in sur.items()
            )
            mse = term if mse is None else mse + term
            if cfg.surrogate_task_weight > 0:
                replaced = {**{k: target(v) for k, v in used.items()}, **sur}
                factors = self.factorize(replaced, frozen=frozen)
                lt = task_loss(self.task, self.predict(factors, frozen=frozen), batch.target)
                label = lt if label is None else label + lt
                if self.decodes:  # the missing modality's reconstruction, as the original
                    err = self.recon_errors(self.decode(factors, shapes, frozen=frozen, only=[m]), batch)[m]
                    rt = self.lambda_x(m) * (err * w).sum() / w.sum().clamp_min(1.0)
                    recon = rt if recon is None else recon + rt
        out = {"surrogate": cfg.lambda_surrogate * mse}
        if label is not None:
            out["surrogate_label"] = cfg.surrogate_task_weight * label
        if recon is not None:
            out["surrogate_recon"] = cfg.surrogate_task_weight * recon
        return out


def as_rows(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A modality as [B, T, D] rows for the reconstruction error: sequences as they are, a vector as one step, an
    image [B, C, H, W] as one step of C*H*W features; with the mask [B, T]."""
    if x.dim() == 4:
        return x.flatten(1).unsqueeze(1), modality_present(mask, keepdim=True)  # (B, 1, C*H*W), (B, 1)
    return as_sequence(x, mask)
