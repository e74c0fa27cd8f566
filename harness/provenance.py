"""Provenance and cost of a run: what is needed to reproduce a number and what it cost.

- :func:`provenance` adds to a run's environment the store and leaderboard schema versions, the git commit with a
  dirty flag, CUDA's version, the device's name, the CPU's name and vector capability and whether deterministic
  algorithms were on;
- :func:`data_fingerprint` names the prepared data (the cache's fingerprint, else a hash of the split tensors);
- :class:`Limited` is ``--limit N``: a seeded random subset of each split, for smoke tests;
- :func:`cost_rows` are the cost metrics: inference time per sample, peak memory (CPU RSS; CUDA max allocated).
"""

from __future__ import annotations

import functools
import hashlib
import platform
import resource
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: Version of leaderboard.json's layout (``schema_version`` in the file).
LEADERBOARD_SCHEMA_VERSION = 2


def provenance(device: Any, deterministic: bool = False) -> dict[str, Any]:
    import torch

    from .results import SCHEMA_VERSION

    commit, dirty = git_state()
    cpu = cpu_name()
    name = torch.cuda.get_device_name(device) if getattr(device, "type", "") == "cuda" else cpu
    return {
        "store_schema": SCHEMA_VERSION,
        "leaderboard_schema": LEADERBOARD_SCHEMA_VERSION,
        "git_commit": commit,
        "git_dirty": dirty,
        "cuda": torch.version.cuda,
        "device_name": name,
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "deterministic": deterministic,
    }


#: the aspects of a run's environment that can change its numbers at the same run id (its configuration, data and
#: execution settings being equal): the code, torch, and the hardware with the kernels chosen for it
ORIGIN_ASPECTS = ("code", "torch", "hardware")


def origin(env: dict[str, Any]) -> dict[str, str]:
    """How a run's recorded ``environment`` reads on each of :data:`ORIGIN_ASPECTS`, in words (``not recorded`` where
    an older store lacks a field)."""
    commit, version = env.get("git_commit"), env.get("mfm_bench")
    code = f"mfm-bench {version or '?'}" + (f" at {commit[:10]}" if commit else "")
    code += " with local changes" if env.get("git_dirty") else ""
    torch_ = f"torch {env['torch']}" if env.get("torch") else "torch not recorded"
    torch_ += f" (CUDA {env['cuda']})" if env.get("cuda") and str(env.get("device", "")).startswith("cuda") else ""
    if str(env.get("device", "")).startswith("cuda"):
        hardware = str(env.get("gpu") or env.get("device_name") or "a GPU not recorded")
    elif env.get("cpu"):
        kernels = [str(env["cpu_capability"])] if env.get("cpu_capability") else []
        if env.get("onednn_linear"):
            kernels.append("oneDNN linear " + str(env["onednn_linear"]).split()[0])
        hardware = str(env["cpu"]) + (f" ({', '.join(kernels)})" if kernels else "")
    else:
        hardware = "CPU not recorded"
    return {"code": code, "torch": torch_, "hardware": hardware}


#: why each aspect can move a number, for :func:`origin_notes`
WHY = {
    "code": "a fix or change between versions can change what a run computes",
    "torch": "kernels and their rounding change between torch releases",
    "hardware": "BLAS and oneDNN kernels round differently on other CPU types and GPUs",
}


def origin_notes(origins: list[dict[str, str]], now: dict[str, str] | None = None) -> list[str]:
    """One line per aspect on which the runs (their :func:`origin`) differ, with the count of each, or differ from
    ``now`` (this process's); none where all agree."""
    notes = []
    for aspect in ORIGIN_ASPECTS:
        counts = Counter(o[aspect] for o in origins)  # in the order first seen
        if len(counts) > 1 or (now is not None and counts and set(counts) != {now[aspect]}):
            listed = "; ".join(f"{k} ({n} run{'s' if n > 1 else ''})" for k, n in counts.items())
            here = f"; now {now[aspect]}" if now is not None else ""
            notes.append(f"different {aspect}: {listed}{here} ({WHY[aspect]})")
    return notes


