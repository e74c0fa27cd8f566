"""The ``mfn`` fusion: the paper's equations, padding and missing modalities, and use through ``supervised``."""

from __future__ import annotations

import pytest
import torch

from mfm_bench.config import ConfigError
from mfm_bench.plugins.fusions.mfn import MFNConfig, MFNFusion
from mfm_bench.registry import get_registry

DIMS = {"text": 6, "audio": 3, "visual": 4}


def make(**params) -> MFNFusion:
    return get_registry().build("fusion", "mfn", DIMS, **params)


def data(B: int = 5, T: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(B, T, d, generator=g) for m, d in DIMS.items()}
    mask = {m: torch.ones(B, T, dtype=torch.bool) for m in DIMS}
    return x, mask


def reference(f: MFNFusion, x, T: int) -> torch.Tensor:
    """The paper's equations written out for window 2, no padding."""
    names = list(DIMS)
    B = x[names[0]].shape[0]
    h = {m: torch.zeros(B, f.hidden[m]) for m in names}
    c = {m: torch.zeros(B, f.hidden[m]) for m in names}
    mem = torch.zeros(B, f.cfg.memory)
    for t in range(T):
        prev = torch.cat([c[m] for m in names], 1)
        for m in names:
            h[m], c[m] = f.cells[m](x[m][:, t], (h[m], c[m]))
        cstar = torch.cat([prev, torch.cat([c[m] for m in names], 1)], 1)
        a = torch.softmax(f.att1(cstar), dim=1)
        assert torch.allclose(a.sum(1), torch.ones(B))  # a distribution over the dimensions of c*
        u = torch.tanh(f.att2(a * cstar))
        both = torch.cat([a * cstar, mem], 1)
        mem = torch.sigmoid(f.gamma1(both)) * mem + torch.sigmoid(f.gamma2(both)) * u
    return torch.cat([h[m] for m in names] + [mem], 1)


def test_matches_equations_and_output_dim() -> None:
    torch.manual_seed(0)
    f = make(hidden={"text": 5, "default": 4}, memory=6).eval()
    x, mask = data()
    out = f(x, mask)
    assert f.hidden == {"text": 5, "audio": 4, "visual": 4}
    assert out.shape == (5, f.output_dim) and f.output_dim == 5 + 4 + 4 + 6
    assert torch.allclose(out, reference(f, x, 7), atol=1e-6)
    assert MFNFusion.input_kind == "raw"


def test_left_padding_equals_cropping_and_missing_keeps_zero_state() -> None:
    torch.manual_seed(1)
    f = make().eval()
    x, mask = data(B=1, T=8)
    pad = 3
    xp = {m: v.clone() for m, v in x.items()}
    mp = {m: v.clone() for m, v in mask.items()}
    for m in DIMS:
        xp[m][:, :pad] = 0.0
        mp[m][:, :pad] = False
    cropped = f({m: v[:, pad:] for m, v in x.items()}, {m: v[:, pad:] for m, v in mask.items()})
    assert torch.allclose(f(xp, mp), cropped, atol=1e-6)
    # the original behaviour runs over the padding and gives something else
    f_orig = make(skip_padding=False)
    f_orig.load_state_dict(f.state_dict())
    assert not torch.allclose(f_orig.eval()(xp, mp), cropped, atol=1e-4)
    # a missing modality (zeros, all False) keeps a zero hidden state
    xm, mm = dict(x), dict(mask)
    xm["audio"], mm["audio"] = torch.zeros_like(x["audio"]), torch.zeros_like(mask["audio"])
    out = f(xm, mm)
    start = f.hidden["text"]
    assert torch.all(out[:, start : start + f.hidden["audio"]] == 0)


def test_window_and_vector_modality_and_errors() -> None:
    f = make(window=3)
    x, mask = data()
    assert f.att1[0].in_features == 3 * sum(f.hidden.values())
    x["audio"], mask["audio"] = x["audio"][:, 0], torch.ones(5, dtype=torch.bool)  # a vector modality
    assert f(x, mask).shape == (5, f.output_dim)
    x2, m2 = data()
    x2["visual"], m2["visual"] = x2["visual"][:, :4], m2["visual"][:, :4]
    with pytest.raises(ValueError, match="equal length"):
        f(x2, m2)
    with pytest.raises(ConfigError, match="window"):
        make(window=0)
    with pytest.raises(ValueError, match="no value for modality 'audio'"):
        MFNFusion(DIMS, MFNConfig(hidden={"text": 4}))


def test_mfn_as_supervised_baseline_trains() -> None:
    reg = get_registry()
    ds = reg.build(
        "dataset",
        "synthetic-factors",
        n_train=48,
        n_valid=8,
        n_test=8,
        dims={"text": 6, "audio": 3},
        seq_len=6,
        min_len=3,
    )
    model = reg.build("model", "supervised", ds.spec, fusion="mfn", fusion_params={"hidden": 8, "memory": 8})
    batch = ds.split("train").batch(slice(None))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = model(batch).losses["label"]
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.8 * first
    resolved = reg.resolve("model", "supervised", {"fusion": "mfn"})
    assert resolved["fusion_params"]["memory"] == 64 and resolved["fusion_params"]["window"] == 2
