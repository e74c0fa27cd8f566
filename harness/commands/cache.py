"""``mfm-bench cache ls|clear``: the prepared-split cache (Arrow files keyed by fingerprint)."""

from __future__ import annotations

HELP = "list or clear the prepared-split cache"
EPILOG = """\
examples:
  mfm-bench cache ls                 every cached preparation: dataset, fingerprint, sizes, disk use
  mfm-bench cache clear youtube      drop the cached preparations of one dataset
  mfm-bench cache clear --all        drop everything
  mfm-bench cache clear --stale      drop the entries marked stale (source files or code changed since)
"""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("ls", help="list cache entries")
    c = sub.add_parser("clear", help="delete cache entries")
    c.add_argument("dataset", nargs="?", default=None, help="only this dataset's entries")
    c.add_argument("--all", action="store_true", help="delete every entry")
    c.add_argument(
        "--stale", action="store_true", help="delete only the entries `cache ls` marks stale (of DATASET, or all)"
    )


def run(args) -> int:
    from mfm_bench.data import cache
    from mfm_bench.data.paths import cache_home
    from mfm_bench.errors import MfmBenchError

    if args.action == "ls":
        from tabulate import tabulate

        entries = cache.list_entries()
        versions = cache.code_versions({e["dataset"] for e in entries})
        stale = [cache.stale_reason(e, versions.get(e["dataset"])) for e in entries]
        rows = [
            [
                e["dataset"],
                e["fingerprint"],
                e["params"].get("format", ""),
                ",".join(e["modalities"]),
                "/".join(str(e["sizes"][s]) for s in e["splits"]),
                f"{e['bytes'] / 2**20:.1f} MiB",
                e["created"],
                f"stale: {why}" if why else "ok",
            ]
            for e, why in zip(entries, stale)
        ]
        print(f"prepared cache: {cache_home()}")
        headers = ["dataset", "fingerprint", "format", "modalities", "samples", "disk", "created", "status"]
        print(tabulate(rows, headers=headers) if rows else "(empty)")
        if any(stale):
            n = sum(map(bool, stale))
            print(
                f"\n{n} stale entr{'y' if n == 1 else 'ies'}: prepared from source files or code that have changed "
                "since, so no run reads them again; `mfm-bench cache clear --stale` removes them"
            )
        left = cache.leftovers()
        if left:
            size = sum(cache._size(p) for p in left) / 2**20
            print(
                f"\n{len(left)} unfinished entr{'y' if len(left) == 1 else 'ies'} ({size:.1f} MiB): preparations that "
                "were interrupted (or are still running); `mfm-bench cache clear --all` (or clear DATASET) removes them"
            )
        return 0
    if args.stale:
        n = cache.clear_stale(dataset=args.dataset)
        print(f"removed {n} stale cache entr{'y' if n == 1 else 'ies'} from {cache_home()}")
        return 0
    if args.dataset is None and not args.all:
        raise MfmBenchError("cache clear: name a dataset, or pass --all or --stale")
    n = cache.clear(dataset=args.dataset)
    print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} from {cache_home()}")
    return 0
