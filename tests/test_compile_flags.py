"""Compiler settings and the code that could hide one, found with `ast` through every route a contributor has.

Each route is a snippet after the imports a record has; the finding must name the setting (or what cannot be
confirmed) at the snippet's line. The archive fixes what must not be flagged: the records' own settings.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge.compile_flags import (
    ALLOWED,
    BENIGN_DYNAMO_CONFIG,
    SETTING,
    UNCONFIRMED,
    CompileFlag,
    _Walker,
    find_compile_flags,
)
from speedrun.judge.discover import find_run_logs
from speedrun.judge.embedded import normalised_dump
from speedrun.judge.parse import parse_log

IMPORTS = "import os\nimport sys\nimport torch\nimport torch._dynamo as dynamo\n"
LINE = IMPORTS.count("\n") + 1  # the first line of the snippet
MEDIUM = frozenset({"coordinate_descent_tuning"})


def found(snippet: str, allowed: frozenset[str] = frozenset()) -> list[tuple[str, int, str]]:
    return [(f.name, f.line, f.kind) for f in find_compile_flags(IMPORTS + snippet, allowed)]


@pytest.mark.parametrize(
    ("snippet", "name", "offset"),
    [
        ("torch._inductor.config.max_autotune = True", "max_autotune", 0),
        ("import torch._inductor.config as cfg\ncfg.max_autotune = True", "max_autotune", 1),
        ("from torch._inductor import config as ic\nic.triton.cudagraphs = True", "triton.cudagraphs", 1),
        ("cfg = torch._inductor.config\nx = 1\ncfg.epilogue_fusion = False", "epilogue_fusion", 2),
        ("a = torch\nb = a._inductor\nc = b.config\nc.max_autotune = True", "max_autotune", 3),
        ("def tune():\n    ic.max_autotune = True\nic = torch._inductor.config", "max_autotune", 1),
        ("def tune():\n    c = torch._inductor.config\n    c.max_autotune = True", "max_autotune", 2),
        ('getattr(torch, "_inductor").config.max_autotune = True', "max_autotune", 0),
        ('getattr(getattr(torch, "_inductor"), "config").max_autotune = True', "max_autotune", 0),
        ('torch._inductor.config.__dict__.update({"max_autotune": True})', "max_autotune", 0),
        ('torch._inductor.config.__dict__["max_autotune"] = True', "max_autotune", 0),
        ('vars(torch._inductor.config)["max_autotune"] = True', "max_autotune", 0),
        ("vars(torch._inductor.config).update(max_autotune=True)", "max_autotune", 0),
        ('setattr(torch._inductor.config, "max_autotune", True)', "max_autotune", 0),
        ('import importlib\nimportlib.import_module("torch._inductor.config").max_autotune = True', "max_autotune", 1),
        ('__import__("torch._inductor.config", fromlist=["x"]).max_autotune = True', "max_autotune", 0),
        ('sys.modules["torch._inductor.config"].max_autotune = True', "max_autotune", 0),
        ('exec("torch._inductor.config.max_autotune = True")', "max_autotune", 0),
        ("exec(\"exec('torch._inductor.config.max_autotune = True')\")", "max_autotune", 0),
        ("with torch._inductor.config.patch(max_autotune=True):\n    pass", "max_autotune", 0),
        ('with torch._inductor.config.patch({"max_autotune": True}):\n    pass', "max_autotune", 0),
        ("@torch._inductor.config.patch(max_autotune=True)\ndef f():\n    pass", "max_autotune", 0),
        ('os.environ["TORCHINDUCTOR_MAX_AUTOTUNE"] = "1"', "TORCHINDUCTOR_MAX_AUTOTUNE", 0),
        ('os.environ.update({"TORCHINDUCTOR_MAX_AUTOTUNE": "1"})', "TORCHINDUCTOR_MAX_AUTOTUNE", 0),
        ('os.environ.update(TORCHINDUCTOR_MAX_AUTOTUNE="1")', "TORCHINDUCTOR_MAX_AUTOTUNE", 0),
        ('os.environ |= {"TORCHINDUCTOR_MAX_AUTOTUNE": "1"}', "TORCHINDUCTOR_MAX_AUTOTUNE", 0),
        ('os.environ.setdefault("TORCHINDUCTOR_MAX_AUTOTUNE", "1")', "TORCHINDUCTOR_MAX_AUTOTUNE", 0),
        ('os.putenv("TORCHINDUCTOR_MAX_AUTOTUNE", "1")', "TORCHINDUCTOR_MAX_AUTOTUNE", 0),
        ('from os import environ as env\nenv["TORCHINDUCTOR_MAX_AUTOTUNE"] = "1"', "TORCHINDUCTOR_MAX_AUTOTUNE", 1),
        ('model = torch.compile(model, mode="max-autotune")', "mode=max-autotune", 0),
        ('model = torch.compile(model, options={"shape_padding": True})', "shape_padding", 0),
        ('model = torch.compile(model, backend="cudagraphs")', "backend=cudagraphs", 0),
        ('c = torch.compile\nmodel = c(model, mode="max-autotune")', "mode=max-autotune", 1),
        ('from torch import compile as c\nmodel = c(model, mode="max-autotune")', "mode=max-autotune", 1),
        ('c = getattr(torch, "compile")\nmodel = c(model, mode="max-autotune")', "mode=max-autotune", 1),
        ('import functools\nc = functools.partial(torch.compile, mode="max-autotune")', "mode=max-autotune", 1),
        (
            'from functools import partial\nc = partial(torch.compile)\nm = c(m, mode="max-autotune")',
            "mode=max-autotune",
            2,
        ),
        ('NOTE = """\n"""; torch._inductor.config.max_autotune = True', "max_autotune", 1),
    ],
)
def test_settings_are_found_through_every_route(snippet: str, name: str, offset: int) -> None:
    assert (name, LINE + offset, SETTING) in found(snippet)


@pytest.mark.parametrize(
    ("snippet", "words"),
    [
        ('code = "torch._inductor" + ".config.max_autotune = True"\nexec(code)', "exec of code the judge cannot"),
        ("eval(source)", "eval of code"),
        ('compile(source, "x", "exec")', "compile of code"),
        ('exec("torch._inductor.config.max_autotune = (")', "exec of code"),
        ('import importlib\nm = importlib.import_module("torch._ind" + "uctor")', "import_module of a computed name"),
        ("__import__(name)", "__import__ of a computed name"),
        ('getattr(torch, "_ind" + "uctor").config.max_autotune = True', "getattr on torch with a computed name"),
        ("setattr(torch._inductor.config, name, True)", "setattr on torch._inductor.config with a computed name"),
        ("torch._inductor.config.__dict__.update(settings)", "from a computed"),
        ("sys.modules[name].max_autotune = True", "uses sys.modules as a value"),
        ("def tune(c):\n    c.max_autotune = True\ntune(torch._inductor.config)", "uses torch._inductor.config"),
        ("holder = [torch]", "uses torch as a value"),
        ("torch._dynamo.config.compiled_autograd = True", "compiled_autograd"),
        ("dynamo.config.optimize_ddp = False", "optimize_ddp"),
        ("torch._inductor.codecache.trace_structured = f", "assigns torch._inductor.codecache.trace_structured"),
        ("torch._inductor.utils.fresh_inductor_cache()", "calls torch._inductor.utils.fresh_inductor_cache"),
        ("torch.compile = my_compile", "assigns torch.compile"),
        ("os.environ[key] = '1'", "computed name"),
        ("os.environ.update(settings)", "computed mapping"),
        ('names = ["TORCHINDUCTOR_MAX_AUTOTUNE"]', "names TORCHINDUCTOR_MAX_AUTOTUNE"),
        ("model = torch.compile(model, **options)", "torch.compile options from **"),
    ],
)
def test_what_cannot_be_confirmed_is_reported_not_ignored(snippet: str, words: str) -> None:
    flags = find_compile_flags(IMPORTS + snippet)
    assert any(f.kind == UNCONFIRMED and words in f.name for f in flags), flags


@pytest.mark.parametrize(
    "snippet",
    [
        "dynamo.config.recompile_limit = 64",
        "torch._dynamo.config.cache_size_limit = 64",
        "torch._dynamo.config.accumulated_recompile_limit = 256",
        'os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"',
        'os.environ["NCCL_NVLS_ENABLE"] = "0"',
        'os.environ.setdefault("KERNELS_CACHE", "/tmp/kernels")',
        'os.environ["TORCHINDUCTOR_CACHE_DIR"] = "/tmp/inductor"',
        'rank = int(os.environ["RANK"])\nfp8 = not os.environ.get("DISABLE_FP8", False)',
        "model.eval()\nfor m in model.modules():\n    pass",
        'lr = group["lr"] * getattr(p, "lr_mul", 1.0)',
        "model = torch.compile(model, dynamic=False, fullgraph=True)",
        'model = torch.compile(model, backend="inductor")',
        "@torch.compile\ndef f(x):\n    return x\n"
        "@torch.compile(dynamic=False, fullgraph=True)\ndef g(x):\n    return x",
        "@torch._dynamo.disable\ndef f(x):\n    return x",
        "dtype = getattr(torch, 'float8_e4m3fn')\nok = hasattr(torch, 'compile')",
        "# torch._inductor.config.max_autotune = True",
        'NOTE = "torch._inductor.config.max_autotune = True"',
        'def f():\n    """torch.compile(model, mode="max-autotune")"""\n    return 1',
        "import torch._inductor.config as config\nclass GPT:\n    def __init__(self, config):\n"
        "        config.n_layer = 12\n        self.config = config",
        "torch.backends.cuda.matmul.allow_tf32 = True\ntorch.set_float32_matmul_precision('high')",
    ],
)
def test_benign_code_is_not_flagged(snippet: str) -> None:
    assert found(snippet) == []


def test_the_allowed_set_is_an_argument() -> None:
    snippet = (
        "torch._inductor.config.coordinate_descent_tuning = True\n"
        'model = torch.compile(model, options={"coordinate_descent_tuning": True})\n'
        'os.environ["TORCHINDUCTOR_COORDINATE_DESCENT_TUNING"] = "1"\n'
    )
    assert {kind for _, _, kind in found(snippet, MEDIUM)} == {ALLOWED}
    assert {kind for _, _, kind in found(snippet)} == {SETTING}


def test_every_benign_dynamo_setting_only_bounds_recompiles_or_logging() -> None:
    assert {"recompile_limit", "cache_size_limit"} <= BENIGN_DYNAMO_CONFIG
    assert not BENIGN_DYNAMO_CONFIG & {"compiled_autograd", "optimize_ddp", "suppress_errors", "capture_scalar_outputs"}


def test_a_source_that_is_not_python_is_unconfirmed_and_its_parts_still_read() -> None:
    flags = find_compile_flags(IMPORTS + "<<<<<<< HEAD\ntorch._inductor.config.max_autotune = True\n")
    assert (flags[0].how, flags[0].kind) == ("unparseable source", UNCONFIRMED)
    assert ("max_autotune", SETTING) in [(f.name, f.kind) for f in flags]


def test_walks_are_iterative(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain thousands deep, parsed while the stack allows it, is walked and dumped with the stack at 100."""
    deep = "x = (" + "a." * 600 + "b)\ntorch._inductor.config.max_autotune = x\n"
    tree = ast.parse(IMPORTS + deep)
    monkeypatch.setattr(sys, "getrecursionlimit", sys.getrecursionlimit)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(100)
    try:
        flags = _Walker(frozenset(), IMPORTS + deep).walk(tree)
        dump = normalised_dump(tree)
    finally:
        sys.setrecursionlimit(old)
    assert [f.name for f in flags] == ["max_autotune"] and dump.count("Attribute(") > 600


