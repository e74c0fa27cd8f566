"""Where data live on disk.

- Raw source files (what ``mfm-bench fetch`` downloads, or what a user copies in): ``data_home()``, which is
  ``$MFM_BENCH_DATA`` when set, else the platform's user cache folder + ``/data`` (``~/.cache/mfm-bench/data`` on
  Linux). Inside it each dataset plugin declares its folders, one per format (e.g. ``mfn-h5/mmmo/``).
- Prepared splits (the Arrow cache): ``cache_home()``, ``$MFM_BENCH_CACHE`` when set, else the platform cache
  folder + ``/prepared``. It is kept apart from ``data_home()`` so that ``MFM_BENCH_DATA`` may point at a
  read-only copy.
- User configuration (download mirrors): ``config_file()``, ``$MFM_BENCH_CONFIG`` or the platform config folder
  + ``/config.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path

from mfm_bench.errors import MfmBenchError

APP = "mfm-bench"


def _user_cache_dir() -> Path:
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir(APP, appauthor=False))
    except ImportError:  # XDG rules by hand
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / APP


def _user_config_dir() -> Path:
    try:
        import platformdirs

        return Path(platformdirs.user_config_dir(APP, appauthor=False))
    except ImportError:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return Path(base) / APP


def data_home() -> Path:
    """Root of the raw data files: ``$MFM_BENCH_DATA`` or the platform cache folder + ``/data``."""
    env = os.environ.get("MFM_BENCH_DATA", "").strip()
    return Path(env).expanduser() if env else _user_cache_dir() / "data"


def cache_home() -> Path:
    """Root of the prepared-split cache: ``$MFM_BENCH_CACHE`` or the platform cache folder + ``/prepared``."""
    env = os.environ.get("MFM_BENCH_CACHE", "").strip()
    return Path(env).expanduser() if env else _user_cache_dir() / "prepared"


def config_file() -> Path:
    """The user configuration file (mirrors): ``$MFM_BENCH_CONFIG`` or ``<platform config>/config.toml``."""
    env = os.environ.get("MFM_BENCH_CONFIG", "").strip()
    return Path(env).expanduser() if env else _user_config_dir() / "config.toml"


def home_problem(home: Path, folders: list[str]) -> str | None:
    """Why data home ``home`` holds none of the format ``folders`` (relative, e.g. ``mfn-h5/mmmo``), when a
    likely reason shows: it does not exist, or it is one of those folders (or a part of one) rather than the
    folder above them. ``None`` when some folder is there or no reason shows."""
    home = Path(home).expanduser()
    if not home.exists():
        return f"the data home {home} does not exist"
    if any((home / f).is_dir() for f in folders):
        return None
    for f in folders:
        parts = Path(f).parts
        for i in range(1, len(parts) + 1):
            if len(home.parts) > i and home.parts[-i:] == parts[:i] and (home.parents[i - 1] / f).is_dir():
                above = home.parents[i - 1]
                return (
                    f"the data home {home} is the {'/'.join(parts[:i])} folder inside one; set "
                    f"MFM_BENCH_DATA={above} (the folder holding {parts[0]}/)"
                )
    try:
        below = sorted(c for c in home.iterdir() if c.is_dir() and any((c / f).is_dir() for f in folders))
    except OSError:
        below = []
    if below:
        return f"the data home {home} holds its folders one level down; set MFM_BENCH_DATA={below[0]}"
    return None


class UserConfigError(MfmBenchError, ValueError):
    """The user configuration file is malformed; the message names it."""


def load_user_config() -> dict:
    """The parsed user config (``{}`` when there is none). A malformed file is an error naming it."""
    path = config_file()
    if not path.is_file():
        return {}
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserConfigError(f"{path}: not valid TOML ({e}); fix or remove the file") from e
