"""The Trainer's Adam: ``torch.optim.Adam(fused=True)``, stepped without ``torch.optim``'s compiler wrappers.

``torch.optim.Optimizer`` wraps ``add_param_group``, ``zero_grad`` and ``step`` in functions that import
``torch._dynamo`` on their first call, so that ``torch.compile`` can treat them specially. That import took 0.96 s
on the 2-core machine of docs/performance.md, more than importing torch itself (0.85 s), and every training process
paid it once: each ``mfm-bench run`` and each worker of ``--jobs``. :class:`FusedAdam` is ``torch.optim.Adam``
with the undecorated ``add_param_group`` and ``zero_grad`` and a ``step`` that calls the same fused kernel
(``torch._fused_adam_``) the way ``torch.optim.adam._fused_adam`` does: the same state (``step``, ``exp_avg``,
``exp_avg_sq``), the same update bit for bit (tests/unit/test_optim.py), the same ``state_dict``, and
``isinstance(opt, torch.optim.Optimizer)`` for the schedulers. Where the fused kernel does not apply, or a torch
version lacks what this relies on, the Trainer uses ``torch.optim.Adam`` itself.
"""

from __future__ import annotations

from typing import Any

import torch


def _plain(method: Any) -> Any:
    """The function under torch's lazy ``_disable_dynamo`` wrapper (``functools.wraps`` keeps it as ``__wrapped__``);
    the wrapper itself where there is none."""
    return getattr(method, "__wrapped__", method)


class FusedAdam(torch.optim.Adam):
    """Adam with the fused kernel (as ``torch.optim.Adam(..., fused=True)``), without importing ``torch._dynamo``.

    Not for use under ``torch.compile`` of the optimizer step (the Trainer compiles the model only)."""

    add_param_group = _plain(torch.optim.Optimizer.add_param_group)
    zero_grad = _plain(torch.optim.Optimizer.zero_grad)

    @staticmethod
    def applies() -> bool:
        """Whether this torch has what :meth:`step` calls (else the Trainer builds ``torch.optim.Adam``)."""
        return hasattr(torch.optim.Adam, "_init_group") and hasattr(torch, "_fused_adam_")

    def __init__(self, params: Any, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        # no other options: step() would not honour foreach, capturable or differentiable
        super().__init__(params, lr=lr, weight_decay=weight_decay, fused=True)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            avgs: list[torch.Tensor] = []
            sqs: list[torch.Tensor] = []
            maxs: list[torch.Tensor] = []
            steps: list[torch.Tensor] = []
            self._init_group(group, params, grads, avgs, sqs, maxs, steps)
            if not params:
                continue
            beta1, beta2 = group["betas"]
            kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay", False) else torch._fused_adam_
            # the kernel takes one device and dtype per call (torch groups the same way)
            groups: dict[tuple[Any, Any], list[int]] = {}
            for k, p in enumerate(params):
                groups.setdefault((p.device, p.dtype), []).append(k)
            for idx in groups.values():
                pick = [[xs[k] for k in idx] for xs in (params, grads, avgs, sqs)]
                own_steps = [steps[k] for k in idx]
                torch._foreach_add_(own_steps, 1)
                kernel(
                    *pick,
                    [maxs[k] for k in idx] if group["amsgrad"] else [],
                    own_steps,
                    amsgrad=group["amsgrad"],
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                    grad_scale=None,
                    found_inf=None,
                )
        return loss
