"""Leaderboard statistics: t intervals over seeds, bootstrap intervals over samples, paired comparisons."""

import csv
import json
import math

import numpy as np
import pytest

from mfm_bench.leaderboard import write_leaderboard
from mfm_bench.runner import run_suite
from mfm_bench.stats import bootstrap_ci, paired, seed_ci
from mfm_bench.suite import load_suite


def test_seed_ci_is_the_t_interval():
    vals = [1.0, 2.0, 3.0, 4.0, 5.0]
    lo, hi = seed_ci(vals)
    half = 2.7764451051977987 * np.std(vals, ddof=1) / math.sqrt(5)  # t(0.975, 4)
    assert math.isclose(lo, 3 - half, rel_tol=1e-9) and math.isclose(hi, 3 + half, rel_tol=1e-9)
    assert seed_ci([1.0]) is None and seed_ci([2.0, 2.0]) == (2.0, 2.0)


def test_bootstrap_ci_of_a_mean_has_the_normal_width():
    x = np.random.default_rng(0).normal(1.0, 2.0, size=400)
    ((lo, hi),) = bootstrap_ci(lambda idx: {"mean": float(x[idx].mean())}, len(x), 1000, seed=1).values()
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert lo < x.mean() < hi and abs((hi - lo) / 2 - half) < 0.15 * half


def test_bootstrap_ci_scores_resamples_at_once_with_the_same_draws_and_intervals(monkeypatch):
    """``resampled`` sees exactly the resamples ``metrics`` would (one draw per resample, in order, across blocks),
    and the intervals agree; a metric undefined (NaN) on some resamples leaves them out of its draws either way."""
    import mfm_bench.stats as stats
    from mfm_bench.plugins.datasets.sentiment import resampled_sentiment_metrics, sentiment_metrics

    rng = np.random.default_rng(4)
    true = np.round(rng.uniform(-3, 3, 25))  # many zero labels: non0 metrics NaN on a few tiny resamples
    pred = true + rng.normal(0, 1.0, 25)
    seen_one, seen_all = [], []

    def one(idx):
        seen_one.append(idx.copy())
        return sentiment_metrics(pred[idx], true[idx])

    def many(idx):
        seen_all.append(idx.copy())
        return resampled_sentiment_metrics(pred[idx], true[idx])

    monkeypatch.setattr(stats, "BLOCK", 25 * 64)  # blocks of 64 resamples: the draws must continue across them
    a = bootstrap_ci(one, 25, 300, seed=2)
    b = bootstrap_ci(one, 25, 300, seed=2, resampled=many)
    assert len(seen_all) == 5 and np.array_equal(np.concatenate(seen_all), np.stack(seen_one))
    assert list(a) == list(b) == list(sentiment_metrics(pred, true))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_paired_marks_noise_and_real_differences():
    rng = np.random.default_rng(0)
    base = {s: float(v) for s, v in enumerate(rng.normal(0, 1, 8))}
    shifted = {s: v + 1.0 + 0.01 * rng.normal() for s, v in base.items()}
    noisy = {s: v + 0.3 * rng.normal() for s, v in base.items()}
    assert not paired(shifted, base)["noise"] and paired(shifted, base)["diff"] > 0.9
    assert paired(noisy, base)["noise"] and paired({0: 1.0}, {0: 0.0})["noise"]
    assert paired(shifted, base)["n"] == 8 and paired({0: 1.0, 5: 2.0}, base)["n"] == 2


SUITE = """\
name: stats
datasets: [{name: synthetic-factors, params: {n_train: 64, n_valid: 24, n_test: 48, \
dims: {text: 6, audio: 3}, seq_len: 6, min_len: 3}}]
models:
  - {name: dummy, label: good}
  - {name: supervised, label: concat, params: {encoder: mean, fusion: concat}}
seeds: SEEDS
train: {epochs: 2, batch_size: 16}
evaluate: {conditions: [clean], bootstrap: 200}
report: {reference: concat}
"""


