"""The Trainer's Adam (mfm_bench.optim.FusedAdam) against torch.optim.Adam(fused=True): the same parameters bit for
bit after several steps (weight decay, a learning rate the plateau schedule lowers, a parameter without a gradient,
two dtypes), the same state_dict layout; and a whole run imports no torch._dynamo."""

import copy
import subprocess
import sys
import textwrap

import pytest
import torch

from mfm_bench.optim import FusedAdam


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    net.unused = torch.nn.Linear(2, 2)  # never in the graph: no gradient, no state
    net.wide = torch.nn.Linear(3, 1).double()
    return net


def _train(net, opt, sched, steps=6):
    for i in range(steps):
        g = torch.Generator().manual_seed(i)
        x, y = torch.randn(8, 5, generator=g), torch.randn(4, 3, generator=g, dtype=torch.float64)
        opt.zero_grad(set_to_none=True)
        (net[2](net[1](net[0](x))).pow(2).sum() + net.wide(y).pow(2).sum().float()).backward()
        opt.step()
        sched.step(1.0)  # a flat loss: the schedule halves the rate after each step past patience


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_fused_adam_matches_torch_fused_adam_bit_for_bit(weight_decay):
    ours_net, theirs_net = _model(), None
    theirs_net = copy.deepcopy(ours_net)
    ours = FusedAdam(ours_net.parameters(), lr=1e-2, weight_decay=weight_decay)
    theirs = torch.optim.Adam(theirs_net.parameters(), lr=1e-2, weight_decay=weight_decay, fused=True)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau
    _train(ours_net, ours, plateau(ours, factor=0.5, patience=1))
    _train(theirs_net, theirs, plateau(theirs, factor=0.5, patience=1))
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] < 1e-2
    before = _model()
    for (name, a), b, c in zip(ours_net.named_parameters(), theirs_net.parameters(), before.parameters()):
        assert torch.equal(a, b), name
        assert torch.equal(a, c) == name.startswith("unused"), name  # trained, except the unused layer
    mine, torchs = ours.state_dict(), theirs.state_dict()
    assert mine["state"].keys() == torchs["state"].keys() and len(mine["state"]) == 6  # unused: no state
    for k, st in mine["state"].items():
        assert st.keys() == torchs["state"][k].keys() == {"step", "exp_avg", "exp_avg_sq"}
        for name in st:
            assert torch.equal(st[name], torchs["state"][k][name]), (k, name)
    assert torch.optim.Adam(_model().parameters(), fused=True).load_state_dict(mine) is None  # loads in torch's


def test_a_training_run_does_not_import_torch_dynamo(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(
        textwrap.dedent(
            """\
            name: s
            datasets: [{name: synthetic-factors, params: {n_train: 64, n_valid: 32, n_test: 32, dims: {a: 4, b: 3}}}]
            models: [{name: supervised, params: {fusion: concat}}]
            seeds: [0]
            train: {epochs: 2, batch_size: 16, threads: 1, device: cpu, scheduler: plateau}
            """
        )
    )
    probe = (
        "import sys; from mfm_bench.cli import main\n"
        f"code = main(['run', {str(suite)!r}, '--out', {str(tmp_path / 'out')!r}, '--no-progress'])\n"
        "print('CODE', code, 'DYNAMO', 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert "CODE 0 DYNAMO False" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
