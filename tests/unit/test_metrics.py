"""Each metric convention pinned on hand-made cases (values worked out by hand in the comments)."""

import math

import numpy as np
import pytest
import torch

from mfm_bench.contracts import Task
from mfm_bench.metrics import compute_metrics, f1_scores, higher_is_better
from mfm_bench.plugins.datasets.sentiment import sentiment_metrics

PRED = [0.0, -0.1, 1.2, -2.6, 2.5, 0.5]
TRUE = [0.0, 0.0, 1.0, -3.0, 2.6, -0.4]


def test_acc2_has0_counts_zero_labels_as_non_negative():
    m = sentiment_metrics(PRED, TRUE)
    # pred >= 0: T F T F T T ; label >= 0: T T T F T F -> 4 of 6 agree
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # class True: tp 3, fp 1, fn 1 -> 0.75 (support 4); class False: tp 1, fp 1, fn 1 -> 0.5 (support 2)
    assert m["f1_has0"] == pytest.approx((0.75 * 4 + 0.5 * 2) / 6)


def test_acc2_non0_drops_zero_labels():
    m = sentiment_metrics(PRED, TRUE)
    # the two zero labels are dropped: pred > 0: T F T T ; label > 0: T F T F -> 3 of 4
    assert m["acc2_non0"] == pytest.approx(3 / 4)
    # class True: tp 2, fp 1, fn 0 -> 0.8 ; class False: tp 1, fp 0, fn 1 -> 2/3 ; equal support
    assert m["f1_non0"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_acc7_clips_then_rounds_half_to_even():
    m = sentiment_metrics(PRED, TRUE)
    # rounded preds 0 0 1 -3 2 0 (2.5 -> 2, 0.5 -> 0); rounded labels 0 0 1 -3 3 0 -> 5 of 6
    assert m["acc7"] == pytest.approx(5 / 6)
    # ties: 1.5 -> 2 and -2.5 -> -2 (half to even), 3.7 clips to 3
    ties = sentiment_metrics([1.5, -2.5, 3.7, 0.5], [2.0, -2.0, 3.0, 1.0])
    assert ties["acc7"] == pytest.approx(3 / 4)


def test_acc5_clips_to_two():
    m = sentiment_metrics(PRED, TRUE)
    # clipped to [-2, 2] and rounded: preds 0 0 1 -2 2 0, labels 0 0 1 -2 2 0 -> all agree
    assert m["acc5"] == 1.0
    assert sentiment_metrics([2.9], [-2.9])["acc5"] == 0.0


def test_mae_is_unclipped_and_corr_is_pearson():
    m = sentiment_metrics(PRED, TRUE)
    assert m["mae"] == pytest.approx((0 + 0.1 + 0.2 + 0.4 + 0.1 + 0.9) / 6)
    assert sentiment_metrics([10.0], [0.0])["mae"] == 10.0
    assert m["corr"] == pytest.approx(np.corrcoef(PRED, TRUE)[0, 1])


def test_all_zero_labels_give_nan_non0_metrics():
    m = sentiment_metrics([0.3, -0.2], [0.0, 0.0])
    assert math.isnan(m["acc2_non0"]) and m["acc2_has0"] == 0.5


def test_weighted_and_macro_f1_with_an_unpredicted_class():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    weighted, macro = f1_scores(y_true, y_pred, np.arange(4))
    # class 0: tp1 fp0 fn1 -> 2/3 ; class 1: tp1 fp2 fn0 -> 0.5 ; class 2: tp2 fp0 fn1 -> 0.8 ; class 3 -> 0
    assert macro == pytest.approx((2 / 3 + 0.5 + 0.8 + 0) / 4)
    assert weighted == pytest.approx((2 / 3 * 2 + 0.5 * 1 + 0.8 * 3) / 6)


def test_compute_metrics_dispatches_on_the_task():
    sent = compute_metrics(
        Task("regression", range=(-3.0, 3.0), metrics="cmu-sentiment"), torch.tensor(PRED), torch.tensor(TRUE)
    )
    assert sent == sentiment_metrics(torch.tensor(PRED).numpy(), torch.tensor(TRUE).numpy())  # the set, bit for bit
    assert {"acc2_has0", "acc2_non0", "acc7", "acc5", "mae", "corr"} <= set(sent)
    plain = compute_metrics(Task("regression", range=(1.0, 5.0)), torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))
    assert set(plain) == {"mae", "mse", "corr"} and plain["mae"] == pytest.approx(0.25)
    # the range alone no longer selects the sentiment conventions: the task names its metric set
    assert set(compute_metrics(Task("regression", range=(-3.0, 3.0)), torch.tensor(PRED), torch.tensor(TRUE))) == {
        "mae",
        "mse",
        "corr",
    }
    cls = compute_metrics(
        Task("classification", n_classes=3), torch.tensor([[3.0, 0, 0], [0, 0, 1.0]]), torch.tensor([0, 1])
    )
    assert cls["acc"] == 0.5
    multi = compute_metrics(
        Task("multi_regression", targets=("a", "b")),
        torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
        torch.tensor([[1.0, 3.0], [3.0, 2.0]]),
    )
    assert multi["a/mae"] == 0.0 and multi["b/mae"] == pytest.approx(1.5) and multi["mae"] == pytest.approx(0.75)


