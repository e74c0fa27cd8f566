"""Calling the run-lifecycle hooks (``on_run_start``, ``on_epoch_end``, ``on_run_end``) so that a tracker can never
fail or lose a run: each implementation is called on its own and an exception becomes a :class:`TrackerWarning`
naming the plugin. The SQLite store stays the source of truth.
"""

from __future__ import annotations

import warnings
from typing import Any

#: Trackers built into mfm-bench, enabled by a suite's ``trackers:`` list.
BUILTIN_TRACKERS = ("tensorboard", "mlflow")


class TrackerWarning(UserWarning):
    """A tracker plugin raised; the run goes on."""


def call(hook: str, **kwargs: Any) -> None:
    """Call every implementation of ``hook`` with ``kwargs``; warn about (and survive) any that raises."""
    from .registry import get_registry

    caller = getattr(get_registry().pm.hook, hook)
    for impl in reversed(caller.get_hookimpls()):
        try:
            impl.function(**{k: kwargs[k] for k in impl.argnames})
        except Exception as e:  # noqa: BLE001 - a tracker must never fail a run
            warnings.warn(
                f"tracker {impl.plugin_name!r} failed in {hook}: {type(e).__name__}: {e}; the run goes on "
                "(its results are in the store)",
                TrackerWarning,
                stacklevel=2,
            )


def flat_metrics(rows: list[tuple[str, str, str, float]]) -> dict[str, float]:
    """Metric rows -> ``{"<condition>/<metric>": value}`` of the test split and the cost rows."""
    return {f"{cond}/{m}": float(v) for cond, split, m, v in rows if split != "valid" and v == v}
