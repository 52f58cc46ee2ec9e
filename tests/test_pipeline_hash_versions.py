"""The data-pipeline hash must not depend on the Python that runs the judge.

`ast.dump` changes between Python versions (new fields such as `type_params`, empty fields left out
from 3.13), so a hash built on it would make a log that passes under one interpreter fail under another.
This test hashes the same sources under every other CPython 3.10+ it can find and compares.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from speedrun.judge.pipeline import source_hash
from tests.conftest import ROOT

THIS_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
SAMPLES = {
    "trainer data.py": (ROOT / "speedrun" / "trainer" / "data.py").read_text(encoding="utf-8"),
    "annotated": (
        "def f(x: int, *, y: 'str' = None) -> list[int]:\n"
        '    """doc"""\n'
        "    return [f'{x!r:>{y}}', b'raw', u'u', ..., x[1:2, ::3], lambda: (yield)]\n"
    ),
}
HASH_IN_SUBPROCESS = (
    "import json, sys\n"
    "from speedrun.judge.pipeline import source_hash\n"
    "print(json.dumps({k: source_hash(v) for k, v in json.load(sys.stdin).items()}))\n"
)


def other_interpreters() -> list[str]:
    """One executable per CPython 3.10+ version on this machine other than the one running the tests."""
    found: dict[str, str] = {}
    candidates = [shutil.which(f"python3.{minor}") for minor in range(10, 15)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python3")))
    for exe in filter(None, candidates):
        proc = subprocess.run(
            [exe, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True,
            text=True,
        )
        version = proc.stdout.strip()
        if proc.returncode == 0 and version and version != THIS_PYTHON:
            found.setdefault(version, exe)
    return [found[v] for v in sorted(found)]


@pytest.mark.parametrize(
    "exe", other_interpreters() or [pytest.param(None, marks=pytest.mark.skip("no other CPython"))]
)
def test_hash_is_the_same_under_every_python(exe: str) -> None:
    proc = subprocess.run(
        [exe, "-c", HASH_IN_SUBPROCESS],
        input=json.dumps(SAMPLES),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    ours = {k: source_hash(v) for k, v in SAMPLES.items()}
    assert json.loads(proc.stdout) == ours, f"{exe} hashes differently from Python {THIS_PYTHON}"


def test_hash_ignores_layout_comments_and_docstrings() -> None:
    a = "def f(x):\n    '''doc'''\n    return x + 1  # one\n"
    b = "def f( x ):\n\n    return (x + 1)\n"
    c = "def f(x):\n    return x + 2\n"
    assert source_hash(a) == source_hash(b) != source_hash(c)
