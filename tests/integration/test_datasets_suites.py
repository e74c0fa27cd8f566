"""The real-data suites validate, and expand to the grid they promise."""

from __future__ import annotations

from pathlib import Path

from mfm_bench.runner import expand
from mfm_bench.suite import load_suite

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_sentiment_suites_validate():
    full = load_suite(SUITES / "sentiment.yaml")
    assert full.fetch and {d.name for d in full.datasets} == {"cmu-mosi", "ict-mmmo", "youtube"}
    av = load_suite(SUITES / "sentiment-av.yaml")
    assert not av.fetch and all(d.params["modalities"] == ["audio", "visual"] for d in av.datasets)
    runs = expand(av)
    assert len(runs) == len(av.datasets) * len(av.models) * len(av.seeds)
    # the two ICT-MMMO label conventions are distinct runs
    labels = {r.config["dataset"]["params"]["label"] for r in runs if r.config["dataset"]["name"] == "ict-mmmo"}
    assert labels == {"binary", "regression"}


def test_pom_suite_mirrors_sentiment_av_on_pom():
    pom = load_suite(SUITES / "pom.yaml")
    av = load_suite(SUITES / "sentiment-av.yaml")
    assert pom.fetch and [d.name for d in pom.datasets] == ["pom"]
    assert pom.datasets[0].params["modalities"] == ["audio", "visual"]
    assert [(m.label, m.params) for m in pom.models] == [(m.label, m.params) for m in av.models]
    assert pom.seeds == av.seeds == [0, 1, 2, 3, 4] and pom.reference == "MFN" and pom.train == av.train
    assert [c.name for c in pom.conditions] == ["clean", "missing:audio", "missing:visual"]
    assert len(expand(pom)) == 8 * 5
