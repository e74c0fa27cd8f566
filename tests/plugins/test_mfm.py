"""MFM: config, every variant, any modalities, the loss terms, surrogate inference and missing modalities."""

from __future__ import annotations

import pytest
import torch

from mfm_bench.config import ConfigError
from mfm_bench.contracts import Batch, DatasetSpec, Modality, Task
from mfm_bench.plugins.models.mfm import VARIANTS
from mfm_bench.registry import get_registry

TINY = dict(
    zy=6,
    za=4,
    fy=5,
    fa=3,
    encoder_params={"hidden": 6},
    factor_dropout=0.0,
    encoder_width="plugin",
    fusion_params={
        "hidden": 4,
        "memory": 4,
        "attention_hidden": 4,
        "memory_hidden": 4,
        "gamma_hidden": 4,
        "attention_dropout": 0.0,
        "memory_dropout": 0.0,
        "gamma_dropout": 0.0,
    },
)


def dataset(dims=None, task="regression", n=24, T=6):
    return get_registry().build(
        "dataset",
        "synthetic-factors",
        n_train=n,
        n_valid=8,
        n_test=8,
        dims=dims or {"text": 6, "audio": 3, "visual": 4},
        seq_len=T,
        min_len=3,
        task=task,
    )


def mfm(spec, **params):
    return get_registry().build("model", "mfm", spec, **{**TINY, **params})


def drop(batch: Batch, m: str, rows=None) -> Batch:
    """The evaluator's `missing: m` condition (zeros, all-False mask), on all rows or on ``rows`` only; keeps the
    truth."""
    rows = slice(None) if rows is None else rows
    inputs, mask = dict(batch.inputs), dict(batch.mask)
    inputs[m], mask[m] = batch.inputs[m].clone(), batch.mask[m].clone()
    inputs[m][rows] = 0.0
    mask[m][rows] = False
    out = batch.replace(inputs=inputs, mask=mask)
    out.withheld = {m: (batch.inputs[m], batch.mask[m])}
    return out


def test_config_defaults_and_nesting() -> None:
    reg = get_registry()
    r = reg.resolve("model", "mfm", {})
    # preset: default = the original's best MOSI setting (best_acc), resolved into the params
    assert r["preset"] == "default" and r["variant"] == "full" and r["fusion"] == "mfn" and r["kernel"] == "original"
    assert r["lambda_mmd"] == 1.0 and r["zy"] == 32 and r["fy"] == 16
    # shared (the shared_generative code) takes the text settings, as the original M_A
    assert r["za"] == {"text": 32, "audio": 8, "visual": 80, "default": 80, "shared": 32}
    assert r["fa"] == {"text": 88, "audio": 8, "visual": 8, "default": 8, "shared": 88}
    assert r["lambda_x"] == {"text": 1.0, "audio": 0.01, "visual": 0.5, "default": 0.5}
    assert r["fusion_params"]["memory"] == 64 and r["fusion_params"]["window"] == 2  # resolved against mfn
    assert r["fusion_params"]["hidden"]["text"] == 88 and r["fusion_params"]["skip_padding"] is True
    assert r["encoder_params"]["hidden"] == 32  # resolved against lstm
    with pytest.raises(ConfigError, match="variant"):
        reg.resolve("model", "mfm", {"variant": "nope"})
    with pytest.raises(ConfigError, match="za"):
        reg.resolve("model", "mfm", {"za": {"text": -1}})
    with pytest.raises(ConfigError, match="fusion"):
        reg.resolve("model", "mfm", {"fusion": "mfnn"})
    with pytest.raises(ConfigError, match="kernel"):
        reg.resolve("model", "mfm", {"kernel": "gauss"})


def test_default_model_has_mosi_sizes() -> None:
    ds = dataset()
    model = get_registry().build("model", "mfm", ds.spec)
    assert model.code_dims == {"za_text": 32, "za_audio": 8, "za_visual": 80, "zy": 32}
    assert model.decoders["text"].cell.hidden_size == 16 + 88 and model.decoders["audio"].cell.hidden_size == 16 + 8
    assert model.lambda_x("audio") == 0.01 and model.lambda_x("visual") == 0.5