@pytest.mark.archive
@pytest.mark.slow
def test_the_archive_sets_only_what_the_records_are_known_to_set(upstream_records: Path) -> None:
    """Every finding over the ~974 logs of the history, by kind: coordinate_descent_tuning in the records of
    2024 and medium ones, reduce-overhead in two, and in the medium records of April 2025 a patch of
    inductor's logging, dynamo's compiled autograd and (below Python 3.12) f-string syntax of 3.12."""
    counts: Counter[tuple[str, str, str]] = Counter()
    where: dict[tuple[str, str, str], set[str]] = {}
    for path in find_run_logs(upstream_records):
        try:
            run = parse_log(path)
        except BadInput:
            continue
        for flag in find_compile_flags(run.source or ""):
            key = (flag.kind, flag.how, flag.name.split(" (")[0][:40])
            counts[key] += 1
            where.setdefault(key, set()).add(path.parent.name)
    expected = {
        (SETTING, "inductor config", "coordinate_descent_tuning"): 202,
        (SETTING, "torch.compile", "mode=reduce-overhead"): 4,
        (UNCONFIRMED, "compiler internals", "assigns torch._inductor.codecache.trace_"): 2,
        (UNCONFIRMED, "compiler internals", "assigns torch._inductor.graph.trace_stru"): 2,
        (UNCONFIRMED, "dynamo config", "compiled_autograd"): 2,
    }
    if sys.version_info < (3, 12):
        expected[(UNCONFIRMED, "unparseable source", "line 393: f-string: unmatched '('")] = 2
    assert dict(counts) == expected
    unconfirmed = {folder for key, folders in where.items() if key[0] == UNCONFIRMED for folder in folders}
    assert unconfirmed == {"2025-04-16_Record7", "2025-04-22_Record8"}


def test_findings_are_plain_data() -> None:
    flag = CompileFlag("max_autotune", 3, "inductor config")
    assert flag.kind == SETTING and flag == CompileFlag("max_autotune", 3, "inductor config", SETTING)
