"""The red-team corpus: what a dishonest contributor would try, each attack built by editing real records of the
upstream archive, with the outcome the judge must give.

An attack copies record folders from the unpacked archive into a scratch `records/` tree and edits them (the
logs, the code they embed, the folder around them). Its `Case` says what to judge and what the judge must
say: not pass (a failing or review verdict), a clean exit 2 with one line naming the file, or a specific
check; `why`, where given, is words the judge's JSON must hold, so that an attack is caught for its own
reason and not by chance. `awaits` names a change an attack still waits for (its test is then a strict
xfail; none does today). `layer` asserts what the judge's layers below the rules (the parser, the source
boundary, compiler flags, the data-pipeline facts) see of an attack, apart from the verdict.

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
GRACE_RECORD = "2025-01-16_Sub3Min"  # a log of the untimed-grace-steps era
PINNED_BASELINE = "2026-01-18_UnifiedOptimizers"  # baseline/ runs record 60's pinned code; unified-optimizer/
EXAMPLE = ROOT / "records" / "examples" / "2026-11-30_synthetic-h200"
TINY_CPU = ROOT / "tests" / "data" / "tiny-cpu"
RULE = "=" * 100
H100_ROW = "NVIDIA H100 80GB HBM3"

NOT_PASS = "not pass"  # verdict fail (exit 1) or review (exit 4), or a clean exit 2
BAD_INPUT = "bad input"  # exit 2, one line naming the file
CHECK = "check"  # the case's own check


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
    why: str | None = None  # for NOT_PASS: words the judge's --json output must hold
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


@attack("warnings never fail")
def gpus_h100_nvl(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA H100 NVL"))
    return Case([folder], why="found 8x NVIDIA H100 NVL")


@attack("warnings never fail")
def gpus_h100_pcie(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA H100 PCIe"))
    return Case([folder], why="found 8x NVIDIA H100 PCIe")


@attack("warnings never fail")
def gpu_name_merely_containing_h100(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, gpu_rows("NVIDIA GeForce H100ish"))
    return Case([folder], why="NVIDIA GeForce H100ish")


@attack("warnings never fail")
def one_gpu_of_eight_an_a100(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, f"|   7  {H100_ROW}", f"|   7  {'NVIDIA A100-SXM4-80GB':<{len(H100_ROW)}}"))
    return Case([folder], why="NVIDIA H100 80GB HBM3 + NVIDIA A100-SXM4-80GB")


@attack("warnings never fail")
def our_trainer_using_two_of_eight_gpus(ws: Workspace) -> Case:
    """Our trainer's log names its world size: 2 processes on a machine of 8 H100s is not 8x H100."""
    folder = _ours(ws, "2026-11-30_two-of-eight")
    rows = "\n".join(
        f"|   {i}  {H100_ROW:<22}          On  |   00000000:{i:02X}:00.0 Off |                    0 |" for i in range(8)
    )

    def on_h100s(text: str) -> str:
        text = re.sub(r"^\|   \d  NVIDIA H200 .*$", "", text, flags=re.MULTILINE)
        return replace(text, "|=========================================+", rows + "\n|====", 1)

    ws.edit(folder, on_h100s)
    ws.edit(folder, lambda t: t.replace("world_size: 1\n", "world_size: 2\n"))
    return Case([folder], why="2x NVIDIA H100 80GB HBM3")


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


def _ours(ws: Workspace, name: str, source: Path = EXAMPLE) -> Path:
    folder = ws.records / TRACK / name
    shutil.copytree(source, folder)
    return folder


@attack("warnings never fail")
def our_synthetic_example(ws: Workspace) -> Case:
    return Case([_ours(ws, "2026-11-30_synthetic-h200")], why="synthetic shards (zipf)")


@attack("warnings never fail")
def two_30_step_cpu_runs_of_the_tiny_preset(ws: Workspace) -> Case:
    return Case([_ours(ws, "2026-11-30_tiny", TINY_CPU)], why="preset 'tiny'")


