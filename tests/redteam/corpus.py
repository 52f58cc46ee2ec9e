"""The red-team corpus: what a dishonest contributor would try, each attack built by editing real records of the
upstream archive, with the outcome the judge must give.

An attack copies record folders from the unpacked archive into a scratch `records/` tree and edits them (the
logs, the code they embed, the folder around them). Its `Case` says what to judge and what the judge must
say: not pass (a failing or review verdict), a clean exit 2 with one line naming the file, or a specific
check. `awaits` names the rule-level change an attack still waits for (its test is a strict xfail). `layer`
asserts what the judge's layers below the rules (the parser, the source boundary, compiler flags, the
data-pipeline facts) see of an attack, apart from the verdict the rules give it.

The base record is 2025-10-04_Backout (5 runs of 2,330 steps, a pass today, its prior record's logs beside
it so that the data-pipeline check compares); 2026-02-28_TransposeCopyBackward gives a record with a baseline;
the project's example gives a log of our own trainer.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from speedrun.judge.compile_flags import UNCONFIRMED, find_compile_flags
from speedrun.judge.parse import parse_log
from speedrun.judge.pipeline import data_pipeline_facts, data_pipeline_hash

ROOT = Path(__file__).resolve().parents[2]
TRACK = "track_1_short"
BASE = "2025-10-04_Backout"
BASE_PRIOR = "2025-09-30_CustomBatching"
WITH_BASELINE = "2026-02-28_TransposeCopyBackward"
OTHER_RECORD = "2025-09-29_PolarExpress"  # same era, other code and step count
EXAMPLE = ROOT / "records" / "examples" / "2026-11-30_synthetic-h200"
RULE = "=" * 100
H100_ROW = "NVIDIA H100 80GB HBM3"

NOT_PASS = "not pass"  # verdict fail (exit 1) or review (exit 4), or a clean exit 2
BAD_INPUT = "bad input"  # exit 2, one line naming the file
CHECK = "check"  # the case's own check

# The rule-level changes attacks wait for (the reasons of their xfail markers).
SIMILARITY = "rule-level hardening: independence by similarity, not equality"
FINAL = "rule-level hardening: one final result per run, one total and one code per group"
TIMING = "rule-level hardening: timing strictness"
HARDWARE = "rule-level hardening: hardware exactness"
BASELINE = "rule-level hardening: a baseline must pass its own checks and run the prior record's code"
TRACK_FILES = "rule-level hardening: rules are never read from the current directory unless passed"


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@dataclass
class Case:
    paths: list[Path]
    expect: str = NOT_PASS
    args: list[str] = field(default_factory=list)
    cwd: Path | None = None
    check: Callable[[Outcome], None] | None = None  # for CHECK: raises AssertionError when the judge is fooled
    layer: Callable[[], None] | None = None  # what this phase's layers see, asserted even while the verdict waits


@dataclass(frozen=True)
class Attack:
    name: str
    family: str
    build: Callable[[Workspace], Case]
    awaits: str | None = None
    layered: bool = False  # its Case carries a `layer` check


class Workspace:
    """A scratch `records/` tree filled from the unpacked archive."""

    def __init__(self, archive: Path, root: Path) -> None:
        self.archive = archive
        self.root = root
        self.records = root / "records"

    def record(self, name: str = BASE, track: str = TRACK, prior: str | None = BASE_PRIOR) -> Path:
        """A copy of an archive record folder (and of its prior record, whose logs the data check compares)."""
        for folder in [name, *([prior] if prior else [])]:
            target = self.records / track / folder
            if not target.exists():
                shutil.copytree(self.archive / track / folder, target)
        return self.records / track / name

    def logs(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*.txt") if p.is_file())

    def edit(self, folder: Path, change: Callable[[str], str], only: int | None = None) -> None:
        """Apply a text edit to the folder's logs (all, or the `only`-th)."""
        logs = self.logs(folder)
        for path in logs if only is None else [logs[only]]:
            path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")

    def scratch(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


# --- text edits ------------------------------------------------------------------------------------------------


def replace(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, f"the base record changed: {old[:60]!r} not found"
    return text.replace(old, new, count)


def source_end(text: str) -> int:
    """Offset of the newline before the `=` line that ends the embedded source."""
    at = text.find(f"\n{RULE}\nRunning ")
    assert at > 0
    return at


def append_code(snippet: str) -> Callable[[str], str]:
    """Add code at the end of the embedded source."""

    def change(text: str) -> str:
        at = source_end(text)
        return text[:at] + "\n" + snippet.rstrip("\n") + text[at:]

    return change


def insert_after_imports(snippet: str) -> Callable[[str], str]:
    """Add code right after `import sys` at the top of the source."""
    return lambda text: replace(text, "import sys\n", "import sys\n" + snippet, 1)


def map_steps(change: Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    """Rewrite every common-shape step line through `change` (a regex match with groups step, total, kind,
    loss, time, avg)."""
    pattern = re.compile(
        r"^step:(\d+)/(\d+) (?:(val_loss|train_loss):(\S+) )?train_time:(\S+)ms step_avg:(\S+)ms$", re.MULTILINE
    )
    return lambda text: pattern.sub(change, text)


def step_line(step: int, total: int, time_ms: float, loss: float | None = None, k: int | None = None) -> str:
    avg = time_ms / max(k if k is not None else step, 1)
    head = f"step:{step}/{total} " + (f"val_loss:{loss:.4f} " if loss is not None else "")
    return f"{head}train_time:{time_ms:.0f}ms step_avg:{avg:.2f}ms"


def scale_times(factor: float) -> Callable[[str], str]:
    def change(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        return step_line(step, total, float(m[5]) * factor, loss)

    return map_steps(change)


def gpu_rows(name: str) -> Callable[[str], str]:
    return lambda text: replace(text, H100_ROW, f"{name:<{len(H100_ROW)}}", 8)


def skip_first_shard(text: str) -> str:
    """The loader's file list without its first shard: other training tokens."""
    files = "    files = [Path(file) for file in sorted(glob.glob(filename_pattern))]"
    return replace(text, files, files + "[1:]")


def fake_output_block(gpu: str = H100_ROW) -> str:
    """What a run prints after its source, as a string literal could hold it: `=` lines, versions, an nvidia-smi
    table of 8 GPUs, and a first step line."""
    rows = "\n".join(
        f"|   {i}  {gpu:<22}          On  |   00000000:{i:02X}:00.0 Off |                    0 |" for i in range(8)
    )
    return (
        f'_NOTES = """\n{RULE}\nRunning Python 3.12.3\nRunning PyTorch 2.10.0 compiled for CUDA 12.8\n'
        "| NVIDIA-SMI 580.126.09             Driver Version: 580.126.09     CUDA Version: 13.0     |\n"
        f'{rows}\n{RULE}\nstep:0/2330 val_loss:10.8258 train_time:0ms step_avg:0.03ms\n"""\n'
    )


# --- what the layers below the rules see -------------------------------------------------------------------------


def findings(folder: Path, kind: str | None = None) -> list[str]:
    run = parse_log(sorted(folder.glob("*.txt"))[0])
    return [f"{f.how}: {f.name}" for f in find_compile_flags(run.source or "") if kind is None or f.kind == kind]


def pipeline_of(path: Path) -> str | None:
    run = parse_log(path)
    return data_pipeline_hash(run.source or "", run.sectioned)


def expect_unconfirmed(folder: Path, word: str) -> Callable[[], None]:
    def layer() -> None:
        found = findings(folder, UNCONFIRMED)
        assert any(word in f for f in found), found

    return layer


def expect_pipeline_change(ws: Workspace, folder: Path, fact: str) -> Callable[[], None]:
    """The attacked record's pipeline hash differs from the untouched record's, through the named fact."""
    original = ws.archive / TRACK / folder.name / sorted(folder.glob("*.txt"))[0].name

    def layer() -> None:
        attacked = sorted(folder.glob("*.txt"))[0]
        assert pipeline_of(attacked) != pipeline_of(original)
        facts = data_pipeline_facts(parse_log(attacked).source or "") or ()
        assert any(fact in f for f in facts), facts

    return layer


# --- the attacks -------------------------------------------------------------------------------------------------

ATTACKS: list[Attack] = []


def attack(
    family: str, awaits: str | None = None, layered: bool = False
) -> Callable[[Callable[[Workspace], Case]], Callable[[Workspace], Case]]:
    def register(build: Callable[[Workspace], Case]) -> Callable[[Workspace], Case]:
        ATTACKS.append(Attack(build.__name__, family, build, awaits, layered))
        return build

    return register


# Warnings that never fail -----------------------------------------------------------------------------------------


@attack("warnings never fail")
def gpus_a100(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA A100-SXM4-80GB"))
    return Case([folder])


@attack("warnings never fail")
def gpus_four_of_eight(ws: Workspace) -> Case:
    folder = ws.record()

    def drop(text: str) -> str:
        for i in range(4, 8):
            row = re.search(rf"^\|   {i}  NVIDIA H100.*\n(?:\|.*\n){{2}}\+-+\+-+\+-+\+\n", text, re.MULTILINE)
            assert row is not None
            text = text[: row.start()] + text[row.end() :]
        return text

    ws.edit(folder, drop)
    return Case([folder])


@attack("warnings never fail", HARDWARE)
def gpus_h100_nvl(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA H100 NVL"))
    return Case([folder])


@attack("warnings never fail", HARDWARE)
def gpu_name_merely_containing_h100(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA GeForce H100ish"))
    return Case([folder])


@attack("warnings never fail")
def no_nvidia_smi_block(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: re.sub(r"^(?:\|.*|\+-.*)\n", "", t, flags=re.MULTILINE))
    return Case([folder])


@attack("warnings never fail", layered=True)
def changed_loader(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, skip_first_shard)
    return Case([folder], layer=expect_pipeline_change(ws, folder, ""))


@attack("warnings never fail")
def slower_than_the_record_without_baseline(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, scale_times(1.5))
    return Case([folder])


@attack("warnings never fail")
def logs_without_source(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: t[source_end(t) + 1 :])
    return Case([folder])


@attack("warnings never fail")
def logs_without_timing(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: re.sub(r"^step:\d+/\d+ train_time:.*\n", "", t, flags=re.MULTILINE))
    ws.edit(folder, lambda t: re.sub(r" train_time:\S+ms step_avg:\S+ms$", "", t, flags=re.MULTILINE))
    return Case([folder])


@attack("warnings never fail")
def our_synthetic_example(ws: Workspace) -> Case:
    folder = ws.records / TRACK / "2026-11-30_synthetic-h200"
    shutil.copytree(EXAMPLE, folder)
    return Case([folder])


@attack("warnings never fail")
def our_trainer_on_a_cpu(ws: Workspace) -> Case:
    folder = ws.records / TRACK / "2026-11-23_cpu-tiny"
    shutil.copytree(EXAMPLE, folder)

    def on_a_cpu(text: str) -> str:
        start = text.index("\n", text.index("Running Triton")) + 1
        end = text.index(f"\n{RULE}\nconfig:", start) + 1
        return text[:start] + "nvidia-smi: not available (device cpu)\n" + text[end:]

    ws.edit(folder, on_a_cpu)
    return Case([folder])


# Near-duplicates -------------------------------------------------------------------------------------------------


def _copy_run(ws: Workspace, change: Callable[[str], str]) -> Path:
    folder = ws.record()
    first = ws.logs(folder)[0]
    (folder / "copy-of-first-run.txt").write_text(change(first.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


@attack("near-duplicates")
def byte_identical_copy(ws: Workspace) -> Case:
    return Case([_copy_run(ws, lambda t: t)], check=None)


@attack("near-duplicates")
def copy_with_its_times_shifted(ws: Workspace) -> Case:
    def change(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        return step_line(step, total, float(m[5]) + 3, loss)

    return Case([_copy_run(ws, map_steps(change))])


@attack("near-duplicates", SIMILARITY)
def copy_with_one_val_loss_nudged(ws: Workspace) -> Case:
    return Case([_copy_run(ws, lambda t: replace(t, "val_loss:4.0864", "val_loss:4.0865"))])


@attack("near-duplicates", SIMILARITY)
def copy_with_one_val_loss_nan(ws: Workspace) -> Case:
    return Case([_copy_run(ws, lambda t: replace(t, "val_loss:4.0864", "val_loss:nan"))])


@attack("near-duplicates", SIMILARITY)
def copy_with_its_final_loss_nudged(ws: Workspace) -> Case:
    return Case([_copy_run(ws, lambda t: replace(t, "val_loss:3.2781", "val_loss:3.2780"))])


@attack("near-duplicates", SIMILARITY)
def every_run_printing_the_same_final_loss(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: re.sub(r"(step:2330/2330 val_loss:)\S+", r"\g<1>3.2700", t))
    return Case([folder])


# The final result ------------------------------------------------------------------------------------------------


def append_final(total: str) -> Callable[[str], str]:
    """Add a val line at the end of the log, a little later than the run's last and with a lower loss."""

    def change(text: str) -> str:
        last = float(re.findall(r"train_time:(\d+)ms", text)[-1]) + 40
        loss = 3.2000 + (len(text) % 7) / 1000  # runs differ a little, as real ones do
        return text + step_line(2330, 2330, last, loss).replace("/2330", total) + "\n"

    return change


@attack("the final result", FINAL)
def appended_val_line_without_total(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_final(""))
    return Case([folder])


@attack("the final result", FINAL)
def a_second_lower_final_line(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_final("/2330"))
    return Case([folder])


@attack("the final result", FINAL)
def runs_of_other_step_counts_in_one_group(ws: Workspace) -> Case:
    folder = ws.record()
    other = ws.record(OTHER_RECORD, prior=None)
    for i, log in enumerate(ws.logs(other)[:3]):
        shutil.copy(log, folder / f"other-{i}.txt")
    return Case([folder])


@attack("the final result", FINAL)
def runs_of_other_code_in_one_group(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_code("# a later version of the record\nEXTRA_LAYERS = 2"), only=0)
    ws.edit(folder, append_code("# another version\nEXTRA_LAYERS = 3"), only=1)
    return Case([folder])


# Timing ----------------------------------------------------------------------------------------------------------


@attack("timing", TIMING)
def early_steps_without_train_time(ws: Workspace) -> Case:
    folder = ws.record()

    def change(m: re.Match[str]) -> str:
        step = int(m[1])
        return m.group() if step > 500 or m[3] else f"step:{step}/{m[2]} train_loss:4.0000"

    ws.edit(folder, map_steps(change))
    return Case([folder])


@attack("timing", TIMING)
def clock_frozen_for_200_steps(ws: Workspace) -> Case:
    folder = ws.record()

    def change(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        frozen = 1000 <= step < 1200
        time_ms = 59921.0 if frozen else float(m[5]) - (11800 if step >= 1200 else 0)
        return step_line(step, total, time_ms, loss)

    ws.edit(folder, map_steps(change))
    return Case([folder])


@attack("timing")
def untimed_grace_steps_claimed_by_modern_code(ws: Workspace) -> Case:
    folder = ws.record()

    def change(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        time_ms = max(0.0, float(m[5]) - 600) if step > 10 else 0.0
        return step_line(step, total, time_ms, loss, k=max(step - 10, 1))

    ws.edit(folder, map_steps(change))
    return Case([folder])


@attack("timing", TIMING)
def all_train_time_zero(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, map_steps(lambda m: step_line(int(m[1]), int(m[2]), 0.0, float(m[4]) if m[4] else None)))
    return Case([folder])


@attack("timing", TIMING)
def all_train_time_zero_against_a_baseline(ws: Workspace) -> Case:
    folder = ws.record(WITH_BASELINE, prior=None)
    ws.edit(
        folder / "this_pr", map_steps(lambda m: step_line(int(m[1]), int(m[2]), 0.0, float(m[4]) if m[4] else None))
    )
    return Case([folder / "this_pr"])


@attack("timing", BASELINE)
def baseline_with_inflated_times(ws: Workspace) -> Case:
    folder = ws.record(WITH_BASELINE, prior=None)
    ws.edit(folder / "baseline", scale_times(1.2))
    ws.edit(folder / "this_pr", scale_times(1.1))
    return Case([folder / "this_pr"])


@attack("timing", BASELINE)
def baseline_that_fails_its_own_checks(ws: Workspace) -> Case:
    folder = ws.record(WITH_BASELINE, prior=None)
    ws.edit(folder / "baseline", scale_times(1.05))
    ws.edit(folder / "baseline", lambda t: re.sub(r"(step:(\d+)/\2 val_loss:)\S+", r"\g<1>3.3500", t))
    return Case([folder / "this_pr"])


@attack("timing", TIMING)
def code_scheduling_more_steps_than_the_log_prints(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, "num_iterations: int = 2290", "num_iterations: int = 2390"))
    return Case([folder])


# Compile flags ---------------------------------------------------------------------------------------------------

_FLAG_SNIPPETS = {
    "inductor_config_written_directly": "torch._inductor.config.max_autotune = True",
    "inductor_config_through_getattr": 'getattr(torch, "_inductor").config.max_autotune = True',
    "inductor_config_dict_update": 'torch._inductor.config.__dict__.update({"max_autotune": True})',
    "inductor_config_through_vars": 'vars(torch._inductor.config)["max_autotune"] = True',
    "inductor_config_through_exec": 'exec("torch._inductor.config.max_autotune = True")',
    "inductor_config_through_importlib": (
        'import importlib\nimportlib.import_module("torch._inductor.config").max_autotune = True'
    ),
    "inductor_config_through_sys_modules": 'sys.modules["torch._inductor.config"].max_autotune = True',
    "inductor_config_alias_variable": "cfg = torch._inductor.config\ncfg.epilogue_fusion = False",
    "inductor_config_alias_in_a_function": (
        "def tune():\n    c = torch._inductor.config\n    c.max_autotune = True\ntune()"
    ),
    "inductor_config_alias_before_its_assignment": (
        "def tune():\n    ic.max_autotune = True\nic = torch._inductor.config"
    ),
    "inductor_config_setattr": 'setattr(torch._inductor.config, "max_autotune", True)',
    "inductor_config_patch_context": "with torch._inductor.config.patch(max_autotune=True):\n    pass",
    "inductor_environment_subscript": 'os.environ["TORCHINDUCTOR_MAX_AUTOTUNE"] = "1"',
    "inductor_environment_update": 'os.environ.update(TORCHINDUCTOR_COORDINATE_DESCENT_TUNING="1")',
    "inductor_environment_setdefault": 'os.environ.setdefault("TORCHINDUCTOR_MAX_AUTOTUNE", "1")',
    "inductor_environment_putenv": 'os.putenv("TORCHINDUCTOR_MAX_AUTOTUNE", "1")',
    "inductor_environment_alias": 'env = os.environ\nenv["TORCHINDUCTOR_MAX_AUTOTUNE"] = "1"',
    "compile_alias_assigned": 'compile_fn = torch.compile\nmodel = compile_fn(model, mode="max-autotune")',
    "compile_alias_imported": 'from torch import compile as fast\nmodel = fast(model, mode="reduce-overhead")',
    "compile_through_functools_partial": (
        'import functools\nfast = functools.partial(torch.compile, mode="max-autotune")\nmodel = fast(model)'
    ),
    "compile_options_dict": 'model = torch.compile(model, options={"shape_padding": True})',
    "block_that_does_not_parse_on_its_own": 'NOTE = """\n"""; torch._inductor.config.max_autotune = True',
}
_UNCONFIRMED_SNIPPETS = {
    "exec_of_computed_code": ('code = "torch._inductor" + ".config.max_autotune = True"\nexec(code)', "exec"),
    "eval_of_computed_code": ('eval(compile(open("tune.py").read(), "tune.py", "exec"))', "eval"),
    "importlib_of_computed_name": (
        'import importlib\nm = importlib.import_module("torch._ind" + "uctor.config")\nm.max_autotune = True',
        "import_module",
    ),
    "getattr_of_computed_name": ('getattr(torch, "_ind" + "uctor").config.max_autotune = True', "getattr"),
    "dynamo_setting_that_changes_compiled_code": ("torch._dynamo.config.compiled_autograd = True", "compiled_autograd"),
    "compiler_config_handed_to_a_function": (
        "def tune(c):\n    c.max_autotune = True\ntune(torch._inductor.config)",
        "torch._inductor.config",
    ),
}


def _flag_attack(snippet: str) -> Callable[[Workspace], Case]:
    def build(ws: Workspace) -> Case:
        folder = ws.record()
        ws.edit(folder, append_code(snippet))
        return Case([folder])

    return build


def _unconfirmed_attack(snippet: str, word: str) -> Callable[[Workspace], Case]:
    def build(ws: Workspace) -> Case:
        folder = ws.record()
        ws.edit(folder, append_code(snippet))
        return Case([folder], layer=expect_unconfirmed(folder, word))

    return build


for _name, _snippet in _FLAG_SNIPPETS.items():
    ATTACKS.append(Attack(_name, "compile flags", _flag_attack(_snippet)))
for _name, (_snippet, _word) in _UNCONFIRMED_SNIPPETS.items():
    ATTACKS.append(Attack(_name, "compile flags", _unconfirmed_attack(_snippet, _word), None, True))


# The source boundary ---------------------------------------------------------------------------------------------


@attack("the source boundary")
def fake_boundary_in_a_string_hides_a_flag(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_code("torch._inductor.config.max_autotune = True"))
    ws.edit(folder, insert_after_imports(fake_output_block()))
    return Case([folder])


@attack("the source boundary", layered=True)
def fake_nvidia_smi_table_in_a_string(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA A100-SXM4-80GB"))
    ws.edit(folder, insert_after_imports(fake_output_block()))

    def layer() -> None:
        run = parse_log(ws.logs(folder)[0])
        assert run.gpus is not None and run.gpus.model.startswith("NVIDIA A100"), run.gpus

    return Case([folder], layer=layer)


@attack("the source boundary")
def section_marker_restarts_the_scan(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, insert_after_imports("import torch\ntorch._inductor.config.max_autotune = True\n"))
    ws.edit(folder, append_code("# >>> speedrun/trainer/train.py\nSTEPS = 1"))
    return Case([folder])


@attack("the source boundary", layered=True)
def section_marker_claims_our_canonical_data_pipeline(ws: Workspace) -> Case:
    folder = ws.record()
    data = (ROOT / "speedrun" / "trainer" / "data.py").read_text(encoding="utf-8")
    ws.edit(folder, skip_first_shard)
    ws.edit(
        folder,
        lambda t: "# >>> speedrun/trainer/data.py\n" + data + "\n" + t,
    )

    def layer() -> None:
        run = parse_log(ws.logs(folder)[0])
        assert not run.sectioned
        assert data_pipeline_hash(run.source or "", run.sectioned) != pipeline_of(
            ws.archive / TRACK / BASE / ws.logs(folder)[0].name
        )

    return Case([folder], layer=layer)


@attack("the source boundary", layered=True)
def source_that_is_not_python(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, insert_after_imports("<<<<<<< HEAD\n"))
    return Case([folder], layer=lambda: _assert_source_problem(ws, folder, "line 3"))


@attack("the source boundary", layered=True)
def source_with_invalid_utf8(ws: Workspace) -> Case:
    folder = ws.record()
    for path in ws.logs(folder):
        data = path.read_bytes()
        path.write_bytes(data.replace(b"import sys\n", b"import sys\n# caf\xe9\n", 1))
    return Case([folder], layer=lambda: _assert_source_problem(ws, folder, "UTF-8"))


@attack("the source boundary", layered=True)
def flag_hidden_past_a_cut_long_line(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_code("x = 1;" + " " * 12_000 + "torch._inductor.config.max_autotune = True"))
    return Case([folder], layer=lambda: _assert_source_problem(ws, folder, "longer than"))


@attack("the source boundary", layered=True)
def expression_nested_too_deeply(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_code("x = (\n    " + " +\n    ".join(["a"] * 50_000) + "\n)"))
    return Case([folder], layer=lambda: _assert_source_problem(ws, folder, "nested too deeply"))


@attack("the source boundary")
def many_fake_boundaries_before_the_real_one(ws: Workspace) -> Case:
    folder = ws.record()
    fakes = "".join(f'_N{i} = """\n{RULE}\nRunning Python 3.12\n"""\n' for i in range(50))
    fakes += fake_output_block()  # the last with a step line, so that the format alone takes it for the end
    ws.edit(folder, append_code("torch._inductor.config.max_autotune = True"))
    ws.edit(folder, insert_after_imports(fakes))
    return Case([folder])


def _assert_source_problem(ws: Workspace, folder: Path, words: str) -> None:
    run = parse_log(ws.logs(folder)[0])
    assert run.source_problem is not None and words in run.source_problem, run.source_problem


# Data pipeline ---------------------------------------------------------------------------------------------------


@attack("data pipeline", layered=True)
def training_glob_pointed_at_the_val_shard(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(
        folder, lambda t: replace(t, '"data/fineweb10B/fineweb_train_*.bin"', '"data/fineweb10B/fineweb_val_*.bin"')
    )
    return Case([folder], layer=expect_pipeline_change(ws, folder, "files train_files = fineweb_val_*.bin"))


@attack("data pipeline", layered=True)
def fewer_val_tokens(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, "val_tokens: int = 10485760", "val_tokens: int = 5242880"))
    return Case([folder], layer=expect_pipeline_change(ws, folder, "val_tokens = Constant(value=5242880)"))


@attack("data pipeline", layered=True)
def fewer_val_steps(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(
        folder,
        lambda t: replace(
            t,
            "val_steps = grad_accum_steps * args.val_tokens // args.val_batch_size",
            "val_steps = grad_accum_steps * args.val_tokens // args.val_batch_size // 2",
        ),
    )
    return Case([folder], layer=expect_pipeline_change(ws, folder, "val size val_steps"))


@attack("data pipeline", layered=True)
def batches_skipped_in_the_loop(ws: Workspace) -> Case:
    folder = ws.record()
    draw = "    for _ in range(grad_accum_steps):\n        inputs, targets, cum_seqlens = next(train_loader)"
    ws.edit(folder, lambda t: replace(t, draw, "    next(train_loader)  # one batch skipped per step\n" + draw))
    return Case([folder], layer=expect_pipeline_change(ws, folder, "advances train_loader by next [for]"))


@attack("data pipeline", layered=True)
def loader_replaced_after_its_definition(ws: Workspace) -> Case:
    folder = ws.record()
    snippet = (
        "_real_generator = distributed_data_generator\n"
        "def distributed_data_generator(pattern, *args, **kwargs):\n"
        "    yield from _real_generator(pattern.replace('train', 'val'), *args, **kwargs)\n"
    )
    ws.edit(
        folder,
        lambda t: replace(t, "@dataclass\nclass Hyperparameters:", snippet + "@dataclass\nclass Hyperparameters:"),
    )
    return Case([folder], layer=expect_pipeline_change(ws, folder, ""))


@attack("data pipeline", layered=True)
def loader_name_rebound_by_assignment(ws: Workspace) -> Case:
    folder = ws.record()
    snippet = "distributed_data_generator = functools.partial(distributed_data_generator, align_to_bos=False)\n"
    ws.edit(
        folder,
        lambda t: replace(
            t,
            "@dataclass\nclass Hyperparameters:",
            "import functools\n" + snippet + "@dataclass\nclass Hyperparameters:",
        ),
    )
    return Case([folder], layer=expect_pipeline_change(ws, folder, "rebinds distributed_data_generator"))


@attack("data pipeline")
def forged_prior_record_log_in_the_submitted_tree(ws: Workspace) -> Case:
    folder = ws.record()
    change = lambda t: replace(t, "val_tokens: int = 10485760", "val_tokens: int = 5242880")  # noqa: E731
    ws.edit(folder, change)
    ws.edit(ws.records / TRACK / BASE_PRIOR, change)
    return Case([folder])


# Robustness ------------------------------------------------------------------------------------------------------


@attack("robustness")
def symlink_to_etc_passwd(ws: Workspace) -> Case:
    folder = ws.record()
    (folder / "run-extra.txt").symlink_to("/etc/passwd")
    return Case([folder], BAD_INPUT)


@attack("robustness")
def symlink_to_a_log_outside_the_folder(ws: Workspace) -> Case:
    folder = ws.record()
    outside = ws.record(OTHER_RECORD, prior=None)
    (folder / "borrowed.txt").symlink_to(ws.logs(outside)[0])
    return Case([folder], BAD_INPUT)


@attack("robustness")
def symlinked_folder_inside_the_record(ws: Workspace) -> Case:
    folder = ws.record(WITH_BASELINE, prior=None)
    elsewhere = ws.scratch("elsewhere")
    shutil.move(str(folder / "baseline"), elsewhere / "baseline")
    (folder / "baseline").symlink_to(elsewhere / "baseline")
    return Case([folder], BAD_INPUT)


@attack("robustness")
def sibling_baseline_that_is_a_symlink(ws: Workspace) -> Case:
    folder = ws.record(WITH_BASELINE, prior=None)
    elsewhere = ws.scratch("elsewhere")
    shutil.move(str(folder / "baseline"), elsewhere / "baseline")
    ws.edit(elsewhere / "baseline", scale_times(2.0))
    (folder / "baseline").symlink_to(elsewhere / "baseline")

    def check(outcome: Outcome) -> None:
        assert outcome.code in (0, 1, 4), outcome.err
        assert '"baseline": null' in outcome.out  # the link is not followed: no baseline

    return Case([folder / "this_pr"], CHECK, args=["--json"], check=check)


@attack("robustness", TRACK_FILES)
def records_folder_in_the_current_directory(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: re.sub(r"(step:2330/2330 val_loss:)\S+", r"\g<1>3.9000", t))
    here = ws.scratch("elsewhere-cwd")
    track_file = here / "records" / TRACK / "track.toml"
    track_file.parent.mkdir(parents=True)
    original = (ROOT / "records" / TRACK / "track.toml").read_text(encoding="utf-8")
    track_file.write_text(original.replace("target_val_loss = 3.28", "target_val_loss = 9.99"), encoding="utf-8")
    return Case([folder], cwd=here)


@attack("robustness")
def run_log_saved_as_utf16(ws: Workspace) -> Case:
    folder = ws.record()
    path = ws.logs(folder)[0]
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    return Case([folder], BAD_INPUT)


@attack("robustness")
def run_log_saved_as_utf16_without_bom(ws: Workspace) -> Case:
    folder = ws.record()
    path = ws.logs(folder)[0]
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16-le"))
    return Case([folder], BAD_INPUT)


@attack("robustness")
def gzip_bomb(ws: Workspace) -> Case:
    folder = ws.record()
    path = folder / "huge.txt.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b"step:0/10 val_loss:10.0 train_time:0ms step_avg:0.00ms\n")
        zeros = b"\n" * (1 << 20)
        for _ in range(40):
            f.write(zeros)
    return Case([folder], BAD_INPUT)


@attack("robustness")
def gzip_of_too_many_step_lines(ws: Workspace) -> Case:
    folder = ws.record()
    line = b"step:1/2000000 train_time:1ms step_avg:1.00ms\n"
    with gzip.open(folder / "long.txt.gz", "wb") as f:
        f.write(line * 400_000)
    return Case([folder], BAD_INPUT)


@attack("robustness")
def folders_nested_deeply(ws: Workspace) -> Case:
    folder = ws.record()
    deep = folder
    for _ in range(40):
        deep = deep / "d"
    deep.mkdir(parents=True)
    shutil.copy(ws.logs(folder)[0], deep / "run.txt")
    return Case([folder], BAD_INPUT)


@attack("robustness")
def loss_of_300_digits(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, "val_loss:3.2781", "val_loss:" + "9" * 300), only=0)
    return Case([folder], BAD_INPUT)


@attack("robustness")
def loss_in_exponent_notation_beyond_range(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, "val_loss:3.2781", "val_loss:1e300"), only=0)
    return Case([folder], BAD_INPUT)


@attack("robustness")
def notes_file_mentioning_a_step(ws: Workspace) -> Case:
    folder = ws.record()
    (folder / "notes.txt").write_text(
        "We stopped the sweep at\nstep:500 because the loss was flat.\n", encoding="utf-8"
    )

    def check(outcome: Outcome) -> None:
        assert outcome.code == 0, outcome.err  # the record is judged as before: the notes are not a run
        assert "notes.txt" not in outcome.out

    return Case([folder], CHECK, args=["--json"], check=check)


@attack("robustness")
def binary_file_named_like_a_log(ws: Workspace) -> Case:
    folder = ws.record()
    (folder / "trace.txt").write_bytes(b"step:1/2 train_time:1ms step_avg:1ms\n" + bytes(range(1, 256)) * 64)
    return Case([folder], BAD_INPUT)


@attack("robustness")
def more_step_lines_than_any_run(ws: Workspace) -> Case:
    folder = ws.record()
    lines = "".join(f"step:{i}/200000 train_time:{i}ms step_avg:1.00ms\n" for i in range(150_000))
    (folder / "long.txt").write_text(lines + "step:150000/200000 val_loss:3.0 train_time:150000ms step_avg:1.00ms\n")
    return Case([folder], BAD_INPUT)


@attack("robustness")
def config_line_nested_too_deeply(ws: Workspace) -> Case:
    folder = ws.records / TRACK / "2026-11-24_deep-config"
    shutil.copytree(EXAMPLE, folder)
    ws.edit(
        folder,
        lambda t: re.sub(r"^config: .*$", "config: " + "[" * 30_000 + "]" * 30_000, t, count=1, flags=re.MULTILINE),
    )
    return Case([folder], BAD_INPUT)


def _terminal_safe(outcome: Outcome) -> None:
    shown = outcome.out + outcome.err
    assert outcome.code != 3 and "Traceback" not in shown, outcome.err
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", shown), repr(shown[:300])


@attack("robustness")
def terminal_escapes_in_a_file_name(ws: Workspace) -> Case:
    folder = ws.record()
    first = ws.logs(folder)[0]
    first.rename(folder / "run\x1b[2J\x1b[31mPASS\x07.txt")

    def check(outcome: Outcome) -> None:
        _terminal_safe(outcome)
        assert "\\x1b[2J" in outcome.out  # shown, escaped

    return Case([folder], CHECK, check=check)


@attack("robustness")
def bidi_override_in_a_file_name(ws: Workspace) -> Case:
    folder = ws.record()
    ws.logs(folder)[0].rename(folder / "run-\u202etxt.exe")
    (folder / "run-\u202etxt.exe").rename(folder / "run-\u202egnp.txt")
    return Case([folder], CHECK, check=_terminal_safe)


@attack("robustness")
def rich_markup_in_a_file_name(ws: Workspace) -> Case:
    folder = ws.record()
    group = folder / "FAIL[link=https:x][bold red]["  # with the file name below, the path holds `[/bold red]`
    group.mkdir()
    for log in ws.logs(folder):
        log.rename(group / f"bold red]{log.name}")

    def check(outcome: Outcome) -> None:
        _terminal_safe(outcome)
        assert "[bold red][/bold red]" in outcome.out  # printed as text, not read as markup

    return Case([folder], CHECK, check=check)


@attack("robustness")
def rich_markup_in_a_gpu_name(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA [/]H100[red]x"))

    def check(outcome: Outcome) -> None:
        _terminal_safe(outcome)
        assert "[/]H100[red]x" in outcome.out

    return Case([folder], CHECK, check=check)


@attack("robustness")
def terminal_escapes_in_a_bad_file(ws: Workspace) -> Case:
    folder = ws.record()
    (folder / "bad\x1b]0;owned\x07.txt").write_text("step:1/2 val_loss:oops train_time:1ms step_avg:1ms\n")

    def check(outcome: Outcome) -> None:
        assert outcome.code == 2
        _terminal_safe(outcome)

    return Case([folder], CHECK, check=check)
