"""Shared fixtures. The upstream record archive is unpacked once into a cache and reused."""

from __future__ import annotations

import fcntl
import os
import shutil
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "upstream-records.tar.xz"
CACHE = Path(os.environ.get("SPEEDRUN_TEST_CACHE", Path.home() / ".cache" / "speedrun-tests"))


def unpack_archive(archive: Path = ARCHIVE, cache: Path = CACHE) -> Path:
    """Unpack the archive into cache/<size>-<mtime>/ once; return the unpacked `records/` folder.

    pytest-xdist workers may all ask at once on a fresh machine: a lock file lets one unpack while the
    others wait, and the folder only gets its final name once it is complete.
    """
    st = archive.stat()
    target = cache / f"upstream-{st.st_size}-{int(st.st_mtime)}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".unpack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            partial = target.with_suffix(".partial")
            for leftover in (partial, target):
                if leftover.exists():
                    shutil.rmtree(leftover)
            partial.mkdir()
            with tarfile.open(archive, "r:xz") as tar:
                tar.extractall(partial, filter="data")
            (partial / ".complete").touch()
            partial.rename(target)
    return target / "records"


@pytest.fixture(scope="session")
def upstream_records() -> Path:
    """The unpacked upstream `records/` folder. Skips cleanly without the archive, except in CI."""
    if not ARCHIVE.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the upstream archive is missing at {ARCHIVE}")
        pytest.skip(f"upstream archive not found at {ARCHIVE} (it sits beside the project in ../shared)")
    return unpack_archive()


@pytest.fixture(scope="session")
def reference_leaderboard() -> Path:
    path = ROOT.parent / "shared" / "reference" / "leaderboard.tsv"
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {path} is missing")
        pytest.skip(f"{path} not found")
    return path