def _csv_intervals_are_the_json_ones(path, data) -> None:
    """Every metric's <m>_ci_low / <m>_ci_high in leaderboard.csv is the json's ci, beside its mean and std."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = {(r["dataset"], r["condition"], r["model"]): r for r in reader if r["status"] == "finished"}
    assert {"mae_ci_low", "mae_ci_high"} <= set(reader.fieldnames)
    i = reader.fieldnames.index("mae")
    assert reader.fieldnames[i : i + 4] == ["mae", "mae_std", "mae_ci_low", "mae_ci_high"]
    checked = 0
    for ds, conds in data["datasets"].items():
        for cond, models in conds.items():
            for label, r in models.items():
                row = rows[(ds, cond, label)]
                for m, st in r["metrics"].items():
                    if st.get("ci"):
                        assert [float(row[f"{m}_ci_low"]), float(row[f"{m}_ci_high"])] == st["ci"], (cond, m)
                        checked += 1
                    else:
                        assert row[f"{m}_ci_low"] == row[f"{m}_ci_high"] == "", (cond, m)
    assert checked > 0


def test_leaderboard_shows_intervals_and_the_paired_comparison(write_suite, tmp_path, dummy):
    for seeds in ("[0, 1, 2]", "[0]"):
        out = tmp_path / seeds.strip("[]").replace(", ", "")
        suite = load_suite(write_suite(SUITE.replace("SEEDS", seeds)))
        assert suite.reference == "concat" and suite.bootstrap == 200
        run_suite(suite, out, progress=False, log=lambda s: None)
        written = write_leaderboard(out, ["markdown", "json", "csv"], reference=suite.reference)
        md, data = written["markdown"].read_text(), json.loads(written["json"].read_text())
        _csv_intervals_are_the_json_ones(written["csv"], data)
        mae = data["datasets"]["synthetic-factors"]["clean"]["good"]["metrics"]["mae"]
        assert mae["ci_kind"] == ("seeds" if seeds != "[0]" else "bootstrap")
        assert (
            mae["ci"][0] <= mae["mean"] <= mae["ci"][1]
            and "ci95_lo:mae" not in data["datasets"]["synthetic-factors"]["clean"]["good"]["metrics"]
        )
        assert "paired over seeds against concat" in md and "feature normalisation" in md
        paired_part = md[md.index("paired over seeds against concat") :]
        row = next(ln for ln in paired_part.splitlines() if ln.startswith("| good "))
        if seeds == "[0]":  # one seed: no paired test, every difference marked as noise
            assert "n < 2" in row and "p=" not in row and row.count("≈") >= 3
        else:
            assert "p=" in row and "n < 2" not in row


def test_t_distribution_matches_scipy_stats():
    """The t quantile and the paired t-test come from scipy.special (a lighter import): the numbers of scipy.stats."""
    from scipy import stats

    from mfm_bench.compare import paired_p
    from mfm_bench.stats import paired_t_p, t_quantile

    rng = np.random.default_rng(3)
    for df in (1, 2, 4, 9, 30):
        for q in (0.6, 0.95, 0.975, 0.995):
            assert math.isclose(t_quantile(q, df), stats.t.ppf(q, df), rel_tol=1e-12)
    for n in (2, 3, 5, 12):
        a, b = rng.normal(0, 1, n), rng.normal(0.3, 1, n)
        want = stats.ttest_rel(a, b).pvalue
        assert math.isclose(paired_t_p(a - b), want, rel_tol=1e-9)
        got = paired_p(dict(enumerate(b)), dict(enumerate(a)))  # compare's base, new: ttest_rel(new, base)
        assert math.isclose(got, want, rel_tol=1e-9)
    vals = list(rng.normal(2, 1, 6))
    lo, hi = seed_ci(vals)
    slo, shi = stats.t.interval(0.95, 5, loc=np.mean(sorted(vals)), scale=stats.sem(sorted(vals)))
    assert math.isclose(lo, slo, rel_tol=1e-12) and math.isclose(hi, shi, rel_tol=1e-12)


def test_a_constant_shift_gets_the_exact_sign_test_p():
    """Every seed moved by the same amount: t is undefined (scipy's ttest_rel says t = inf, p = 0 for any number of
    seeds, or a p near 0 when the subtraction's last bits differ); the exact sign test's p is 2 * 0.5**n."""
    from scipy.stats import binomtest

    from mfm_bench.compare import paired_p
    from mfm_bench.stats import paired_diff_p

    for n in (2, 3, 6, 8):
        base = {s: 0.1 * s + 0.3 for s in range(n)}
        worse = {s: v - 0.05 for s, v in base.items()}  # float subtraction: differences equal to ~1e-17
        expect = binomtest(n, n, 0.5).pvalue
        assert expect == pytest.approx(2 * 0.5**n)
        assert paired_p(base, worse) == pytest.approx(expect) == paired_p(worse, base)
        assert paired(worse, base)["p"] == pytest.approx(expect)
        assert paired(worse, base)["noise"] is bool(expect >= 0.05)
    assert paired_diff_p(np.zeros(4)) == 1.0 and paired_diff_p(np.ones(1)) is None
    assert paired_p({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6}) == 1.0
    varied = np.array([0.1, 0.12, 0.09, 0.11])
    assert paired_diff_p(varied) == pytest.approx(scipy_p(varied))


def scipy_p(diffs):
    from scipy.stats import ttest_rel

    return ttest_rel(diffs, np.zeros_like(diffs)).pvalue
