"""What the MFM evidence protocol (docs/mfm.md, "Evidence"; tests/evidence_protocol.py) guarantees by design,
checked on two of its seeds: the surrogate encoders reconstruct a missing modality better than its mean does,
on every seed. The comparisons MFM may win or lose (MAE against the MFN baselines, the probes) are reported in
docs/mfm.md with confidence intervals, not asserted here.
"""

from __future__ import annotations

import evidence_protocol as protocol
import pytest
import torch

pytestmark = pytest.mark.slow
SEEDS = (0, 1)  # the protocol's own budget (30 epochs); 10 epochs left seed 1's visual at 0.93 x the mean


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: threads only contend
    yield
    torch.set_num_threads(n)


def test_surrogates_reconstruct_a_missing_modality_better_than_its_mean(one_thread) -> None:
    for seed in SEEDS:
        rows = protocol.run_seed(seed, ["MFM"])["MFM"]
        for m in protocol.MODALITIES:
            recon, mean = rows[(f"missing:{m}", f"recon_missing_{m}")], rows[(f"missing:{m}", f"recon_mean_{m}")]
            print(f"seed {seed}: recon_missing_{m} {recon:.3f}, mean predictor {mean:.3f}")
            assert recon < 0.9 * mean, (seed, m, recon, mean)