EXPECTED = {
    "full": ({"zy", "za_text", "za_audio", "za_visual"}, {"mmd", "recon_text"}),
    "shared_generative": ({"zy", "za_shared"}, {"mmd", "recon_text"}),
    "no_discriminative": ({"za_text", "za_audio", "za_visual"}, {"mmd", "recon_text"}),
    "no_generative": ({"zy"}, {"mmd", "recon_text"}),
    "discriminative_only": ({"za_text", "za_audio", "za_visual"}, set()),
    "kl": ({"zy", "za_text", "za_audio", "za_visual"}, {"kl", "recon_text"}),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains(variant: str) -> None:
    torch.manual_seed(0)
    ds = dataset()
    model = mfm(ds.spec, variant=variant, surrogate=variant in ("full", "kl", "shared_generative", "no_generative"))
    batch = ds.split("train").batch(slice(None))
    codes, terms = EXPECTED[variant]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = last = None
    for _ in range(15):
        out = model(batch)
        assert set(out.extras["codes"]) == codes
        assert terms <= set(out.losses) and "label" in out.losses
        if variant == "discriminative_only":
            assert set(out.losses) == {"label"} and len(model.decoders) == 0
        loss = sum(out.losses.values())
        first = first if first is not None else float(loss.detach())
        last = float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert last < first, (variant, first, last)
    model.eval()
    with torch.no_grad():
        a, b = model(batch), model(batch)
    assert a.prediction.shape == (len(batch),)
    for k in codes:  # deterministic codes at evaluation (the kl variant's means)
        assert torch.equal(a.extras["codes"][k], b.extras["codes"][k])


def test_kl_variant_samples_in_training_only() -> None:
    ds = dataset()
    model = mfm(ds.spec, variant="kl")
    batch = ds.split("train").batch(slice(0, 8))
    assert model.to_zy_logvar is not None and model.generative["text"].to_logvar is not None
    model.train()
    torch.manual_seed(0)
    p1 = model(batch).prediction
    p2 = model(batch).prediction
    assert not torch.allclose(p1, p2)


def test_kl_variant_options_restore_the_original() -> None:
    """kl_sample: false feeds the means in training (the original MFM_KL never samples); kl_reduction: sum sums
    the KL over the batch (the original loss_KLD), B times the batch mean."""
    ds = dataset()
    batch = ds.split("train").batch(slice(0, 8))
    torch.manual_seed(0)
    model = mfm(ds.spec, variant="kl", kl_sample=False).train()
    p1 = model(batch).prediction
    p2 = model(batch).prediction
    assert torch.equal(p1, p2)
    torch.manual_seed(0)
    summed = mfm(ds.spec, variant="kl", kl_reduction="sum").train()
    torch.manual_seed(0)
    mean = mfm(ds.spec, variant="kl").train()
    kl_sum, kl_mean = summed(batch).losses["kl"].detach(), mean(batch).losses["kl"].detach()
    assert float(kl_sum) == pytest.approx(8 * float(kl_mean), rel=1e-5)
    with pytest.raises(ConfigError):
        mfm(ds.spec, variant="kl", kl_reduction="batch")


@pytest.mark.parametrize("dims", [{"a": 3, "b": 2}, {"m1": 3, "m2": 2, "m3": 4, "m4": 2, "m5": 5}])
def test_any_number_and_names_of_modalities(dims) -> None:
    ds = dataset(dims=dims, task="classification")
    model = mfm(ds.spec, surrogate=True, za={"default": 4}, lambda_x=1.0)
    batch = ds.split("train").batch(slice(None))
    out = model(batch)
    assert out.prediction.shape == (len(batch), 2)
    assert set(out.extras["codes"]) == {"zy", *(f"za_{m}" for m in dims)}
    sum(out.losses.values()).backward()


def test_vector_and_sequence_modalities() -> None:
    spec = DatasetSpec("mixed", (Modality("seq", 4), Modality("vec", 3, "vector")), Task("regression", range=(-3, 3)))
    B, T = 6, 5
    batch = Batch(
        {"seq": torch.randn(B, T, 4), "vec": torch.randn(B, 3)},
        {"seq": torch.ones(B, T, dtype=torch.bool), "vec": torch.ones(B, 1, dtype=torch.bool)},
        torch.randn(B),
        [str(i) for i in range(B)],
    )
    model = mfm(spec, surrogate=True)
    out = model(batch)
    assert {"recon_seq", "recon_vec"} <= set(out.losses)
    x_hat = model.decode(model.factorize(model.encode(batch)[0]), model.shapes(batch))
    assert x_hat["seq"].shape == (B, T, 4) and x_hat["vec"].shape == (B, 3)
    sum(out.losses.values()).backward()


def test_loss_terms_are_weighted_as_documented() -> None:
    torch.manual_seed(0)
    ds = dataset()
    batch = ds.split("train").batch(slice(None))
    model = mfm(ds.spec, lambda_x={"audio": 0.25, "default": 2.0}, lambda_mmd=3.0).eval()
    with torch.no_grad():
        out = model(batch)
        x_hat = model.decode(model.factorize(model.encode(batch)[0]), model.shapes(batch))
    for m, lam in (("text", 2.0), ("audio", 0.25), ("visual", 2.0)):
        # the original: MSE over every element, padding included
        assert float(out.losses[f"recon_{m}"]) == pytest.approx(
            lam * float(((x_hat[m] - batch.inputs[m]) ** 2).mean()), rel=1e-5
        )
    masked = mfm(ds.spec, lambda_x=1.0, mask_padding=True).eval()
    masked.load_state_dict(model.state_dict())
    with torch.no_grad():
        out2 = masked(batch)
    real = batch.mask["text"]  # per-sample mean over real steps, then mean over samples
    err = ((x_hat["text"] - batch.inputs["text"]) ** 2).mean(-1)
    ref = ((err * real).sum(1) / real.sum(1)).mean()
    assert float(out2.losses["recon_text"]) == pytest.approx(float(ref), rel=1e-5)
    zero = mfm(ds.spec, lambda_mmd=0.0, lambda_x={"audio": 0.0, "default": 1.0})
    out3 = zero(batch)
    assert "mmd" not in out3.losses and "recon_audio" not in out3.losses


def test_other_fusions_and_encoders_serve() -> None:
    ds = dataset()
    batch = ds.split("train").batch(slice(None))
    model = mfm(
        ds.spec,
        fusion="concat",
        fusion_params={"hidden": 8},
        encoder={"text": "gru", "default": "mean"},
        encoder_params={"hidden": 5},
    )
    assert type(model.generative["text"].encoder).__name__ == "GRUEncoder"
    assert type(model.generative["audio"].encoder).__name__ == "MeanEncoder"
    sum(model(batch).losses.values()).backward()
    with pytest.raises(ValueError, match="predicts labels"):
        mfm(ds.spec, fusion="late", fusion_params={})


def test_surrogate_losses_do_not_touch_the_full_model() -> None:
    torch.manual_seed(0)
    ds = dataset()
    model = mfm(ds.spec, surrogate=True).train()
    out = model(ds.split("train").batch(slice(None)))
    assert {"surrogate", "surrogate_label", "surrogate_recon"} <= set(out.losses)
    sur_total = out.losses["surrogate"] + out.losses["surrogate_label"] + out.losses["surrogate_recon"]
    shared = [(n, p) for n, p in model.named_parameters() if not n.startswith("surrogates.")]
    own = [p for n, p in model.named_parameters() if n.startswith("surrogates.")]
    grads = torch.autograd.grad(sur_total, [p for _, p in shared] + own, allow_unused=True, retain_graph=True)
    for (name, _), g in zip(shared, grads[: len(shared)]):
        assert g is None or torch.all(g == 0), name
    assert all(g is not None for g in grads[len(shared) :])
    assert sum(float(g.abs().sum()) for g in grads[len(shared) :]) > 0
    # and the surrogate encoders read the other modalities only: audio's surrogate ignores audio
    model.eval()
    b = ds.split("train").batch(slice(None))
    z1 = model.surrogate_codes(b, "audio")
    b2 = b.replace(inputs={**b.inputs, "audio": torch.randn_like(b.inputs["audio"])})
    z2 = model.surrogate_codes(b2, "audio")
    assert set(z1) == {"za_audio", "zy"} and all(torch.equal(z1[k], z2[k]) for k in z1)


def test_surrogate_grad_joint_is_the_original_single_loss() -> None:
    """surrogate_grad: joint (the original MFM_missing): the surrogate terms also train the full model, through
    undetached targets and unfrozen factor maps, decoders and head; the loss values equal those of frozen."""
    ds = dataset()
    b = ds.split("train").batch(slice(None))
    torch.manual_seed(0)
    frozen = mfm(ds.spec, surrogate=True).train()
    torch.manual_seed(0)
    joint = mfm(ds.spec, surrogate=True, surrogate_grad="joint").train()
    torch.manual_seed(1)
    out_f = frozen(b)
    torch.manual_seed(1)
    out_j = joint(b)
    terms = ("surrogate", "surrogate_label", "surrogate_recon")
    for k in terms:
        assert float(out_j.losses[k].detach()) == pytest.approx(float(out_f.losses[k].detach()), rel=1e-6), k
    shared = [(n, p) for n, p in joint.named_parameters() if not n.startswith("surrogates.")]
    grads = torch.autograd.grad(sum(out_j.losses[k] for k in terms), [p for _, p in shared], allow_unused=True)
    moved = {n.split(".")[0] for (n, _), g in zip(shared, grads) if g is not None and float(g.abs().sum()) > 0}
    assert {"head", "maps", "to_zy", "generative", "decoders", "fusion"} <= moved
    with pytest.raises(ConfigError):
        mfm(ds.spec, surrogate=True, surrogate_grad="both")


def test_missing_modality_uses_surrogates_per_sample_and_reports_reconstruction() -> None:
    torch.manual_seed(0)
    ds = dataset()
    batch = ds.split("train").batch(slice(None))
    model = mfm(ds.spec, surrogate=True).eval()
    rows = torch.arange(len(batch)) % 2 == 0  # half the samples lose the visual modality
    dropped = drop(batch, "visual", rows)
    with torch.no_grad():
        out = model(dropped)
        sur = model.surrogate_codes(dropped, "visual")
        full = model(batch)
    codes = out.extras["codes"]
    assert torch.allclose(codes["za_visual"][rows], sur["za_visual"][rows])
    assert torch.allclose(codes["zy"][rows], sur["zy"][rows])
    assert torch.allclose(codes["za_visual"][~rows], full.extras["codes"]["za_visual"][~rows])
    assert torch.allclose(codes["za_text"], full.extras["codes"]["za_text"])
    s, n = out.extras["metric_sums"]["recon_missing_visual"]
    assert n == int(rows.sum())
    with torch.no_grad():
        x_hat = model.decode(model.factorize(codes), model.shapes(batch))["visual"]
    real = batch.mask["visual"]
    err = ((x_hat - batch.inputs["visual"]) ** 2).mean(-1)
    per = (err * real).sum(1) / real.sum(1)
    assert float(s) == pytest.approx(float(per[rows].sum()), rel=1e-5)
    # without surrogates the model still runs on the zeroed modality (the default path for every model)
    plain = mfm(ds.spec).eval()
    with torch.no_grad():
        o = plain(drop(batch, "text"))
    assert torch.isfinite(o.prediction).all() and "recon_missing_text" in o.extras["metric_sums"]
    assert "recon_text" not in o.losses or float(o.losses["recon_text"]) == 0.0


@pytest.mark.parametrize("variant", ["full", "kl"])
def test_bf16_autocast_keeps_losses_in_float32(variant: str) -> None:
    ds = dataset()
    batch = ds.split("train").batch(slice(None))
    model = mfm(ds.spec, variant=variant, surrogate=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in out.losses.values()), {
        k: v.dtype for k, v in out.losses.items()
    }
    sum(out.losses.values()).backward()


def test_surrogate_targets_skip_training_samples_that_lack_the_modality() -> None:
    torch.manual_seed(0)
    ds = dataset()
    full = ds.split("train").batch(slice(None))
    rows = torch.arange(len(full)) < 10
    batch = drop(full, "audio", rows)
    model = mfm(ds.spec, surrogate=True, lambda_surrogate=2.0).train()
    out = model(batch)
    codes = model.encode(batch)[0]
    expect = 0.0
    for m in ("text", "audio", "visual"):
        keep = batch.present(m)
        for c, z in model.surrogate_codes(batch, m).items():
            expect = expect + ((z - codes[c]) ** 2).mean(1)[keep].mean()
    assert float(out.losses["surrogate"].detach()) == pytest.approx(2.0 * float(expect.detach()), rel=1e-5)
