"""``supervised``: the generic baseline; one encoder per modality, a fusion plugin, a task head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mfm_bench.config import per_modality
from mfm_bench.contracts import Batch, DatasetSpec, Output
from mfm_bench.encoder_kinds import EncoderKindError, check_encoded, check_fused, check_model, describe_modality
from mfm_bench.nn import Head, shape_prediction, task_loss
from mfm_bench.registry import get_registry

from .configs import SupervisedConfig  # noqa: F401 - the config lives torch-free in configs.py


class SupervisedModel(nn.Module):
    """Encoders -> fusion -> head, trained on the task loss alone."""

    def __init__(self, spec: DatasetSpec, cfg: SupervisedConfig) -> None:
        super().__init__()
        reg = get_registry()
        self.task = spec.task
        self.names = spec.modality_names
        self.fusion_name = cfg.fusion
        unknown = [m for m in cfg.drop if m not in self.names]
        if unknown:
            raise ValueError(f"drop names {unknown}, which the dataset lacks; its modalities are {self.names}")
        self.drop = list(cfg.drop)
        fusion_entry = reg.get("fusion", cfg.fusion)
        input_kind = getattr(fusion_entry.factory, "input_kind", "pooled")
        self.encoders = nn.ModuleDict()
        if input_kind != "raw":
            check_model(reg, spec, "supervised", cfg)  # an image given to an LSTM stops here, not in forward
            for m in self.names:
                name = per_modality(cfg.encoder, m, "encoder")
                self.encoders[m] = reg.build("encoder", name, spec.input_dims[m], **cfg.encoder_params)
            fused_dims = {m: self.encoders[m].output_dim for m in self.names}
        else:
            images = [m for m in spec.modalities if m.kind == "image"]
            if images:  # a raw fusion steps through time: an image would fail inside its forward on an assert
                raise EncoderKindError(
                    f"supervised: fusion {cfg.fusion!r} reads the raw modalities as sequences [T, D] (no encoder), "
                    f"and modality {images[0].name!r} of dataset {spec.name!r} is {describe_modality(images[0])}; "
                    "use a fusion of encoded modalities (concat, late, tfn, lmf) with an image encoder, e.g. "
                    f"encoder: {{{images[0].name}: conv-image, default: mean}}"
                )
            fused_dims = dict(spec.input_dims)
        # a fusion that predicts labels itself (late fusion) also needs the task's width
        context = {"out_dim": self.task.output_dim} if getattr(fusion_entry.factory, "predicts", False) else {}
        self.fusion = reg.build("fusion", cfg.fusion, fused_dims, context=context, **cfg.fusion_params)
        if hasattr(self.fusion, "set_task"):  # a fusion whose output depends on the task (TFN's squash into its range)
            self.fusion.set_task(self.task)
        self.input_kind = getattr(self.fusion, "input_kind", input_kind)
        self.predicts = getattr(self.fusion, "predicts", False)
        self.head = (
            None if self.predicts else Head(self.task, self.fusion.output_dim, cfg.head_hidden, cfg.head_dropout)
        )

    def _without(self, batch: Batch) -> Batch:
        inputs, mask = dict(batch.inputs), dict(batch.mask)
        for m in self.drop:
            inputs[m], mask[m] = torch.zeros_like(inputs[m]), torch.zeros_like(mask[m])
        return batch.replace(inputs=inputs, mask=mask)

    def forward(self, batch: Batch) -> Output:
        if self.drop:
            batch = self._without(batch)
        if self.input_kind == "raw":
            feats = batch.inputs
        else:
            encoded = {  # a pooled-only or too-narrow encoder is named here, not as a shape error in the fusion
                m: check_encoded(self.encoders[m], m, batch.inputs[m], self.encoders[m](batch.inputs[m], batch.mask[m]))
                for m in self.names
            }
            feats = {m: e[0] if self.input_kind == "pooled" else e[1] for m, e in encoded.items()}
        fused = self.fusion(feats, batch.mask)  # (B, H) or (B, out) for predicting fusions
        extras: dict[str, Any] = {}
        if isinstance(fused, tuple):  # fusions may return (fused, extra losses dict)
            fused, extra_losses = fused
        else:
            extra_losses = {}
        # a fusion of another width is named here, not as a shape error in the head
        fused = check_fused(self.fusion, fused, len(batch), self.task.output_dim if self.predicts else None)
        pred = shape_prediction(self.task, fused) if self.predicts else self.head(fused)
        losses = {"label": task_loss(self.task, pred, batch.target), **extra_losses}
        return Output(pred, losses, extras)
