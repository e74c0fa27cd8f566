"""Searches at run time: one Optuna study per (dataset, searched model), driven from the main process.

A :class:`SearchSource` gives the executor the suite's plain runs first, then trials (``study.ask``) as slots
free up; each outcome is told back (``study.tell``) with its validation value. When a study has all its trials,
the best configuration on validation is trained on every seed of the suite (``role: final``); the selection is
recorded in the store's ``searches`` table, which the leaderboard reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import MfmBenchError, OutputExistsError
from .search import JOURNAL, SearchSpec, apply, dumps, trial_value


def _sampler(spec: SearchSpec, offset: int = 0) -> Any:
    """The spec's sampler, seeded with the spec's seed (plus ``offset``: a resumed search whose earlier asks
    cannot be replayed draws new configurations rather than the ones it already has)."""
    import optuna

    seed = spec.seed + offset
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # constant liar: trials run in parallel


class _Study:
    """One model's search on one dataset. A trial is keyed by its first-seed run id; its value is the mean of the
    validation values of its runs on ``spec.trial_seeds`` seeds (None when one of them failed)."""

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
        warn: Callable[[str], None] = print,
    ) -> None:
        import optuna

        from .registry import get_registry

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec, self.d, self.suite, self.seeds, self.train, self.store = spec, d, suite, seeds, train, store
        self.warn = warn
        self.trial_seeds = seeds[: spec.trial_seeds]
        self.reg = get_registry()
        self.key = {"dataset": d.label, "label": spec.model["label"]}
        self.dists = {p.name: p.distribution() for p in spec.params}
        self.values: dict[str, float | None] = {}  # trial key -> validation value of every trial told
        self.flight: dict[str, list[Any]] = {}  # trial key -> optuna trials waiting for it
        self.parts: dict[str, dict[str, float | None]] = {}  # trial key -> {run id: value} of its seed runs so far
        self.owner: dict[str, str] = {}  # run id -> its trial key
        self.known: dict[str, float | None] = {}  # finished runs of trials the store holds only in part
        self.queue: list[Any] = []  # seed runs of the trial in flight not yet handed out
        self.finals: list[Any] | None = None
        self.trial_ids: list[str] = []
        self.pruned: set[str] = set()  # trial keys whose run the pruner stopped
        self.epochs: dict[int, set[int]] = {}  # trial number -> epochs reported to it
        self.reused = 0  # runs the store had finished that this search uses without handing them out again
        recorded = {} if overwrite else self._recorded(resume)
        sampler, order = self._plan(recorded)
        self.study = optuna.create_study(
            direction="maximize" if spec.higher_is_better else "minimize",
            sampler=sampler,
            pruner=spec.pruner.build() if spec.pruner is not None else optuna.pruners.NopPruner(),
            **_storage(spec, store.folder, self.key),
        )
        self._load(order, recorded)

    def _recorded(self, resume: bool) -> dict[str, dict[str, Any]]:
        """The trials the store holds (``--resume``), by configuration in the order their runs started: each
        ``{"values", "runs"}``, ``runs`` its run on each trial seed when all finished, else None (a trial that
        was interrupted or failed, asked again on resume; its finished seed runs go to ``known`` and are reused)."""
        runs = [
            r
            for r in self.store.runs()
            if (r["config"].get("search") or {}).get("role") == "trial"
            and {k: r["config"]["search"].get(k) for k in self.key} == self.key
        ]
        finished = [r for r in runs if r["status"] == "finished"]
        if finished and not resume:
            raise OutputExistsError(
                f"{self.store.folder} already holds {len(finished)} finished trial(s) of the search of "
                f"{self.key['label']!r}; pass --resume to run only the rest, --overwrite to run "
                "them again, or choose another --out"
            )
        if not resume:
            return {}
        groups: dict[str, dict[int, dict[str, Any]]] = {}
        for r in runs:
            groups.setdefault(dumps(r["config"]["search"]["values"]), {})[r["seed"]] = r
        recorded = {}
        for key, by_seed in groups.items():
            whole = all(by_seed.get(s, {}).get("status") == "finished" for s in self.trial_seeds)
            recorded[key] = {
                "values": next(iter(by_seed.values()))["config"]["search"]["values"],
                "runs": [by_seed[s] for s in self.trial_seeds] if whole else None,
            }
            if not whole:
                for r in by_seed.values():
                    if r["status"] == "finished":
                        self.known[r["id"]] = _value(self.store.metrics(r["id"]), self.spec.metric)
        return recorded

    def _plan(self, recorded: dict[str, dict[str, Any]]) -> tuple[Any, list[str]]:
        """(sampler, the recorded configurations in the order the study holds them). The sampler's asks are
        replayed first: when they give back every recorded configuration (always for the random sampler; for TPE
        when its trials ran one at a time), the study holds them in that order, repeats included, and the sampler
        goes on where the interrupted search stopped. Else the finished trials, then the unfinished ones (at most
        ``n_trials`` in all), and a sampler seeded past them."""
        if not recorded:
            return _sampler(self.spec), []
        replayed = self._replay(recorded)
        if replayed is not None:
            return replayed
        n = self.spec.n_trials
        whole = [k for k, rec in recorded.items() if rec["runs"]][:n]
        rest = [k for k, rec in recorded.items() if not rec["runs"]][: n - len(whole)]
        return _sampler(self.spec, 7919 * len(recorded)), whole + rest

    def _replay(self, recorded: dict[str, dict[str, Any]]) -> tuple[Any, list[str]] | None:
        """Ask a fresh sampler, in a scratch study told each finished trial's outcome, until every recorded
        configuration came back (the sampler and the order of the asks), or None once one did not."""
        import optuna

        sampler = _sampler(self.spec)
        direction = "maximize" if self.spec.higher_is_better else "minimize"
        scratch = optuna.create_study(direction=direction, sampler=sampler)
        order: list[str] = []
        while set(recorded) - set(order) and len(order) < self.spec.n_trials:
            trial = scratch.ask(self.dists)
            key = dumps(trial.params)
            if key not in recorded:
                return None
            order.append(key)
            if recorded[key]["runs"]:
                state, value, steps = self._outcome(recorded[key]["runs"])
                for step, v in (steps or {}).items():
                    trial.report(v, step)
                scratch.tell(trial, value if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        return (sampler, order) if not set(recorded) - set(order) else None

    def _outcome(self, runs: list[dict[str, Any]]) -> tuple[Any, float | None, dict[int, float] | None]:
        """A finished trial's (state, value, values its run reported epoch by epoch when the search prunes)."""
        import optuna

        metrics = [self.store.metrics(r["id"]) for r in runs]
        value = _mean([_value(m, self.spec.metric) for m in metrics])
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        if any(_value(m, "pruned_epoch") is not None for m in metrics):
            state, value = optuna.trial.TrialState.PRUNED, None
        # what the pruner compares later trials with: the values the run reported epoch by epoch
        return state, value, self._reported(runs[0]["id"]) if self.spec.pruner is not None else None

    def _load(self, order: list[str], recorded: dict[str, dict[str, Any]]) -> None:
        """Tell the study the trials the store already finished and queue the ones it must finish (``--resume``),
        in ``order``; a finished trial left out of ``order`` lends its runs to ``known``."""
        import optuna

        for key in order:
            runs = recorded[key]["runs"]
            if not runs:  # interrupted or failed: asked again with its configuration, so its run ids
                self.study.enqueue_trial(recorded[key]["values"], skip_if_exists=False)
                continue
            state, value, steps = self._outcome(runs)
            if state == optuna.trial.TrialState.PRUNED:
                self.pruned.add(runs[0]["id"])
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=recorded[key]["values"],
                    distributions=self.dists,
                    value=value,
                    state=state,
                    intermediate_values=steps,
                )
            )
            if runs[0]["id"] not in self.values:
                self.trial_ids += [r["id"] for r in runs]
                self.reused += len(runs)
            self.values[runs[0]["id"]] = value
        for key, rec in recorded.items():
            if key not in order:
                for r in rec["runs"] or []:
                    self.known[r["id"]] = _value(self.store.metrics(r["id"]), self.spec.metric)

    def _reported(self, run_id: str) -> dict[int, float]:
        """The validation values a trial's run reported to the pruner (``search_value`` in its history)."""
        import json

        try:
            rows = json.loads((Path(self.store.folder) / "runs" / run_id / "history.json").read_text())
        except (OSError, ValueError):  # a folder without run files (a merged store's): the pruner starts cold
            return {}
        return {int(r["epoch"]): float(r["search_value"]) for r in rows if "search_value" in r}

    def _run(self, values: dict[str, Any], seed: int, role: str) -> Any:
        from .runner import make_run, run_config

        model, train = apply(values, self.spec.model, self.train, self.reg)
        cfg = run_config(self.suite, self.d, model["name"], model["label"], model["params"], seed, train)
        cfg["search"] = {**self.key, "role": role, "values": values}
        if role == "trial" and self.spec.pruner is not None:
            cfg["search"]["prune"] = self.spec.metric  # the metric its run reports after each epoch
        return make_run(self.suite.name, model["label"], self.d.label, cfg, list(getattr(self.suite, "trackers", [])))

    @property
    def asked(self) -> int:
        """Trials asked or told so far (not those queued on resume and not yet asked again)."""
        import optuna

        return sum(t.state != optuna.trial.TrialState.WAITING for t in self.study.trials)

    def next(self) -> Any:
        if self.queue:
            return self.queue.pop(0)
        while self.finals is None and self.asked < self.spec.n_trials:
            trial = self.study.ask(self.dists)
            runs = [self._run(trial.params, seed, "trial") for seed in self.trial_seeds]
            key = runs[0].id
            if key in self.values:  # the sampler repeated a finished configuration
                self._tell(trial, self.values[key], key in self.pruned)
            elif key in self.flight:
                self.flight[key].append(trial)
            else:
                self.flight[key], self.parts[key] = [trial], {}
                self.trial_ids += [r.id for r in runs]
                for r in runs:
                    self.owner[r.id] = key
                    if r.id in self.known:
                        self.parts[key][r.id] = self.known[r.id]
                        self.reused += 1
                self.queue = [r for r in runs if r.id not in self.known]
                if self.queue:
                    return self.queue.pop(0)
                self._settle(key)
        if self.finals is None and not self.flight:
            self._select()
        return self.finals.pop(0) if self.finals else None

    def _tell(self, trial: Any, value: float | None, pruned: bool = False) -> None:
        import optuna

        if pruned:  # Optuna keeps the last reported value as a pruned trial's value
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif value is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, value)

    def report(self, run: Any, epoch: int, value: float) -> bool:
        """A trial's run reports its validation value after ``epoch``: True when the pruner stops it."""
        trials = self.flight.get(self.owner.get(run.id, ""), [])
        for trial in trials:  # the trial, and any the sampler asked again with the same configuration
            seen = self.epochs.setdefault(trial.number, set())
            if epoch not in seen:  # a run retried on a fresh worker reports its epochs again
                seen.add(epoch)
                trial.report(value, epoch)
        return bool(trials) and trials[0].should_prune()

    def done(self, run: Any, outcome: Any) -> None:
        key = self.owner.get(run.id)
        if key is None or key not in self.flight:
            return
        if outcome.pruned:
            self.pruned.add(key)
            self.values[key] = None
            for trial in self.flight.pop(key):
                self._tell(trial, None, pruned=True)
            return
        self.parts[key][run.id] = trial_value(outcome, self.spec.metric) if outcome.status == "finished" else None
        self._settle(key)

    def _settle(self, key: str) -> None:
        """Tell the trial's value once each of its seed runs has reported."""
        if len(self.parts[key]) < len(self.trial_seeds):
            return
        value = self.values[key] = _mean(list(self.parts[key].values()))
        for trial in self.flight.pop(key):
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
            "trial_seeds": self.trial_seeds,
            "complete": len(complete),
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in self.study.trials),
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
            # a final run that is one of the trials' (its seed and configuration) is counted with the trials
            self.reused += sum(r.id in done and r.id not in self.trial_ids for r in runs)
        self.store.record_search(self.key["dataset"], self.key["label"], record)
        if not complete and self.study.trials:
            self.warn(
                f"warning: the search of {self.key['label']!r} on {self.key['dataset']!r} ended with no complete "
                f"trial ({record['trials']} trial(s), {record['pruned']} pruned, the rest failed or without a "
                f"validation {self.spec.metric!r}): nothing was chosen and no final run trained. A trial completes "
                f"when its runs finish and report {self.spec.metric!r} on the validation split; the leaderboard's "
                "failed runs give each failure's error"
            )


