"""The robustness protocol: conditions by severity, determinism, sweeps and their summaries, suite validation."""

import math

import pytest
import torch

from mfm_bench.contracts import Batch
from mfm_bench.evaluation import Condition, ConditionError, condition_from_name, parse_conditions
from mfm_bench.robustness import Sweep, summary_rows, sweeps
from mfm_bench.suite import SuiteError, load_suite


def batch(n=200, t=6):
    g = torch.Generator().manual_seed(1)
    inputs = {"a": torch.randn(n, t, 3, generator=g) + 5, "b": torch.randn(n, t, 2, generator=g) + 5}
    return Batch(
        inputs, {m: torch.ones(n, t, dtype=torch.bool) for m in inputs}, torch.zeros(n), [str(i) for i in range(n)]
    )


def test_missing_rate_hits_that_fraction_of_samples_nested_and_seeded():
    b = batch()
    gone = {}
    for rate in (0.1, 0.3, 0.7):
        out = Condition("missing", "a", rate).transform(seed=3)(b)
        lost = ~out.mask["a"].any(1)
        assert torch.equal(lost, (out.inputs["a"] == 0).all(2).all(1))  # zeros exactly where masked out
        assert abs(lost.float().mean().item() - rate) < 0.1
        assert out.mask["b"].all()  # the other modality is untouched
        gone[rate] = lost
    assert bool((gone[0.1] <= gone[0.3]).all() and (gone[0.3] <= gone[0.7]).all())  # nested severities
    again = Condition("missing", "a", 0.3).transform(seed=3)(b)
    other = Condition("missing", "a", 0.3).transform(seed=4)(b)
    assert torch.equal(again.mask["a"], Condition("missing", "a", 0.3).transform(seed=3)(b).mask["a"])
    assert not torch.equal(again.mask["a"], other.mask["a"])


def test_subset_missing_removes_every_named_modality_and_keeps_the_truth():
    out = Condition("missing", "a+b").transform()(batch(n=4))
    assert not out.mask["a"].any() and not out.mask["b"].any()
    assert set(out.withheld) == {"a", "b"}


def test_time_step_drop_masks_that_fraction_of_steps():
    b = batch()
    out = Condition("drop", "b", 0.5).transform(seed=0)(b)
    kept = out.mask["b"].float().mean().item()
    assert 0.4 < kept < 0.6
    assert torch.equal(out.inputs["b"] == 0, (~out.mask["b"]).unsqueeze(-1).expand_as(out.inputs["b"]))
    assert out.mask["a"].all()


def test_noise_scales_with_severity():
    b = batch()
    d = [(Condition("noise", "a", s).transform(seed=0)(b).inputs["a"] - b.inputs["a"]).std().item() for s in (0.2, 0.8)]
    assert d[0] == pytest.approx(0.2, rel=0.1) and d[1] == pytest.approx(0.8, rel=0.1)


def test_parse_sweeps_subsets_and_names_round_trip():
    conds = parse_conditions(
        [
            {"missing": {"modality": "a", "rate": [0.1, 0.5, 1.0]}},
            {"missing": {"subsets": ["a", "b", "c"]}},
            {"noise": {"modality": "b", "std": [0.0, 0.5]}},
            {"drop": {"modality": "c", "rate": 0.25}},
        ]
    )
    names = [c.name for c in conds]
    assert names[:4] == ["clean", "missing:a@0.1", "missing:a@0.5", "missing:a"]
    assert {"missing:b", "missing:c", "missing:a+b", "missing:a+c", "missing:b+c", "missing:a+b+c"} <= set(names)
    assert names.count("clean") == 1  # std 0 is the clean split
    assert "noise:b:0.5" in names and "drop:c:0.25" in names
    for c in conds:
        assert condition_from_name(c.name) == c
    assert condition_from_name("train") is None


@pytest.mark.parametrize(
    "item",
    [
        {"missing": {"modality": "a", "rate": 1.5}},
        {"noise": {"modality": "a", "std": -0.1}},
        "drop:a:2",
        {"drop": {"modality": "a", "rate": "lots"}},
    ],
)
def test_severity_outside_unit_interval_is_rejected(item):
    with pytest.raises(ConditionError) as info:
        parse_conditions(["clean", item])
    assert info.value.index == 1


@pytest.mark.parametrize(
    "item, words",
    [
        ({"missing": {"modality": "a", "rate": []}}, "missing rate is an empty list"),
        ({"drop": {"modality": "a", "rate": []}}, "drop rate is an empty list"),
        ({"missing": {"subsets": []}}, "subsets is an empty list"),
        ({"missing": []}, "missing is an empty list"),
        ({"noise": {"modality": [], "std": 0.5}}, "modality is an empty list"),
        ({"missing": {"subsets": ["a", "a"]}}, "lists 'a' twice"),
        ({"missing": {"subsets": ["a+b", "b"]}}, "names 'b' twice"),
        ({"noise": {"modality": ["a", "a"], "std": 0.5}}, "lists 'a' twice"),
        ("missing:a+a", "names 'a' twice"),
        ("missing:a@", "severity must be a number, got ''"),  # was every sample missing, as if no @ were there
        ("noise:a+:0.5", "empty name"),
        ({"missing": {"modality": "a", "subsets": ["b", "c"]}}, "modality or subsets, not both"),
        ({"missing": None}, "a modality is a name"),
        ({"drop": {"modality": None, "rate": 0.5}}, "a modality is a name"),
    ],
)
def test_entries_that_would_measure_nothing_or_twice_are_rejected(item, words):
    # an empty list used to add no condition without a word, a repeated modality measured 'a+a', and
    # modality beside subsets was dropped silently
    with pytest.raises(ConditionError) as info:
        parse_conditions(["clean", item])
    assert info.value.index == 1 and words in str(info.value)