def test_every_reported_metric_declares_its_direction():
    sent = sentiment_metrics(PRED, TRUE)
    assert all(higher_is_better(m) is not None for m in sent)
    assert higher_is_better("mae") is False and higher_is_better("acc7") is True
    assert higher_is_better("probe_shared_from_zy") is True and higher_is_better("recon_missing_audio") is False


def test_unknown_metric_set_names_the_registered_ones():
    from mfm_bench.registry import PluginError

    with pytest.raises(PluginError, match=r"metric set 'nope' is not registered \(registered: .*cmu-sentiment"):
        compute_metrics(Task("regression", metrics="nope"), torch.tensor([1.0]), torch.tensor([1.0]))


def test_builtin_datasets_declare_the_sentiment_set_and_mfm_its_reconstruction():
    from mfm_bench.metric_catalog import PROBES, declaration, metric_set

    assert metric_set("cmu-sentiment").package == "mfm-bench"
    recon = declaration("recon_missing_audio")
    assert recon.higher_is_better is False and recon.section == "reconstruction of the missing modality"
    assert declaration("probe_shared_from_zy").section == PROBES
    assert declaration("trait/mae").name == "mae" and declaration("unheard_of") is None


# -- the same metrics over many resamples at once (the test-sample bootstrap) -------------------------------------


def _same(batched: dict[str, np.ndarray], rows: list[dict[str, float]]) -> None:
    """Each metric of each row equals the per-sample function's value (NaN where it gives NaN)."""
    assert list(batched) == list(rows[0])  # the same metrics, in the same order
    for k, values in batched.items():
        want = np.array([r[k] for r in rows], dtype=float)
        assert values.shape == want.shape, k
        np.testing.assert_allclose(values, want, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=k)


def _resamples(n: int, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(rows, n))


def test_resampled_sentiment_metrics_equal_the_per_sample_function_on_every_resample():
    from mfm_bench.plugins.datasets.sentiment import resampled_sentiment_metrics

    rng = np.random.default_rng(0)
    n = 9
    true = np.round(rng.uniform(-3, 3, n) * 2) / 2
    true[[1, 4, 6]] = 0.0  # zero labels: has0 counts them, non0 drops them
    pred = rng.uniform(-3.5, 3.5, (n, 1))
    pred[2] = 0.0
    idx = _resamples(n, 400, 1)
    idx[0] = 1  # one sample repeated: constant row, corr NaN, and only zero labels: non0 metrics NaN
    idx[1] = [4, 6, 1, 4, 6, 1, 0, 0, 0]  # mostly zero labels
    idx[2] = [0, 2, 3, 5, 7, 8, 0, 2, 3]  # no zero label
    got = resampled_sentiment_metrics(pred[idx], true[idx])
    _same(got, [sentiment_metrics(pred[i], true[i]) for i in idx])
    assert np.isnan(got["corr"][0]) and np.isnan(got["acc2_non0"][0]) and np.isnan(got["f1_non0"][0])
    assert not np.isnan(got["acc2_non0"][1:]).any()


@pytest.mark.parametrize("n_classes", [2, 5])
def test_resampled_classification_metrics_equal_the_per_sample_function(n_classes):
    from mfm_bench.metrics import resampled_metrics

    rng = np.random.default_rng(n_classes)
    n = 12
    logits = rng.normal(size=(n, n_classes))
    true = rng.integers(0, n_classes, n)
    task = Task("classification", n_classes=n_classes)
    idx = _resamples(n, 300, 2)
    idx[0] = 3  # a single class, predicted or not
    got = resampled_metrics(task)(logits[idx], true[idx])
    _same(got, [compute_metrics(task, logits[i], true[i]) for i in idx])


def test_resampled_regression_metrics_equal_the_per_sample_function():
    from mfm_bench.metrics import resampled_metrics

    rng = np.random.default_rng(3)
    n = 10
    pred, true = rng.normal(size=(n, 1)), rng.normal(size=n)
    task = Task("regression")
    idx = _resamples(n, 300, 3)
    idx[0] = 7  # constant: corr NaN
    got = resampled_metrics(task)(pred[idx], true[idx])
    _same(got, [compute_metrics(task, pred[i], true[i]) for i in idx])
    assert np.isnan(got["corr"][0])


def test_resampled_multi_regression_metrics_equal_the_per_sample_function():
    from mfm_bench.metrics import resampled_metrics

    rng = np.random.default_rng(5)
    n = 8
    pred, true = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    true[:, 1] = 0.5  # one target constant: its corr is NaN on every resample, the mean corr over the others
    task = Task("multi_regression", targets=("a", "b", "c"))
    idx = _resamples(n, 200, 5)
    got = resampled_metrics(task)(pred[idx], true[idx])
    _same(got, [compute_metrics(task, pred[i], true[i]) for i in idx])
    assert np.isnan(got["b/corr"]).all() and not np.isnan(got["corr"]).any()
