"""Regenerate (or check) the tables of docs/results.md from a fresh run of their suite.

    python benchmarks/results_doc.py quickstart           # run the suite, rewrite the section's tables
    python benchmarks/results_doc.py quickstart --check   # run the suite, exit 1 if a documented number differs
    python benchmarks/results_doc.py quickstart --from runs/quickstart-doc --check   # reuse a finished folder
    python benchmarks/results_doc.py quickstart --check --out /tmp/qs                # run into another folder

Each generated section of docs/results.md sits between ``<!-- generated: NAME ... -->`` and
``<!-- end generated: NAME -->``, with a ``<!-- machine: ... -->`` line naming the CPU, torch's vector kernels
and torch's version it was generated with. The suite runs with ``--device cpu --threads 1`` (see "Reproducibility"
in docs/results.md: the thread count and the CPU type change the numbers, so the documented ones are pinned to one
thread, and a check on another CPU type says so when it fails).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results.md"
#: section name -> suite file (relative to the repository root)
SECTIONS = {"quickstart": "suites/quickstart.yaml"}


def run(name: str, out: Path) -> Path:
    """Run the section's suite into ``out`` (replacing earlier results) at one CPU thread; its leaderboard.md."""
    from mfm_bench.leaderboard import write_leaderboard
    from mfm_bench.runner import run_suite
    from mfm_bench.suite import load_suite

    run_suite(load_suite(ROOT / SECTIONS[name]), out, overwrite=True, device="cpu", threads=1, progress=False)
    return write_leaderboard(out, ["markdown"])["markdown"]


def tables(markdown: str) -> str:
    """The tables of a one-dataset leaderboard, without its title, intro line and dataset heading."""
    lines = markdown.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("### "))
    end = next((i for i, ln in enumerate(lines) if i > start and ln.startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip() + "\n"


def machine() -> str:
    """The CPU, torch's CPU capability and torch's version: what the documented numbers depend on besides the code."""
    import torch

    from mfm_bench.provenance import cpu_name

    return f"{cpu_name()}, {torch.backends.cpu.get_cpu_capability()} kernels, torch {torch.__version__}"


def _machine_of(section: str) -> str | None:
    m = re.search(r"<!-- machine: (.*?) -->", section)
    return m.group(1) if m else None


def markers(name: str) -> tuple[str, str]:
    return (
        f"<!-- generated: {name} by `python benchmarks/results_doc.py {name}`; do not edit by hand -->",
        f"<!-- end generated: {name} -->",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("section", choices=sorted(SECTIONS))
    p.add_argument("--check", action="store_true", help="compare with docs/results.md instead of rewriting it")
    p.add_argument("--out", type=Path, help="run the suite into this folder (default: runs/SECTION-doc)")
    p.add_argument("--from", dest="folder", type=Path, help="use this finished output folder instead of running")
    args = p.parse_args(argv)
    if args.folder and not (args.folder / "leaderboard.md").is_file():
        p.error(f"{args.folder} holds no leaderboard.md: run the suite first (drop --from)")
    out = args.out or ROOT / "runs" / f"{args.section}-doc"
    md = args.folder / "leaderboard.md" if args.folder else run(args.section, out)
    new = tables(Path(md).read_text())
    doc = DOC.read_text()
    begin, end = markers(args.section)
    head, rest = doc.split(begin, 1)
    old, tail = rest.split(end, 1)
    if args.check:
        timing = ("samples/s", "train s", "ms/sample", "peak RSS MB")
        same = _strip(old, timing) == _strip(new, timing)
        if same:
            print("docs/results.md matches")
            return 0
        print(f"docs/results.md differs from {md}:\n{new}")
        was, now = _machine_of(old), machine()
        if was != now:
            print(
                f"The documented tables were generated on {was or 'an unrecorded machine'}; this is {now}. Float "
                "rounding in BLAS and oneDNN kernels depends on the CPU type, and training carries it into the "
                f"metrics: if the code is unchanged, regenerate the tables here with "
                f"`python benchmarks/results_doc.py {args.section}` and say which machine in the commit."
            )
        return 1
    DOC.write_text(f"{head}{begin}\n<!-- machine: {machine()} -->\n\n{new}\n{end}{tail}")
    print(f"rewrote the {args.section} tables of {DOC}")
    return 0


def _strip(text: str, drop: tuple[str, ...]) -> list[list[str]]:
    """The cells of every table row, without the columns whose header is in ``drop`` (timings measure the
    machine, not the model)."""
    rows: list[list[str]] = []
    skip: set[int] | None = None  # None: the next table line is a header
    for ln in text.splitlines():
        if not ln.startswith("|"):
            skip = None
            continue
        if ln.startswith("|--"):
            continue
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if skip is None:
            skip = {i for i, c in enumerate(cells) if c in drop}
        rows.append([c for i, c in enumerate(cells) if i not in skip])
    return rows


if __name__ == "__main__":
    sys.exit(main())