def test_a_name_gives_back_its_exact_severity():
    # names kept 6 significant digits, and a run evaluates the conditions its stored names parse back to: 0.1234567
    # was evaluated as 0.123457, and two close severities shared one name (one measured, the other lost)
    conds = parse_conditions([{"noise": {"modality": "a", "std": [0.1234567, 0.1234568, 0.5, 1.0]}}, "missing:a@0.25"])
    assert [c.name for c in conds] == [
        "clean",
        "noise:a:0.1234567",
        "noise:a:0.1234568",
        "noise:a:0.5",
        "noise:a:1",
        "missing:a@0.25",
    ]
    for c in conds:
        assert condition_from_name(c.name) == c


def test_one_set_of_modalities_in_another_order_is_one_condition():
    # missing:b+a beside the subsets' missing:a+b used to be measured twice, as two sweeps of the same damage
    names = [c.name for c in parse_conditions([{"missing": {"subsets": ["a", "b"]}}, "missing:b+a", "noise:b+a:0.5"])]
    assert names == ["clean", "missing:a", "missing:b", "missing:a+b", "noise:b+a:0.5"]
    assert [c.name for c in parse_conditions(["noise:a+b:0.5", "noise:b+a:0.5"])] == ["clean", "noise:a+b:0.5"]


def test_sweep_summaries_follow_the_multibench_definitions():
    ref = Sweep("noise:a", "LF", [(0.0, 0.8), (0.5, 0.6), (1.0, 0.4)])
    mine = Sweep("noise:a", "mine", [(0.0, 0.9), (0.5, 0.85), (1.0, 0.8)])
    assert mine.relative == pytest.approx(0.5 * (0.9 + 0.85) / 2 + 0.5 * (0.85 + 0.8) / 2)
    assert mine.auc == pytest.approx(mine.relative)  # span 1
    # reference shifted to start at 0.9: 0.9, 0.7, 0.5 -> differences 0, 0.15, 0.3
    assert mine.effective(ref) == pytest.approx(0.45)
    assert ref.effective(ref) == pytest.approx(0.0)
    assert math.isnan(mine.effective(Sweep("noise:a", "x", [(0.0, 1.0)])))


def test_sweeps_from_collected_numbers():
    def row(v):
        return {"seeds": 1, "metrics": {"acc": {"mean": v, "std": 0.0, "n": 1}}}

    conds = {
        "clean": {"A": row(0.9), "B": row(0.8)},
        "missing:a@0.5": {"A": row(0.7), "B": row(0.7)},
        "missing:a": {"A": row(0.5), "B": row(0.6)},
    }
    got = sweeps(conds, "acc")
    assert list(got) == ["missing:a"]
    assert [c.points for c in got["missing:a"]] == [
        [(0.0, 0.9), (0.5, 0.7), (1.0, 0.5)],
        [(0.0, 0.8), (0.5, 0.7), (1.0, 0.6)],
    ]
    rows = summary_rows(got)
    assert rows[0][:3] == ["missing:a", "A", "0.5, 1"] and rows[0][5] == pytest.approx(0.0)
    assert rows[1][5] == pytest.approx((0.7 - 0.6) + (0.6 - 0.4))  # B against A shifted down by 0.1


SUITE = """\
name: tiny
datasets:
  - name: synthetic-factors
    params: {n_train: 40, n_valid: 10, n_test: 10}
models: [supervised]
evaluate:
  conditions:
    - clean
    - CONDITION
"""


@pytest.mark.parametrize(
    "cond, words",
    [
        ("{missing: {modality: txt, rate: [0.1, 0.5]}}", ["no modality 'txt'", "did you mean 'text'"]),
        ("{missing: {subsets: [text, sound]}}", ["no modality 'sound'"]),
        ("{drop: {modality: visual, rate: [0.5, 1.2]}}", ["1.2 is outside [0, 1]"]),
        ("{noise: {modality: audio, std: 3}}", ["3 is outside [0, 1]"]),
    ],
)
def test_validate_rejects_bad_conditions_with_file_and_line(write_suite, cond, words):
    path = write_suite(SUITE.replace("CONDITION", cond))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    e = info.value
    assert e.line == 9 and e.field == "evaluate.conditions[1]" and str(path) in str(e)
    for w in words:
        assert w in str(e)
