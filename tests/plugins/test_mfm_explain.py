"""MFM interpretation: reconstruction saliency w.r.t. F_y and F_a(i), the CSV and heat-map, and the command."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from mfm_bench.cli import main
from mfm_bench.plugins.models.mfm_explain import explain_run, reconstruction_saliency, save_saliency
from mfm_bench.registry import get_registry

TINY = dict(zy=6, za=4, fy=5, fa=3, encoder_params={"hidden": 6}, fusion_params={"hidden": 4, "memory": 4})
DS = dict(n_train=16, n_valid=8, n_test=12, dims={"text": 5, "audio": 3}, seq_len=6, min_len=3)


def test_saliency_matches_autograd_and_saves(tmp_path) -> None:
    torch.manual_seed(0)
    reg = get_registry()
    ds = reg.build("dataset", "synthetic-factors", **DS)
    model = reg.build("model", "mfm", ds.spec, **TINY)
    test = ds.split("test")
    rows = reconstruction_saliency(model, test, batch_size=5)  # several batches
    assert len(rows) == 2 * 6 * 2  # modalities x steps x factors
    assert {r["factor"] for r in rows} == {"F_y", "F_a(text)", "F_a(audio)"}
    assert all(r["grad_norm"] >= 0 for r in rows)
    # independent check of one entry: text, last step, F_y
    b = test.batch(slice(None))
    with torch.no_grad():
        f = model.factorize(model.encode(b)[0])
    fy = f["zy"].clone().requires_grad_(True)
    x_hat = model.decoders["text"](torch.cat([fy, f["za_text"]], 1), 6)
    norms = []
    for i in range(len(b)):
        (g,) = torch.autograd.grad(x_hat[i, 5].sum(), fy, retain_graph=True)
        norms.append(g[i].norm())
    expect = float(torch.stack(norms)[b.mask["text"][:, 5]].mean())
    got = next(r["grad_norm"] for r in rows if r["modality"] == "text" and r["step"] == 5 and r["factor"] == "F_y")
    assert got == pytest.approx(expect, rel=1e-4)
    csv_path, png_path = save_saliency(rows, tmp_path / "out")
    with open(csv_path) as fh:
        read = list(csv.DictReader(fh))
    assert len(read) == len(rows) and set(read[0]) == {"modality", "step", "factor", "grad_norm"}
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_command_on_a_run_folder(tmp_path, capsys) -> None:
    reg = get_registry()
    params = {**TINY, "variant": "no_discriminative"}
    ds = reg.build("dataset", "synthetic-factors", **DS)
    model = reg.build("model", "mfm", ds.spec, **params)
    run = tmp_path / "runs" / "abc123"
    run.mkdir(parents=True)
    (run / "config.json").write_text(
        json.dumps(
            {
                "dataset": {"name": "synthetic-factors", "params": DS},
                "model": {"name": "mfm", "params": params},
                "seed": 0,
            }
        )
    )
    torch.save(model.state_dict(), run / "model.pt")
    assert main(["explain", str(run)]) == 0
    assert (run / "explain.csv").is_file() and (run / "explain.png").is_file()
    with open(run / "explain.csv") as fh:
        assert {r["factor"] for r in csv.DictReader(fh)} == {"F_a(text)", "F_a(audio)"}
    csv_path, _ = explain_run(run, split="valid", out_dir=tmp_path / "v")
    assert csv_path.parent == tmp_path / "v"
    assert main(["explain", str(tmp_path / "nothing")]) == 2
    assert "config.json" in capsys.readouterr().err


def test_explain_refuses_models_without_decoders() -> None:
    reg = get_registry()
    ds = reg.build("dataset", "synthetic-factors", **DS)
    model = reg.build("model", "mfm", ds.spec, **{**TINY, "variant": "discriminative_only"})
    with pytest.raises(ValueError, match="decoders"):
        reconstruction_saliency(model, ds.split("test"))


SUITE = """
name: mfm-tiny
datasets:
  - {name: synthetic-factors, params: {n_train: 48, n_valid: 16, n_test: 16, \
dims: {text: 5, audio: 3}, seq_len: 5, min_len: 3}}
models:
  - {name: mfm, params: {surrogate: true, zy: 6, za: 4, fy: 5, fa: 3, encoder_params: {hidden: 6}, \
fusion_params: {hidden: 4, memory: 4}}}
seeds: [0]
train: {epochs: 2, batch_size: 16, device: cpu, scheduler: plateau}
evaluate: {conditions: [clean, {missing: audio}]}
"""


def test_runner_trains_mfm_records_probes_and_explain_reads_the_run(write_suite, tmp_path) -> None:
    from mfm_bench.results import ResultStore
    from mfm_bench.runner import run_suite
    from mfm_bench.suite import load_suite

    out = tmp_path / "out"
    counts = run_suite(load_suite(write_suite(SUITE)), out, progress=False, log=lambda s: None)
    assert counts["finished"] == 1 and counts["failed"] == 0
    with ResultStore(out) as store:
        (run,) = store.runs()
        rows = store.metrics(run["id"])
    run_dir = out / "runs" / run["id"]
    metrics: dict[str, set[str]] = {}
    for r in rows:
        metrics.setdefault(r["condition"], set()).add(r["metric"])
    assert {"probe_shared_from_zy", "probe_private_audio_from_za_audio"} <= metrics["clean"]
    assert "mae" in metrics["missing:audio"]
    assert main(["explain", str(run_dir)]) == 0
    with open(run_dir / "explain.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["factor"] for r in rows} == {"F_y", "F_a(text)", "F_a(audio)"} and len(rows) == 2 * 5 * 2
