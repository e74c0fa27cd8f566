"""``mfm-bench fetch DATASET``: download the files a dataset plugin declares, verified, into the data home."""

from __future__ import annotations

from pathlib import Path

HELP = "download a dataset's public files (resumable, verified against pinned hashes)"
DESCRIPTION = """\
Download the files DATASET's plugin declares into the data home ($MFM_BENCH_DATA, else the platform cache),
resuming partial downloads and verifying every file against its declared hash before it is put in place. A
source that is often down can be replaced: --mirror (or MFM_BENCH_MIRROR, or a [mirrors] table in the user config
keyed by dataset or format name) points at another copy laid out like the format's folder."""
EPILOG = """\
examples:
  mfm-bench fetch ict-mmmo                                the dataset's first downloadable format
  mfm-bench fetch youtube --modalities audio,visual       only what an acoustic+visual run needs
  mfm-bench fetch cmu-mosi --format csd --to /data/mm     another format, into another data home
  mfm-bench fetch youtube --mirror http://host/mfn-h5     from a mirror serving youtube/audio_train.h5 ...
"""


def add_arguments(parser) -> None:
    from mfm_bench.config import bounded_arg
    from mfm_bench.data.fetch import DEFAULT_TIMEOUT

    parser.add_argument("dataset", help="dataset plugin name (`mfm-bench datasets` lists them)")
    parser.add_argument(
        "--to", type=Path, default=None, help="data home to write into (default: $MFM_BENCH_DATA or the platform cache)"
    )
    parser.add_argument("--mirror", default=None, help="base URL of a mirror laid out like the format's folder")
    parser.add_argument(
        "--format",
        dest="fmt",
        default=None,
        help="which of the dataset's formats to download (default: its first downloadable one)",
    )
    parser.add_argument(
        "--modalities", default=None, help="comma-separated subset of the dataset's modalities (default: all)"
    )
    parser.add_argument(
        "--timeout",
        type=bounded_arg(float, 0.1, 86400, "seconds, from 0.1 to 86400"),
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for a connection or data (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def declaration(name: str, params: dict):
    """The :class:`~mfm_bench.contracts.DataDeclaration` of dataset ``name`` under ``params``; raises
    :class:`FetchError` for an unknown dataset or one that declares no files."""
    from mfm_bench.data.fetch import FetchError
    from mfm_bench.registry import PluginError, get_registry

    reg = get_registry()
    try:
        factory = reg.get("dataset", name).factory
    except PluginError as e:
        raise FetchError(str(e)) from None
    declare = getattr(factory, "declare", None)
    if declare is None:
        raise FetchError(f"{name}: declares no files to download (its data are generated or built in)")
    advice = getattr(factory, "FETCH_ADVICE", "")
    if advice:  # data the user makes (the tensors dataset): nothing anyone publishes, so say how to make them
        raise FetchError(f"{name}: nothing to download; {advice}")
    try:
        return declare(reg.config_of("dataset", name, params))
    except ValueError as e:  # ConfigError and a plugin's own checks of its params
        raise FetchError(f"{name}: {e}") from None


def run(args) -> int:
    from mfm_bench.data.fetch import FetchError, fetch_dataset
    from mfm_bench.data.paths import data_home

    params = {}
    if args.modalities:
        params["modalities"] = [m.strip() for m in args.modalities.split(",") if m.strip()]
    decl = declaration(args.dataset, params)
    formats = [f.name for f in decl.formats]
    if args.fmt is not None and args.fmt not in formats:
        raise FetchError(f"{args.dataset} has no format {args.fmt!r}; it reads {', '.join(formats)}")
    files = fetch_dataset(
        decl, to=args.to, fmt=args.fmt, mirror=args.mirror, progress=False if args.quiet else None, timeout=args.timeout
    )
    root = args.to or data_home()
    print(f"{args.dataset}: {len(files)} files verified under {root}")
    if args.to is not None and args.to.expanduser().resolve() != data_home().resolve():
        print(f"(not the data home {data_home()}: set MFM_BENCH_DATA={root} or give the dataset params.path: {root})")
    return 0
