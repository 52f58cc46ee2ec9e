"""Shared fixtures. The upstream record archive is unpacked once into a cache and reused."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "upstream-records.tar.xz"
CACHE = Path(os.environ.get("SPEEDRUN_TEST_CACHE", Path.home() / ".cache" / "speedrun-tests"))


def unpack_archive(archive: Path = ARCHIVE, cache: Path = CACHE) -> Path:
    """Unpack the archive into cache/<size>-<mtime>/ once; return the unpacked `records/` folder."""
    st = archive.stat()
    target = cache / f"upstream-{st.st_size}-{int(st.st_mtime)}"
    done = target / ".complete"
    if not done.exists():
        tmp = target.with_suffix(".partial")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(tmp, filter="data")
        if target.exists():
            import shutil

            shutil.rmtree(target)
        tmp.rename(target)
        done.touch()
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
