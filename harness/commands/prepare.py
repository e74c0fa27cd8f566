"""``mfm-bench prepare``: the word-level CMU pipeline, from .csd files to fixed-length tensors in one .npz."""

from __future__ import annotations

import argparse

HELP = "word-level pipeline: align .csd files to words, then to label segments, and write padded tensors (.npz)"
DESCRIPTION = (
    HELP
    + """.

The standard CMU recipe: align every sequence to the words (averaging the frames inside each word), impute zeros
where a modality has no frame in a word, align everything to the label segments, keep the segments present in
every sequence, and left-pad or cut each to --seq-len steps (the last steps are kept). The .npz (the tensors
format, written atomically) holds <fold>/<name> arrays of shape (N, seq-len, d), <fold>/<name>.mask (N, seq-len)
(True = real step), <fold>/<labels> of shape (N, d), <fold>/ids (segment keys) and meta.json (dims, sizes and the
alignment settings). An existing --out file is replaced only if this command wrote it there (listed, with its
size and modification time, in .mfm-bench-prepare.json beside it) and it is unchanged since; --overwrite replaces
any other. The `tensors` dataset trains on it. NaN and -inf (COVAREP has both) are kept unless
--nan-to-num is given. See docs/align.md and docs/datasets.md."""
)

EPILOG = """\
examples:
  mfm-bench prepare --words words --labels labels --seq-len 50 --folds folds.json --out mosi.npz \\
      words=glove.csd covarep=COVAREP.csd facet=FACET.csd labels=labels.csd

folds.json maps fold names to video id lists: {"train": [...], "valid": [...], "test": [...]}.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequences", nargs="+", metavar="NAME=PATH.csd", help="every sequence, words and labels included")
    p.add_argument("--words", required=True, metavar="NAME", help="the word sequence (first alignment reference)")
    p.add_argument("--labels", required=True, metavar="NAME", help="the label sequence (segments)")
    p.add_argument("--seq-len", type=int, default=50, help="steps per segment (default 50)")
    p.add_argument("--folds", required=True, metavar="FOLDS.json", help="JSON {fold: [video ids]}")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE.npz",
        help="output file; an existing one is replaced only if this command wrote it (see --overwrite)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file this command did not write there (an input is never replaced)",
    )
    p.add_argument(
        "--collapse",
        action="append",
        metavar="FN",
        help="mean (default), sum, min or max over each word's frames; repeat to concatenate several",
    )
    p.add_argument("--no-impute", action="store_true", help="skip imputing missing words (drops those segments' rows)")
    p.add_argument("--nan-to-num", action="store_true", help="replace NaN and +-inf by 0 in the tensors")
    p.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="tensor dtype (float64, as mmsdk returns; float32 halves the file)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (they show only when stderr is a terminal)"
    )


def load_folds(path: str) -> dict[str, list[str]]:
    import json

    from mfm_bench.align import AlignError

    try:
        with open(path, encoding="utf-8") as f:
            folds = json.load(f)
    except OSError as e:
        raise AlignError(f"{path}: cannot read the folds file ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise AlignError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(folds, dict) or not all(isinstance(v, list) for v in folds.values()):
        raise AlignError(
            f"{path}: folds must be a JSON object mapping fold names to lists of video ids, "
            'e.g. {"train": ["vid1"], "valid": [], "test": []}'
        )
    return {str(k): [str(x) for x in v] for k, v in folds.items()}


def no_segment_in_folds(folds_path: str, folds: dict[str, list[str]], labels_path: str) -> Exception:
    """The error for folds that hold none of the labelled segments' videos (nothing would be written)."""
    from mfm_bench.align import AlignError, csd_entries, strip_key

    videos = sorted({strip_key(e) for e in csd_entries(labels_path)})
    listed = [v for ids in folds.values() for v in ids]
    return AlignError(
        f"{folds_path}: no labelled segment belongs to a fold, so nothing was written; the folds list "
        f"{len(listed)} video id(s) ({', '.join(map(repr, listed[:3])) or 'none'}{' ...' if len(listed) > 3 else ''})"
        f" and {labels_path} has {len(videos)} ({', '.join(map(repr, videos[:3]))}{' ...' if len(videos) > 3 else ''})"
        ": the folds must list the video ids of the .csd files"
    )


def alignment_settings(args: argparse.Namespace, paths: dict[str, str]) -> dict:
    """What the tensors file records about how it was made (its ``meta.json`` ``alignment`` entry)."""
    import os

    from mfm_bench import __version__

    return {
        "alignment": {
            "words": args.words,
            "labels": args.labels,
            "seq_len": args.seq_len,
            "collapse": args.collapse or ["mean"],
            "impute_missing": not args.no_impute,
            "nan_to_num": args.nan_to_num,
            "dtype": args.dtype,
            "sources": {n: os.path.abspath(p) for n, p in paths.items()},
        },
        "created_by": f"mfm-bench {__version__}",
    }