@attack("warnings never fail")
def our_example_without_its_data_line(ws: Workspace) -> Case:
    """A log of a trainer older than the data line: nothing says which shards it read."""
    folder = _ours(ws, "2026-11-30_no-data-line")
    ws.edit(folder, lambda t: re.sub(r"^data: .*\n", "", t, count=1, flags=re.MULTILINE))
    return Case([folder], why="cannot confirm the runs read FineWeb")


@attack("warnings never fail")
def our_example_with_its_synthetic_mark_removed(ws: Workspace) -> Case:
    folder = _ours(ws, "2026-11-30_unmarked")
    ws.edit(folder, lambda t: t.replace('"synthetic":"zipf"', '"synthetic":null'))
    return Case([folder], why="holds 25,000,000 tokens")


@attack("warnings never fail")
def our_example_claiming_fineweb_token_counts(ws: Workspace) -> Case:
    """The data line rewritten to FineWeb's names and counts, the synthetic mark left out: the val loss is not
    FineWeb's, yet nothing in the log can tell; the run is still 120 steps of a 1695-step recipe."""
    folder = _ours(ws, "2026-11-30_claims-fineweb")

    def change(text: str) -> str:
        text = text.replace('"synthetic":"zipf"', '"synthetic":null')
        for tokens in ('"tokens":25000000', '"tokens":11534336'):
            text = text.replace(tokens, '"tokens":100000000')
        return text

    ws.edit(folder, change)
    return Case([folder], why="num_iterations 120, where the default recipe trains 1695 steps")


@attack("warnings never fail")
def our_example_whose_file_lines_disagree_with_its_data_line(ws: Workspace) -> Case:
    folder = _ours(ws, "2026-11-30_other-files")
    listed = "train_files: fineweb_train_000001.bin,"
    ws.edit(folder, lambda t: replace(t, listed, listed.replace("000001", "000009")))
    return Case([folder], why="the train_files: line and the data line name different files")


@attack("warnings never fail")
def our_example_with_its_config_claiming_the_full_recipe(ws: Workspace) -> Case:
    """num_iterations set to the recipe's 1695 in the config line, while the run printed /120."""
    folder = _ours(ws, "2026-11-30_full-recipe")
    ws.edit(folder, lambda t: replace(t, '"num_iterations":120,', '"num_iterations":1695,'))
    return Case([folder], why="its config schedules 1695 steps")


@attack("warnings never fail")
def our_trainer_on_a_cpu(ws: Workspace) -> Case:
    folder = _ours(ws, "2026-11-23_cpu")

    def on_a_cpu(text: str) -> str:
        start = text.index("\n", text.index("\nRunning Triton", source_end(text))) + 1
        end = text.index(f"\n{RULE}\nconfig:", start) + 1
        return text[:start] + "nvidia-smi: not available (device cpu)\n" + text[end:]

    ws.edit(folder, on_a_cpu)
    return Case([folder], why="no GPU (nvidia-smi not available)")


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


@attack("near-duplicates")
def copy_with_one_val_loss_nudged(ws: Workspace) -> Case:
    change = lambda t: replace(t, "val_loss:4.0864", "val_loss:4.0865")  # noqa: E731
    return Case([_copy_run(ws, change)], why="val-loss curves equal within 0.0003")


@attack("near-duplicates")
def copy_with_one_val_loss_nan(ws: Workspace) -> Case:
    change = lambda t: replace(t, "val_loss:4.0864", "val_loss:nan")  # noqa: E731
    return Case([_copy_run(ws, change)], why="val-loss curves equal within 0.0003")


@attack("near-duplicates")
def copy_with_its_final_loss_nudged(ws: Workspace) -> Case:
    change = lambda t: replace(t, "val_loss:3.2781", "val_loss:3.2780")  # noqa: E731
    return Case([_copy_run(ws, change)], why="val-loss curves equal within 0.0003")