def _mean(values: list[float | None]) -> float | None:
    """The mean of a trial's seed values; None when one of its runs failed or lacks the metric."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _storage(spec: SearchSpec, folder: Any, key: dict[str, str]) -> dict[str, Any]:
    """``create_study`` arguments for the spec's storage: none for in memory; for ``journal``, the study named
    DATASET/LABEL in ``OUT/optuna-journal.log`` (Optuna's file journal, which locks the file itself), rebuilt
    each time from the store, which stays the source of truth (``--resume`` tells it the finished trials again)."""
    if spec.storage != "journal":
        return {}
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(Path(folder) / JOURNAL)))
    name = f"{key['dataset']}/{key['label']}"
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:  # a first run: no such study yet
        pass
    return {"storage": storage, "study_name": name}


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
        log: Callable[[str], None] = print,
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
        for m, _ in pairs:
            if m.search.trial_seeds > len(seeds):
                raise MfmBenchError(
                    f"the search of {m.label!r} runs each trial on {m.search.trial_seeds} seeds, but only "
                    f"{len(seeds)} seed(s) are given ({seeds}); pass more --seeds or lower search.trial_seeds"
                )
        self.grid = list(grid)
        self.log: Callable[[str], None] = log  # the suite bar's writer, once it is up
        self.studies = [
            _Study(m.search, d, suite, seeds, train, store, resume, overwrite, warn=lambda line: self.log(line))
            for m, d in pairs
        ]
        for study in self.studies:
            told = sum(1 for t in study.study.trials if t.state.is_finished())
            if resume and told:
                self.log(
                    f"resuming the search of {study.key['label']!r} on {study.key['dataset']!r}: {told} of "
                    f"{study.spec.n_trials} trials already finished ({study.reused} run(s) reused), "
                    f"{max(0, study.spec.n_trials - told)} to go, then its final runs"
                )
        # at most: a trial the sampler repeats, or a final run that is also a trial's, runs nothing
        self.total = (
            len(grid) + sum(m.search.n_trials * m.search.trial_seeds + len(seeds) for m, _ in pairs) - self.skipped
        )

    @property
    def skipped(self) -> int:
        """Runs of the searches that the store had finished, used as they are (``--resume``)."""
        return sum(s.reused for s in self.studies)

    def next(self) -> Any:
        if self.grid:
            return self.grid.pop(0)
        for s in self.studies:
            run = s.next()
            if run is not None:
                run.deterministic = self.deterministic
                return run
        return None

    @property
    def prunes(self) -> bool:
        """True when a search has a pruner: its trials ask :meth:`report` after each epoch."""
        return any(s.spec.pruner is not None for s in self.studies)

    def _study(self, run: Any) -> _Study | None:
        """The study a search run belongs to (None for a run of no search)."""
        key = run.config.get("search")
        return next((s for s in self.studies if key and {k: key.get(k) for k in s.key} == s.key), None)

    def report(self, run: Any, epoch: int, value: float) -> bool:
        """The executor's ``ask``: a search trial's validation value after an epoch; True: stop it (pruned)."""
        study = self._study(run)
        return study.report(run, epoch, value) if study is not None else False

    def done(self, run: Any, outcome: Any) -> None:
        study = self._study(run)
        if study is not None:
            study.done(run, outcome)
