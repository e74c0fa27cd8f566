"""A third-party plugin declares its metrics (direction, section); the leaderboard shows what was declared."""

from dataclasses import dataclass
from typing import Any

import pytest

from mfm_bench import hookimpl
from mfm_bench.config import option
from mfm_bench.leaderboard import write_leaderboard
from mfm_bench.metric_catalog import declaration, higher_is_better
from mfm_bench.registry import PluginError
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import load_suite
from mfm_bench.testing import temporary_plugin

SUITE = """\
name: wobble
datasets:
  - {name: synthetic-factors, params: {n_train: 32, n_valid: 16, n_test: 16, \
dims: {text: 4, audio: 3}, seq_len: 4, min_len: 2}}
models:
  - {name: wobbly, label: calm, params: {wobble: 1.0}}
  - {name: wobbly, label: shaky, params: {wobble: 3.0}}
seeds: [0]
train: {epochs: 1, batch_size: 16}
evaluate: {conditions: [clean, {missing: audio}]}
"""


@dataclass
class WobblyConfig:
    wobble: float = option(1.0, "value the model reports as its wobble and shake_audio metrics")


def _wobbly(spec: Any, cfg: WobblyConfig) -> Any:
    import torch

    from mfm_bench.contracts import Output

    class Wobbly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(1))

        def forward(self, batch: Any) -> Any:
            n = len(batch)
            pred = self.bias.expand(n)  # (B,)
            sums = {"wobble": (torch.tensor(cfg.wobble * n), n), "shake_audio": (torch.tensor(cfg.wobble * n), n)}
            return Output(pred, {"label": ((pred - batch.target.float()) ** 2).mean()}, {"metric_sums": sums})

    return Wobbly()


class WobblyPlugin:
    def __init__(self, higher_is_better: bool) -> None:
        self.hib = higher_is_better

    @hookimpl
    def register_models(self, register: Any) -> None:
        register("wobbly", _wobbly, config=WobblyConfig, help="reports a fixed wobble")

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register("wobble", self.hib, help="how much the model wobbles")
        register("shake_*", False, section="shaking", help="shake per modality")


@pytest.mark.parametrize("hib", [False, True])
def test_declared_direction_decides_the_bold_cell(write_suite, tmp_path, hib):
    with temporary_plugin(WobblyPlugin(hib), "wobbly-plugin", "wobbly-dist"):
        assert declaration("wobble").package == "wobbly-dist" and higher_is_better("wobble") is hib
        run_suite(load_suite(write_suite(SUITE)), tmp_path / "o", progress=False, log=lambda s: None)
        with ResultStore(tmp_path / "o") as s:
            assert {m["higher_is_better"] for m in s.metrics() if m["metric"] == "wobble"} == {int(hib)}
        written = write_leaderboard(tmp_path / "o", ["markdown", "html"])
    md = written["markdown"].read_text()
    main = md.split("### clean test split")[1].split("###")[0].strip().splitlines()
    header = [c.strip() for c in main[0].split("|")]
    assert ("wobble ↑" if hib else "wobble ↓") in header
    col = next(i for i, c in enumerate(header) if c.startswith("wobble"))
    cells = {ln.split("|")[1].strip(): ln.split("|")[col].strip() for ln in main[2:]}
    winner, loser = ("shaky", "calm") if hib else ("calm", "shaky")
    assert cells[winner].startswith("**") and not cells[loser].startswith("**")
    # the plugin's own section is a table of its own, in the Markdown and in the HTML
    assert "### shaking" in md and "shake_audio ↓" in md
    page = written["html"].read_text()
    assert "<h3>shaking</h3>" in page and page.count("<table>") == md.count("\n### ")
    expected = "3.000" if hib else "1.000"
    assert f"<b>{expected}</b>" in page


def test_the_store_keeps_the_direction_after_the_plugin_is_gone(write_suite, tmp_path):
    with temporary_plugin(WobblyPlugin(False), "wobbly-plugin", "wobbly-dist"):
        run_suite(load_suite(write_suite(SUITE)), tmp_path / "o", progress=False, log=lambda s: None)
    assert declaration("wobble") is None  # uninstalled ...
    md = write_leaderboard(tmp_path / "o", ["markdown"])["markdown"].read_text()
    assert "wobble ↓" in md and "**1.000**" in md  # ... but the store recorded its direction


class Contrary:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register("mae", True)


class BadSet:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register("cmu-sentiment", function=lambda p, t, task: {})


@pytest.mark.parametrize(
    "plugin, message",
    [
        (Contrary(), r"metric 'mae' is declared twice with different meanings: by mfm-bench .* and by contrary-dist"),
        (BadSet(), r"metric set 'cmu-sentiment' is registered twice: by mfm-bench and by contrary-dist"),
    ],
)
def test_conflicting_declarations_name_both_packages(plugin, message):
    with temporary_plugin(plugin, "contrary", "contrary-dist"):
        with pytest.raises(PluginError, match=message):
            declaration("mae")
    assert declaration("mae").higher_is_better is False  # gone with the plugin


class ResampledSet:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(
            "mean-gap",
            function=lambda p, t, task: {"gap": float((p - t).mean())},
            resampled=lambda p, t, task: {"gap": (p - t).reshape(len(p), -1).mean(1)},
        )
        register("gap", False)


class MisplacedResampled:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register("gap", False, resampled=lambda p, t, task: {})


def test_a_plugin_metric_set_gives_its_resampled_form_to_the_bootstrap():
    import numpy as np

    from mfm_bench.contracts import Task
    from mfm_bench.metrics import resampled_metrics

    with temporary_plugin(ResampledSet(), "gap-plugin", "gap-dist"):
        batched = resampled_metrics(Task("regression", metrics="mean-gap"))
        p, t = np.arange(6.0).reshape(2, 3), np.zeros((2, 3))
        assert batched(p, t)["gap"].tolist() == [1.0, 4.0]
    with temporary_plugin(MisplacedResampled(), "gap-plugin", "gap-dist"):
        with pytest.raises(PluginError, match=r"gap-dist: metric 'gap': resampled= goes with function="):
            declaration("gap")
