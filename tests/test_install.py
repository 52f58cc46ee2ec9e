"""What an install pulls in: training on a CPU must not bring CUDA, and every dependency is one the code uses.

The README's CPU install is two steps: PyTorch's CPU build from PyTorch's own index, then the project with
its `train` extra. The first is PyTorch's documented command (its index is out of reach of the test suite);
the second is checked here with pip's own resolver: with a CPU build of torch in place, `pip install
--dry-run --report` on the project's requirements must resolve no `nvidia-*` package, and no torch. Where
the environment already holds the requirements (as after the README's test command) pip asks no index.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CUDA_PACKAGE = re.compile(r"^(nvidia[-_]|cuda[-_])", re.IGNORECASE)


def requirements(*extras: str) -> list[str]:
    return [*PROJECT["dependencies"], *(r for extra in extras for r in PROJECT["optional-dependencies"][extra])]


def cpu_torch_installed() -> str | None:
    """The installed torch's version when it is a build that needs no CUDA package, else None."""
    try:
        needs = metadata.requires("torch") or []
    except metadata.PackageNotFoundError:
        return None
    return None if any(CUDA_PACKAGE.match(r) for r in needs) else metadata.version("torch")


def test_the_train_extra_on_a_cpu_build_of_torch_pulls_no_cuda(tmp_path: Path) -> None:
    version = cpu_torch_installed()
    if version is None:
        reason = "needs a CPU build of torch installed (as the README's CPU install and the test command give)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report)]
    proc = subprocess.run([*command, *requirements("train")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    resolved = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert not [name for name in resolved if CUDA_PACKAGE.match(name)], resolved
    assert "torch" not in resolved, f"the CPU build of torch {version} would be replaced by {resolved['torch']}"
    assert "triton" not in resolved, "Triton is a GPU compiler: a CPU install has no use for it"


def test_the_readme_gives_the_cpu_install_before_the_project() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### A CPU smoke run") :]
    block = section[section.index("```bash") : section.index("```", section.index("```bash") + 3)]
    commands = [line for line in block.splitlines() if line.startswith("pip install")]
    assert commands[:2] == [
        "pip install torch --index-url https://download.pytorch.org/whl/cpu",
        "pip install -e '.[train]'",
    ]


def imported_modules() -> set[str]:
    """The top-level modules that the package's own code imports, read with ast."""
    names: set[str] = set()
    for path in (ROOT / "speedrun").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_dependency_is_imported_by_the_package() -> None:
    imported = imported_modules()
    module_of = {"huggingface-hub": "huggingface_hub", "huggingface_hub": "huggingface_hub"}
    for requirement in requirements("train"):
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()
        module = module_of.get(name, name)
        if module == "tomli":  # the Python 3.10 stand-in for tomllib
            assert "tomllib" in imported
            continue
        assert module in imported, f"{requirement}: no module of speedrun imports {module}"
