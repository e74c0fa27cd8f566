"""A dataset with many targets (POM: 17 traits) keeps a readable main table: the averages there, the per-target
values in a transposed table below it."""

from mfm_bench.leaderboard import MAX_TARGET_COLUMNS, board
from mfm_bench.render import markdown


def _stats(v):
    return {"mean": v, "std": 0.0, "n": 1, "higher_is_better": None}


def _data(n_targets):
    def row(base):
        metrics = {"mae": _stats(base), "corr": _stats(0.5)}
        for t in range(n_targets):
            metrics[f"trait_{t:02d}/mae"] = _stats(base + t / 100)
            metrics[f"trait_{t:02d}/corr"] = _stats(0.1 * (t % 5))
        return {"seeds": 1, "metrics": metrics}

    return {"generated": "now", "runs": [], "datasets": {"pom": {"clean": {"MFM": row(0.8), "TFN": row(0.9)}}}}


def test_many_targets_move_to_a_transposed_table_below_the_averages():
    tables = board(_data(17)).datasets["pom"]
    main, per = tables[0], tables[1]
    assert not any("/" in h for h in main.headers) and len(main.headers) <= 6
    assert [r[0] for r in main.rows] == ["MFM", "TFN"]
    assert "per target" in per.heading
    assert [r[0] for r in per.rows] == [f"trait_{t:02d}" for t in range(17)]
    assert per.headers[0] == "target" and len(per.headers) == 1 + 2 * 2  # two models x (mae, corr)
    i = per.headers.index(next(h for h in per.headers if h.startswith("TFN mae")))
    assert per.rows[3][i] == "0.930"
    md = markdown(board(_data(17)))
    assert max(len(line.split("|")) for line in md.splitlines()) <= 8  # no 40-column lines


def test_few_targets_stay_in_the_main_table():
    n = MAX_TARGET_COLUMNS // 2
    tables = board(_data(n)).datasets["pom"]
    assert sum("/" in h for h in tables[0].headers) == 2 * n
    assert not any("per target" in t.heading for t in tables)
