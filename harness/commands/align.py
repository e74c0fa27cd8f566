"""``mfm-bench align``: align computational sequences (.csd) to a reference, writing mmsdk-compatible files."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mfm_bench.config import bounded_arg

HELP = "align .csd computational sequences to a reference sequence (mmsdk-compatible, Numba kernels)"
DESCRIPTION = (
    HELP
    + """.

Every sequence is aligned to the rows of the reference (usually the words): each reference row collects the rows
of the other sequence that overlap it, clipped to it and, with --collapse, averaged into one row. Output entries
are named <video id>[<reference row>], exactly as the CMU-MultimodalSDK names them, and DIR/NAME.csd is written
for every sequence, the reference included (--format npz: DIR/NAME.npz, one flat file that `align` and `prepare`
read back, and mmsdk does not); an existing DIR/NAME.csd this command did not write there stops it before anything
is read (--overwrite replaces it). Videos missing from any file are dropped. Each file is written in a background
process (--write-workers) while the next one is read and aligned. See docs/align.md for the rules."""
)

EPILOG = """\
examples:
  mfm-bench align --reference words --out aligned/ words=glove.csd covarep=COVAREP.csd facet=FACET.csd
  mfm-bench align --reference words --out aligned/ --collapse mean --collapse max --impute words=w.csd a=a.csd
  mfm-bench align --reference labels --out seg/ --collapse none labels=labels.csd words=aligned/words.csd
  mfm-bench align --reference words --out aligned/ --format npz words=glove.csd covarep=COVAREP.csd
"""


def parse_named_paths(items: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"expected NAME=PATH.csd, got {item!r}")
        if name in out:
            parser.error(f"sequence name {name!r} given twice")
        out[name] = path
    return out


def check_sequences(paths: dict[str, str], **roles: str) -> None:
    """Every role (``--reference`` NAME...) names one of the sequences, and every sequence file exists."""
    from mfm_bench.align import AlignError
    from mfm_bench.errors import MissingFileError

    for flag, name in roles.items():
        if name not in paths:
            raise AlignError(
                f"--{flag.replace('_', '-')} {name!r} is not among the sequences {list(paths)}; "
                f"pass it as {name}=PATH.csd"
            )
    missing = [f"{n}={p}" for n, p in paths.items() if not os.path.isfile(p)]
    if missing:
        raise MissingFileError(f"no such file: {', '.join(missing)}")


def refuse_overwriting_inputs(targets: list, paths: dict[str, str], inputs: list[str] = ()) -> None:
    """Raise :class:`AlignError` when a file about to be written (``targets``) is one of the input files
    (``paths``: NAME -> PATH, and ``inputs``): writing it would replace the data it is made from."""
    from mfm_bench.align import AlignError

    sources = {**{f"{n}={p}": p for n, p in paths.items()}, **{p: p for p in inputs}}
    for target in targets:
        if not os.path.exists(target):
            continue
        for given, src in sources.items():
            if os.path.exists(src) and os.path.samefile(target, src):
                raise AlignError(
                    f"--out: writing {target} would replace the input {given}, the data it is made from; give --out "
                    "another folder or file"
                )


#: the files ``mfm-bench align`` wrote into an --out folder, each with its size and modification time when written
MANIFEST = ".mfm-bench-align.json"


def _stamp(path: Path) -> dict[str, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def written_here(folder: Path) -> dict[str, dict[str, int]]:
    """The files ``mfm-bench align`` wrote into ``folder`` (by name, from its :data:`MANIFEST`), as they were."""
    try:
        files = json.loads((folder / MANIFEST).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def refuse_replacing_others(targets: list[Path], folder: Path) -> dict[Path, dict[str, int] | None]:
    """Raise :class:`AlignError` when a file about to be written (``targets``, in ``folder``) exists and is not one
    this command wrote there, unchanged since (rewriting its own output, after a change of options or an
    interruption, is what a second run is for). Returns each target's stamp now (None: absent)."""
    from mfm_bench.align import AlignError

    before = {t: _stamp(t) for t in targets}
    mine = written_here(folder)
    others = [t for t, stamp in before.items() if stamp is not None and mine.get(t.name) != stamp]
    if others:
        listed = ", ".join(str(t) for t in others)
        one = len(others) == 1
        raise AlignError(
            f"--out {folder}: {listed} already {'exists' if one else 'exist'} and {'was' if one else 'were'} not "
            "written there by mfm-bench align (or changed since); pass --overwrite to replace "
            f"{'it' if one else 'them'}, or give --out another folder"
        )
    return before


def remember_written(folder: Path, before: dict[Path, dict[str, int] | None]) -> None:
    """Record in ``folder``'s :data:`MANIFEST` every target this command (re)wrote: those whose stamp changed
    since ``before`` (each was absent, this command's own, or given up with --overwrite, so what is there now
    is ours). Atomic, so a reader never sees half a list."""
    from mfm_bench.io import atomic_write

    files = written_here(folder)
    changed = False
    for target, was in before.items():
        now = _stamp(target)
        if now is not None and now != was and files.get(target.name) != now:
            files[target.name] = now
            changed = True
    if changed:
        body = {"written by": "mfm-bench align", "files": dict(sorted(files.items()))}
        atomic_write(folder / MANIFEST, json.dumps(body, indent=1))