@attack("near-duplicates")
def copy_with_every_val_loss_nudged(ws: Workspace) -> Case:
    def nudge(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        if loss is not None and step > 0:
            loss += 0.0002 if step % 2 else -0.0002
        return step_line(step, total, float(m[5]) + 7, loss)

    return Case([_copy_run(ws, map_steps(nudge))], why="val-loss curves equal within 0.0003")


@attack("near-duplicates")
def every_run_printing_the_same_final_loss(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: re.sub(r"(step:2330/2330 val_loss:)\S+", r"\g<1>3.2700", t))
    (folder / "README.md").unlink()  # its stated p-value would send it to review on its own
    return Case([folder], why="sign test")


@attack("near-duplicates")
def two_runs_printing_the_same_final_loss(ws: Workspace) -> Case:
    """Two runs and one final loss: std 0, and a t-test p of 0; the runs support no p below 0.25."""
    folder = ws.record()
    for log in ws.logs(folder)[2:]:
        log.unlink()
    ws.edit(folder, lambda t: re.sub(r"(step:2330/2330 val_loss:)\S+", r"\g<1>3.2700", t))
    (folder / "README.md").unlink()
    return Case([folder], why="p=0.2500 is not below 0.01")


# The final result ------------------------------------------------------------------------------------------------


def append_final(total: str) -> Callable[[str], str]:
    """Add a val line at the end of the log, a little later than the run's last and with a lower loss."""

    def change(text: str) -> str:
        last = float(re.findall(r"train_time:(\d+)ms", text)[-1]) + 40
        loss = 3.2000 + (len(text) % 7) / 1000  # runs differ a little, as real ones do
        return text + step_line(2330, 2330, last, loss).replace("/2330", total) + "\n"

    return change


@attack("the final result")
def appended_val_line_without_total(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_final(""))
    return Case([folder], why="with no /total")


@attack("the final result")
def a_second_lower_final_line(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_final("/2330"))
    return Case([folder], why="2 val lines at the final step 2330")


@attack("the final result")
def runs_of_other_step_counts_in_one_group(ws: Workspace) -> Case:
    """Runs of another record (another code, another step count), edited so that the hash its record.toml pins
    does not set them apart, pooled with the submission's."""
    folder = ws.record()
    other = ws.record(OTHER_RECORD, prior=None)
    for i, log in enumerate(ws.logs(other)[:3]):
        text = append_code(f"# run {i}")(log.read_text(encoding="utf-8"))
        (folder / f"other-{i}.txt").write_text(text, encoding="utf-8")
    return Case([folder], why="the runs are of 2 step counts")


@attack("the final result")
def runs_of_other_code_in_one_group(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, append_code("# a later version of the record\nEXTRA_LAYERS = 2"), only=0)
    ws.edit(folder, append_code("# another version\nEXTRA_LAYERS = 3"), only=1)
    return Case([folder], why="versions of the code")


@attack("the final result")
def a_step_line_moved_back(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, "step:1500/2330 val_loss:", "step:1400/2330 val_loss:"), only=0)
    return Case([folder], why="the step lines go back from step 1500 to step 1400")


@attack("the final result")
def a_val_line_with_another_total(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, "step:2330/2330 val_loss:", "step:2330/2290 val_loss:"), only=0)
    return Case([folder], why="where the run's total is 2330")


# Timing ----------------------------------------------------------------------------------------------------------


@attack("timing")
def early_steps_without_train_time(ws: Workspace) -> Case:
    folder = ws.record()

    def change(m: re.Match[str]) -> str:
        step = int(m[1])
        return m.group() if step > 500 or m[3] else f"step:{step}/{m[2]} train_loss:4.0000"

    ws.edit(folder, map_steps(change))
    return Case([folder], why="a step line without train_time")


