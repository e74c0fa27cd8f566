"""Searches at run time: one Optuna study per (dataset, searched model), driven from the main process.

A :class:`SearchSource` gives the executor the suite's plain runs first, then trials (``study.ask``) as slots
free up; each outcome is told back (``study.tell``) with its validation value. When a study has all its trials,
the best configuration on validation is trained on every seed of the suite (``role: final``); the selection is
recorded in the store's ``searches`` table, which the leaderboard reads.
"""

from __future__ import annotations

from typing import Any

from .errors import OutputExistsError
from .search import SearchSpec, apply, trial_value


def _sampler(spec: SearchSpec, resumed: int) -> Any:
    """The spec's sampler; seeded past the ``resumed`` trials, so a resumed search asks for new configurations
    rather than replaying the ones it already has."""
    import optuna

    seed = spec.seed + 7919 * resumed
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # constant liar: trials run in parallel


class _Study:
    """One model's search on one dataset."""

    def __init__(
        self,
        spec: SearchSpec,
        d: Any,
        suite: Any,
        seeds: list[int],
        train: dict[str, Any],
        store: Any,
        resume: bool,
        overwrite: bool,
    ) -> None:
        import optuna

        from .registry import get_registry

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec, self.d, self.suite, self.seeds, self.train, self.store = spec, d, suite, seeds, train, store
        self.reg = get_registry()
        self.key = {"dataset": d.label, "label": spec.model["label"]}
        self.dists = {p.name: p.distribution() for p in spec.params}
        self.values: dict[str, float | None] = {}  # run id -> validation value of every trial told
        self.flight: dict[str, list[Any]] = {}  # run id -> trials waiting for it
        self.finals: list[Any] | None = None
        self.trial_ids: list[str] = []
        done = [] if overwrite else self._finished_trials(resume)
        self.study = optuna.create_study(
            direction="maximize" if spec.higher_is_better else "minimize", sampler=_sampler(spec, len(done))
        )
        self._load(done)

    def _finished_trials(self, resume: bool) -> list[dict[str, Any]]:
        done = [
            r
            for r in self.store.runs("finished")
            if (r["config"].get("search") or {}).get("role") == "trial"
            and {k: r["config"]["search"].get(k) for k in self.key} == self.key
        ]
        if done and not resume:
            raise OutputExistsError(
                f"{self.store.folder} already holds {len(done)} finished trial(s) of the search of "
                f"{self.key['label']!r}; pass --resume to run only the rest, --overwrite to run "
                "them again, or choose another --out"
            )
        return done[: self.spec.n_trials]

    def _load(self, done: list[dict[str, Any]]) -> None:
        """Tell the study the trials the store already finished (``--resume``)."""
        import optuna

        for r in done:
            value = _value(self.store.metrics(r["id"]), self.spec.metric)
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=r["config"]["search"]["values"],
                    distributions=self.dists,
                    value=value,
                    state=optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL,
                )
            )
            self.values[r["id"]] = value
            self.trial_ids.append(r["id"])

    def _run(self, values: dict[str, Any], seed: int, role: str) -> Any:
        from .runner import make_run, run_config

        model, train = apply(values, self.spec.model, self.train, self.reg)
        cfg = run_config(self.suite, self.d, model["name"], model["label"], model["params"], seed, train)
        cfg["search"] = {**self.key, "role": role, "values": values}
        return make_run(self.suite.name, model["label"], self.d.label, cfg, list(getattr(self.suite, "trackers", [])))

    @property
    def asked(self) -> int:
        return len(self.study.trials)

    def next(self) -> Any:
        while self.finals is None and self.asked < self.spec.n_trials:
            trial = self.study.ask(self.dists)
            run = self._run(trial.params, self.seeds[0], "trial")
            if run.id in self.values:  # the sampler repeated a finished configuration
                self._tell(trial, self.values[run.id])
            elif run.id in self.flight:
                self.flight[run.id].append(trial)
            else:
                self.flight[run.id] = [trial]
                self.trial_ids.append(run.id)
                return run
        if self.finals is None and not self.flight:
            self._select()
        return self.finals.pop(0) if self.finals else None

    def _tell(self, trial: Any, value: float | None) -> None:
        import optuna

        if value is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, value)

    def done(self, run: Any, outcome: Any) -> None:
        if run.id not in self.flight:
            return
        value = trial_value(outcome, self.spec.metric) if outcome.status == "finished" else None
        self.values[run.id] = value
        for trial in self.flight.pop(run.id):
            self._tell(trial, value)

    def _select(self) -> None:
        """The chosen configuration, on validation; its runs on every seed (none for test-oracle)."""
        import optuna

        complete = [t for t in self.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        record = {
            "selection": self.spec.selection,
            "metric": self.spec.metric,
            "split": "valid",
            "higher_is_better": self.spec.higher_is_better,
            "trials": len(self.study.trials),
            "complete": len(complete),
            "trial_ids": self.trial_ids,
            "final_ids": [],
        }
        self.finals = []
        if complete and self.spec.selection == "validation":
            best = self.study.best_trial
            record.update(chosen=best.params, chosen_value=best.value)
            runs = [self._run(best.params, seed, "final") for seed in self.seeds]
            record["final_ids"] = [r.id for r in runs]
            done = {r["id"] for r in self.store.runs("finished")}
            self.finals = [r for r in runs if r.id not in done]
        self.store.record_search(self.key["dataset"], self.key["label"], record)


def _value(metrics: list[dict[str, Any]], metric: str) -> float | None:
    return next(
        (
            m["value"]
            for m in metrics
            if m["split"] == "valid" and m["metric"] == metric and m["condition"] in ("clean", "train")
        ),
        None,
    )


class SearchSource:
    """The suite's plain runs, then every search's trials and final runs."""

    def __init__(
        self,
        suite: Any,
        store: Any,
        grid: list[Any],
        expand_args: tuple,
        shard: Any,
        resume: bool,
        overwrite: bool,
        deterministic: bool = False,
    ) -> None:
        seeds, device, threads = expand_args
        self.deterministic = deterministic
        seeds = seeds if seeds is not None else suite.seeds
        train = dict(
            suite.train,
            **({"device": device} if device else {}),
            **({"threads": threads} if threads is not None else {}),
        )
        pairs = [(m, d) for d in suite.datasets for m in suite.models if m.search is not None]
        if shard is not None:  # a whole search goes to one shard: its trials depend on each other
            pairs = [p for i, p in enumerate(pairs) if i % shard[1] == shard[0] - 1]
        self.grid = list(grid)
        self.studies = [_Study(m.search, d, suite, seeds, train, store, resume, overwrite) for m, d in pairs]
        self.total = len(grid) + sum(m.search.n_trials + len(seeds) for m, _ in pairs)

    def next(self) -> Any:
        if self.grid:
            return self.grid.pop(0)
        for s in self.studies:
            run = s.next()
            if run is not None:
                run.deterministic = self.deterministic
                return run
        return None

    def done(self, run: Any, outcome: Any) -> None:
        key = run.config.get("search")
        for s in self.studies:
            if key and {k: key.get(k) for k in s.key} == s.key:
                s.done(run, outcome)