def cpu_name() -> str:
    """The CPU's model name (``model name`` in /proc/cpuinfo on Linux), else what :mod:`platform` knows.

    Recorded with ``cpu_capability`` (the vector kernels torch picked: AVX2, AVX512, ...) because float rounding
    in BLAS and oneDNN kernels depends on both: the same run id on another CPU type can train to other numbers.
    """
    return cpuinfo_field("model name") or platform.processor() or platform.machine()


@functools.cache
def cpuinfo_field(key: str) -> str | None:
    """The first CPU's ``key`` in /proc/cpuinfo (``model name``, ``vendor_id``, ...); None where there is none.
    Read once per key and process (every run's environment asks)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip() or None
                if not line.strip():  # the end of the first CPU's block
                    break
    except OSError:
        pass
    return None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the code runs from; (None, None) outside git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    # --no-optional-locks: a status of our own never takes the index lock, which a kill mid-way would leave behind
    # in the user's checkout (every later git command refused until it is removed by hand)
    status = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return commit.strip(), None if status is None else bool(status.strip())


def set_deterministic(on: bool) -> None:
    """torch's deterministic algorithms (an error where an op has none) and the cuBLAS setting they need."""
    import os

    import torch

    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # only on a change: torch's setter imports torch._inductor (and with it torch._dynamo, about 1 s) each process
    if on != torch.are_deterministic_algorithms_enabled() or torch.is_deterministic_algorithms_warn_only_enabled():
        torch.use_deterministic_algorithms(on)


def data_fingerprint(dataset: Any) -> str | None:
    """The prepared-data cache's fingerprint when the dataset has one, else a hash of its split tensors."""
    info = getattr(dataset, "cache_info", None)
    if isinstance(info, dict) and info.get("fingerprint"):
        return str(info["fingerprint"])
    from .contracts import TensorSplit

    h = hashlib.sha256()
    for name in getattr(dataset.spec, "splits", ("train", "valid", "test")):
        split = dataset.split(name)
        if not isinstance(split, TensorSplit):
            return None
        for group in (split.inputs, split.mask, {"target": split.target}):
            for k in sorted(group):
                h.update(k.encode())
                h.update(group[k].detach().cpu().contiguous().numpy().tobytes())
        h.update("\n".join(split.ids).encode())
    return h.hexdigest()[:16]


class Limited:
    """``--limit N``: the first N of a seeded permutation of each split (kept in the split's order)."""

    def __init__(self, dataset: Any, n: int, seed: int = 0) -> None:
        self.inner, self.n, self.seed = dataset, n, seed
        self.spec = dataset.spec
        self.cache_info = getattr(dataset, "cache_info", None)
        self._splits: dict[str, Any] = {}

    def split(self, name: str) -> Any:
        if name not in self._splits:
            import torch

            from .contracts import TensorSplit

            full = self.inner.split(name)
            if len(full) <= self.n:
                self._splits[name] = full
                return full
            idx = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.seed))[: self.n].sort().values
            if isinstance(full, TensorSplit):
                b = full.batch(idx.to(full.target.device), idx)  # ids from the host copy
                self._splits[name] = TensorSplit(b.inputs, b.mask, b.target, b.ids, b.factors)
            else:
                self._splits[name] = torch.utils.data.Subset(full, idx.tolist())
        return self._splits[name]


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (ru_maxrss: KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def cost_rows(eval_seconds: float, samples: int, device: Any) -> list[tuple[str, str, str, float]]:
    """Inference time per sample over every condition, peak CPU RSS and (on CUDA) the max allocated memory."""
    import torch

    rows = [
        ("train", "test", "infer_ms_per_sample", 1000 * eval_seconds / max(samples, 1)),
        ("train", "train", "peak_rss_mb", peak_rss_mb()),
    ]
    if getattr(device, "type", "") == "cuda":
        rows.append(("train", "train", "cuda_peak_mb", torch.cuda.max_memory_allocated(device) / (1 << 20)))
    return rows