def make_out_folder(folder) -> None:
    """Create ``--out`` FOLDER, or say in one line why it cannot be (a file of that name, no permission)."""
    from mfm_bench.align import AlignError

    if folder.exists() and not folder.is_dir():
        raise AlignError(f"--out {folder}: is a file, not a folder; give a folder for the aligned NAME.csd files")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AlignError(f"--out {folder}: cannot create the folder ({e.strerror or e})") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequences", nargs="+", metavar="NAME=PATH.csd", help="the sequences to align, reference included")
    p.add_argument("--reference", required=True, metavar="NAME", help="the sequence whose rows everything aligns to")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the aligned NAME.csd files")
    p.add_argument(
        "--collapse",
        action="append",
        metavar="FN",
        help="mean (default), sum, min or max; repeat to concatenate several; 'none' keeps every row",
    )
    p.add_argument(
        "--impute",
        action="store_true",
        help="give every sequence an entry for every reference entry (zeros with the reference's interval)",
    )
    p.add_argument(
        "--format",
        choices=["csd", "npz"],
        default="csd",
        help="csd: the mmsdk layout (default); npz: one flat file per sequence, much faster to write",
    )
    p.add_argument("--compression", choices=["gzip", "lzf"], help="HDF5 compression of the written arrays (csd)")
    p.add_argument(
        "--write-workers",
        type=bounded_arg(int, 0, None, "a number of processes, 0 or more"),
        metavar="N",
        help="files written at once in background processes (default: the usable cores; 0 writes in this process)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace NAME.csd files in --out that this command did not write there (its own are always rewritten)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (they show only when stderr is a terminal)"
    )


def run(args: argparse.Namespace) -> int:
    from mfm_bench.align.output import sigterm_as_interrupt

    with sigterm_as_interrupt():  # a killed command removes the file it was writing, as on Ctrl-C
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import contextlib

    from mfm_bench.align import AlignError

    paths = parse_named_paths(args.sequences, argparse.ArgumentParser(prog="mfm-bench align"))
    check_sequences(paths, reference=args.reference)
    progress = not args.no_progress
    out_dir = Path(args.out)
    ext = "npz" if args.format == "npz" else "csd"
    if ext == "npz" and args.compression:
        raise AlignError("--compression applies to --format csd; an .npz is written uncompressed")
    targets = {name: out_dir / f"{name}.{ext}" for name in paths}
    refuse_overwriting_inputs(list(targets.values()), paths)
    if args.overwrite:
        before = {t: _stamp(t) for t in targets.values()}
    else:  # an unrelated NAME.csd already there is not replaced silently
        before = refuse_replacing_others(list(targets.values()), out_dir)
    make_out_folder(out_dir)  # before the reading and aligning, which can take minutes
    try:
        return _align_and_write(args, paths, targets, before, progress)
    finally:  # finished files are this command's, also after an interruption or a failed write
        with contextlib.suppress(OSError):  # never in the way of the error or interruption that ended the command
            remember_written(out_dir, before)


def _align_and_write(
    args: argparse.Namespace,
    paths: dict[str, str],
    targets: dict[str, Path],
    before: dict[Path, dict[str, int] | None],
    progress: bool,
) -> int:
    from tqdm import tqdm

    from mfm_bench.align import align_files, write_csd, write_npz

    out_dir = next(iter(targets.values())).parent
    aligned = align_files(
        paths, args.reference, args.collapse or ["mean"], impute_missing=args.impute, progress=progress
    )
    from mfm_bench.align.output import BackgroundWriters
    from mfm_bench.executors import usable_cores

    workers = usable_cores() if args.write_workers is None else args.write_workers
    bar = tqdm(total=len(paths), desc="sequences", unit=" seq", disable=None if progress else True)
    with BackgroundWriters(workers) as writers:
        lines: dict[str, str] = {}

        def report(done: list[str]) -> None:
            for name in done:
                tqdm.write(lines.pop(name))
                bar.update()
            if done:
                remember_written(out_dir, before)

        for name, seq in aligned:
            target = targets[name]
            if args.format == "npz":
                write, kw = write_npz, {}
            else:  # a progress bar per file only when written here: children's bars would interleave
                write = write_csd
                kw = {
                    "compression": args.compression,
                    "progress": f"write {name}" if progress and not workers else False,
                }
            lines[name] = f"{name}: {len(seq)} entries, {seq.n_rows} rows -> {target}"
            report(writers.submit(name, write, target, seq, **kw))
            del seq  # the child has its own copy of the arrays; this process holds one aligned sequence at a time
        report(writers.wait())
    bar.close()
    return 0
