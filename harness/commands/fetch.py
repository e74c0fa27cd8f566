"""``mfm-bench fetch DATASET``: download a dataset's public files, verified, into the data home."""

from __future__ import annotations

from pathlib import Path

HELP = "download a dataset's public files (resumable, verified against pinned hashes)"
DESCRIPTION = """\
Download the public files of DATASET into the data home ($MFM_BENCH_DATA, else the platform cache), resuming
partial downloads and verifying every file against its pinned hash (git blob ids for the MFN h5 files) before
it is put in place. The CMU server is often down: --mirror (or MFM_BENCH_MIRROR, or a [mirrors] table in the
user config keyed by dataset or format name) points at another copy laid out like the format's folder."""
EPILOG = """\
examples:
  mfm-bench fetch ict-mmmo                                MFN h5 files of ICT-MMMO from the MFN repository
  mfm-bench fetch youtube --modalities audio,visual       only what an acoustic+visual run needs
  mfm-bench fetch cmu-mosi --format csd --to /data/mm     CMU-MultimodalSDK sequences into /data/mm/csd/CMU_MOSI
  mfm-bench fetch youtube --mirror http://host/mfn-h5     from a mirror serving youtube/audio_train.h5 ...
"""


def add_arguments(parser) -> None:
    parser.add_argument("dataset", help="dataset plugin name (cmu-mosi, cmu-mosei, ict-mmmo, youtube, pom, ...)")
    parser.add_argument("--to", type=Path, default=None, help="data home to write into (default: $MFM_BENCH_DATA or the platform cache)")
    parser.add_argument("--mirror", default=None, help="base URL of a mirror laid out like the format's folder")
    parser.add_argument("--format", dest="fmt", default=None, choices=["mfn-h5", "csd"], help="which format to download (default: the dataset's first)")
    parser.add_argument("--modalities", default=None, help="comma-separated subset of text,audio,visual (default: all)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a connection or data (default 30)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    from mfm_bench.data.fetch import FetchError, fetch_dataset
    from mfm_bench.data.paths import data_home

    mods = [m.strip() for m in args.modalities.split(",") if m.strip()] if args.modalities else None
    bad = [m for m in mods or [] if m not in ("text", "audio", "visual")]
    if bad:
        raise FetchError(f"unknown modalities {bad}; use text, audio, visual")
    files = fetch_dataset(args.dataset, to=args.to, fmt=args.fmt, modalities=mods, mirror=args.mirror,
                          progress=False if args.quiet else None, timeout=args.timeout)
    root = args.to or data_home()
    print(f"{args.dataset}: {len(files)} files verified under {root}")
    if args.to is not None and args.to.expanduser().resolve() != data_home().resolve():
        print(f"(not the data home {data_home()}: set MFM_BENCH_DATA={root} or give the dataset params.path: {root})")
    return 0
