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