@attack("timing")
def clock_frozen_for_200_steps(ws: Workspace) -> Case:
    folder = ws.record()

    def change(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        frozen = 1000 <= step < 1200
        time_ms = 59921.0 if frozen else float(m[5]) - (11800 if step >= 1200 else 0)
        return step_line(step, total, time_ms, loss)

    ws.edit(folder, map_steps(change))
    return Case([folder], why="train_time stands still from step 1000")


@attack("timing")
def clock_crawling_for_200_steps(ws: Workspace) -> Case:
    """As above, but the frozen clock still moves 1 ms a step, so that it never stands quite still."""
    folder = ws.record()

    def change(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        crawling = 1000 <= step < 1200
        time_ms = 59921.0 + (step - 1000) if crawling else float(m[5]) - (11600 if step >= 1200 else 0)
        return step_line(step, total, time_ms, loss)

    ws.edit(folder, map_steps(change))
    return Case([folder], why="the clock nearly stands still for")


@attack("timing")
def untimed_grace_steps_claimed_by_modern_code(ws: Workspace) -> Case:
    folder = ws.record()

    def change(m: re.Match[str]) -> str:
        step, total, loss = int(m[1]), int(m[2]), float(m[4]) if m[4] else None
        time_ms = max(0.0, float(m[5]) - 600) if step > 10 else 0.0
        return step_line(step, total, time_ms, loss, k=max(step - 10, 1))

    ws.edit(folder, map_steps(change))
    return Case([folder])


def _zero_times(m: re.Match[str]) -> str:
    return step_line(int(m[1]), int(m[2]), 0.0, float(m[4]) if m[4] else None)


@attack("timing")
def all_train_time_zero(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, map_steps(_zero_times))
    return Case([folder], why="train_time stands still from step 0 to step 1")


@attack("timing")
def all_train_time_zero_against_a_baseline(ws: Workspace) -> Case:
    folder = ws.record(WITH_BASELINE, prior=None)
    ws.edit(folder / "this_pr", map_steps(_zero_times))
    return Case([folder / "this_pr"], why="no time was measured")


@attack("timing")
def baseline_with_inflated_times(ws: Workspace) -> Case:
    folder = ws.record(PINNED_BASELINE, prior=None)
    ws.edit(folder / "baseline", scale_times(1.2))
    ws.edit(folder / "unified-optimizer", scale_times(1.1))
    return Case([folder / "unified-optimizer"], why="other hardware or clock")


@attack("timing")
def baseline_that_fails_its_own_checks(ws: Workspace) -> Case:
    folder = ws.record(PINNED_BASELINE, prior=None)
    ws.edit(folder / "baseline", scale_times(1.05))
    ws.edit(folder / "baseline", lambda t: re.sub(r"(step:(\d+)/\2 val_loss:)\S+", r"\g<1>3.3500", t))
    return Case([folder / "unified-optimizer"], why="it fails its own checks (SR003 loss")


@attack("timing")
def baseline_running_other_code(ws: Workspace) -> Case:
    """A baseline of the prior record with one setting changed (and so, say, slower): not the prior record."""
    folder = ws.record(PINNED_BASELINE, prior=None)
    ws.edit(folder / "baseline", append_code("torch.backends.cudnn.benchmark = False"))
    return Case([folder / "unified-optimizer"], why="does not run record 60")


@attack("timing")
def code_scheduling_more_steps_than_the_log_prints(ws: Workspace) -> Case:
    folder = ws.record()
    ws.edit(folder, lambda t: replace(t, "num_iterations: int = 2290", "num_iterations: int = 2390"))
    return Case([folder], why="but its code schedules 2430 steps")


@attack("timing")
def grace_steps_claimed_by_code_without_them(ws: Workspace) -> Case:
    """A record of the grace-period era whose code no longer restarts its clock at step 10, yet whose log divides
    by step - 10: the steps it leaves out of its time were timed."""
    folder = ws.record(GRACE_RECORD, prior=None)
    reset = re.compile(r"^( +)if step == 10:\n\1    training_time_ms = 0\n", re.MULTILINE)

    def change(text: str) -> str:
        assert reset.search(text), "the base record changed: no grace reset"
        return reset.sub(r"\1if step == -1:\n\1    pass\n", text)

    ws.edit(folder, change)
    return Case([folder], why="the embedded code has no untimed grace steps")


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


@attack("robustness")
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
