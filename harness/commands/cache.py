"""``mfm-bench cache ls|clear``: the prepared-split cache (Arrow files keyed by fingerprint)."""

from __future__ import annotations

HELP = "list or clear the prepared-split cache"
EPILOG = """\
examples:
  mfm-bench cache ls                 every cached preparation: dataset, fingerprint, sizes, disk use
  mfm-bench cache clear youtube      drop the cached preparations of one dataset
  mfm-bench cache clear --all        drop everything
"""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("ls", help="list cache entries")
    c = sub.add_parser("clear", help="delete cache entries")
    c.add_argument("dataset", nargs="?", default=None, help="only this dataset's entries")
    c.add_argument("--all", action="store_true", help="delete every entry")


def run(args) -> int:
    from mfm_bench.data import cache
    from mfm_bench.data.paths import cache_home
    from mfm_bench.errors import MfmBenchError

    if args.action == "ls":
        from tabulate import tabulate

        entries = cache.list_entries()
        rows = [
            [
                e["dataset"],
                e["fingerprint"],
                e["params"].get("format", ""),
                ",".join(e["modalities"]),
                "/".join(str(e["sizes"][s]) for s in e["splits"]),
                f"{e['bytes'] / 2**20:.1f} MiB",
                e["created"],
            ]
            for e in entries
        ]
        print(f"prepared cache: {cache_home()}")
        print(
            tabulate(rows, headers=["dataset", "fingerprint", "format", "modalities", "samples", "disk", "created"])
            if rows
            else "(empty)"
        )
        left = cache.leftovers()
        if left:
            size = sum(cache._size(p) for p in left) / 2**20
            print(
                f"\n{len(left)} unfinished entr{'y' if len(left) == 1 else 'ies'} ({size:.1f} MiB): preparations that "
                "were interrupted (or are still running); `mfm-bench cache clear --all` (or clear DATASET) removes them"
            )
        return 0
    if args.dataset is None and not args.all:
        raise MfmBenchError("cache clear: name a dataset or pass --all")
    n = cache.clear(dataset=args.dataset)
    print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} from {cache_home()}")
    return 0