#: the .npz files ``mfm-bench prepare`` wrote into a folder, each with its size and modification time when written
MANIFEST = ".mfm-bench-prepare.json"


def _written_here(folder) -> dict[str, dict[str, int]]:
    """The files ``prepare`` wrote into ``folder`` (by name, from its :data:`MANIFEST`), as they were then."""
    import json

    try:
        files = json.loads((folder / MANIFEST).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def refuse_other_files(out, overwrite: bool = False) -> dict[str, int] | None:
    """``--out`` may replace a file ``prepare`` wrote there, unchanged since (running it again, with other options
    or after an interruption), never another file (someone else's .npz, another prepared dataset copied there, or
    its own changed since) unless ``overwrite``. Returns the file's stamp now (None: absent), as ``align`` does."""
    from mfm_bench.align import AlignError

    from .align import _stamp

    before = _stamp(out)
    if before is not None and not overwrite and _written_here(out.parent).get(out.name) != before:
        raise AlignError(
            f"--out {out}: already exists and was not written there by mfm-bench prepare (or changed since), so it "
            "is left as it is; pass --overwrite to replace it, or give --out another file"
        )
    return before


def remember_written(out, before: dict[str, int] | None) -> None:
    """Note ``out`` in its folder's :data:`MANIFEST` when this command (re)wrote it (its stamp changed since
    ``before``), so a second run rewrites it without --overwrite. Atomic, so a reader never sees half a list."""
    import json

    from mfm_bench.io import atomic_write

    from .align import _stamp

    now = _stamp(out)
    files = _written_here(out.parent)
    if now is None or now == before or files.get(out.name) == now:
        return
    files[out.name] = now
    body = {"written by": "mfm-bench prepare", "files": dict(sorted(files.items()))}
    atomic_write(out.parent / MANIFEST, json.dumps(body, indent=1))


def run(args: argparse.Namespace) -> int:
    from mfm_bench.align.output import sigterm_as_interrupt

    with sigterm_as_interrupt():  # a killed command removes the file it was writing, as on Ctrl-C
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import contextlib
    from pathlib import Path

    import numpy as np

    from mfm_bench.align import AlignError, prepare_word_level
    from mfm_bench.data.prepare import write_tensors

    from .align import check_sequences, parse_named_paths, refuse_overwriting_inputs

    paths = parse_named_paths(args.sequences, argparse.ArgumentParser(prog="mfm-bench prepare"))
    check_sequences(paths, words=args.words, labels=args.labels)
    if any(c.strip().lower() == "none" for c in args.collapse or []):
        raise AlignError(
            "--collapse none keeps every frame, so the steps would be frames, not words; prepare collapses the frames "
            "of each word (mean, sum, min or max). To keep every frame, use `mfm-bench align --collapse none`"
        )
    if args.words == args.labels:
        raise AlignError(f"--words and --labels both name {args.words!r}; the labels are their own sequence")
    out = Path(args.out)
    if out.is_dir():
        raise AlignError(f"--out {out}: is a folder; give the .npz file to write, e.g. {out / 'data.npz'}")
    refuse_overwriting_inputs([out], paths, [args.folds])
    before = refuse_other_files(out, args.overwrite)
    folds = load_folds(args.folds)
    tensors = prepare_word_level(
        paths,
        args.words,
        args.labels,
        args.seq_len,
        folds,
        collapse=args.collapse or ["mean"],
        impute_missing=not args.no_impute,
        dtype=np.dtype(args.dtype),
        clean=args.nan_to_num,
        progress=not args.no_progress,
        lengths=True,
    )
    if not any(len(d["ids"]) for d in tensors.values()):
        raise no_segment_in_folds(args.folds, folds, paths[args.labels])
    try:
        write_tensors(out, tensors, labels=args.labels, meta=alignment_settings(args, paths))
    except OSError as e:
        raise AlignError(f"--out {out}: cannot write the file ({e.strerror or e})") from None
    finally:  # whatever ended the command, a file it did write is its own
        with contextlib.suppress(OSError):  # never in the way of the error or interruption that ended it
            remember_written(out, before)
    for fold, d in tensors.items():
        shapes = ", ".join(f"{n} {tuple(a.shape)}" for n, a in d.items() if n != "ids" and not n.endswith(".length"))
        print(f"{fold}: {len(d['ids'])} segments: {shapes}")
    print(f"wrote {out}")
    return 0
