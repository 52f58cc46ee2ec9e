"""`speedrun leaderboard` and `speedrun records new`: tables and chart spliced into a README, --check, bad input.

The judge is replaced by a fake where only the table logic is under test; the archive test uses the real one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge.judging import prior_record
from speedrun.judge.runlog import RunLog, StepLine
from speedrun.judge.verdict import Check, Judgement, Status, Summary
from speedrun.leaderboard.generate import generate, write
from speedrun.leaderboard.verify import shows_as
from speedrun.store import RECORD_FILE, load_records, read_record
from tests.conftest import ROOT

MARKED_README = """\
# A project\r
\r
Some text that must survive, with CRLF line endings and a trailing space \r
<!-- leaderboard:chart -->\r
old chart link\r
<!-- /leaderboard:chart -->\r
between the tables\r
<!-- leaderboard:track_1_short -->\r
<!-- /leaderboard:track_1_short -->\r
<!-- leaderboard:track_2_medium -->\r
| 1 | stale row |\r
<!-- /leaderboard:track_2_medium -->\r
the end, without a final newline"""

RECORD = """\
number = {number}
time = "{time}"
date = {date}
description = "{description}"
contributors = ["@someone"]
logs = [{logs}]
pull_requests = ["https://github.com/example/speedrun/pull/{number}"]
"""


def nb(text: str) -> str:
    """Text as the tables show it: dates and times do not break (non-breaking hyphens and spaces)."""
    return text.replace("-", "\u2011").replace(" ", "\u00a0")


def speedrun(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speedrun", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def add_record(
    root: Path,
    folder: str,
    number: int,
    time: str = "3.5 minutes",
    logs: tuple[str, ...] = (),
    track: str = "track_1_short",
    description: str = "A & B <faster>",
) -> Path:
    path = root / track / folder / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    for log in logs:
        (path.parent / log).parent.mkdir(parents=True, exist_ok=True)
        (path.parent / log).write_text("a run log\n")
    text = RECORD.format(
        number=number, time=time, date=folder[:10], description=description, logs=", ".join(f'"{x}"' for x in logs)
    )
    path.write_text(text, encoding="utf-8")
    return path


def records_new_args(runs: Path, *, name: str, description: str, date: str) -> tuple[str | Path, ...]:
    """`speedrun records new` on the small track, with the options every such test passes."""
    return ("records", "new", runs, "--track", "small", "--name", name, "--description", description, "--date", date)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with two records per track and a README with the markers."""
    (tmp_path / "README.md").write_bytes(MARKED_README.encode())
    records = tmp_path / "records"
    add_record(records, "2025-01-02_First", 1, "10.5 minutes")
    add_record(records, "2025-02-03_Second", 2, "8.25 minutes")
    add_record(records, "2025-01-05_Medium", 1, "40 minutes", track="track_2_medium")
    add_record(records, "2025-03-05_Faster", 2, "30.1 minutes*", track="track_2_medium")
    return tmp_path


def fake_judgement(
    folder: Path, runs: list[Path], times_s: list[float], normalised_s: float | None = None
) -> Judgement:
    logs = tuple(
        RunLog(
            path=path,
            format="speedrun",
            sha256="0" * 64,
            steps=(StepLine(step=10, total_steps=10, line=5, val_loss=3.2781, train_time_ms=t * 1000),),
        )
        for path, t in zip(runs, times_s, strict=True)
    )
    mean_s = sum(times_s) / len(times_s)
    figures = {} if normalised_s is None else {"normalised_time_s": normalised_s}
    return Judgement(
        path=folder,
        track="track_1_short",
        track_reason="--track",
        runs=logs,
        summary=Summary(len(logs), 3.2781, 0.001, 0.004, mean_s, mean_s),
        checks=(Check("speed", Status.PASS, "faster", figures=figures),),
    )


def test_the_project_readme_is_generated_and_up_to_date() -> None:
    proc = speedrun("leaderboard", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for number in range(1, 85):
        assert f"\n| {number} | " in readme
    assert readme.count("\n| 21 | ") == 3
    assert "](docs/record-history.svg)" in readme


def test_a_hand_edit_of_a_row_or_the_chart_fails_the_check(tmp_path: Path) -> None:
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "record-history.svg", tmp_path / "docs" / "record-history.svg")
    args = ("leaderboard", "--check", "--records", ROOT / "records", "--readme", tmp_path / "README.md")
    assert speedrun(*args).returncode == 0

    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    edited = readme.replace(f"| 84 | {nb('1.320 minutes')} |", f"| 84 | {nb('1.310 minutes')} |")
    assert edited != readme
    (tmp_path / "README.md").write_text(edited, encoding="utf-8")
    proc = speedrun(*args)
    assert proc.returncode == 1
    assert f"-| 84 | {nb('1.310 minutes')} |" in proc.stdout and f"+| 84 | {nb('1.320 minutes')} |" in proc.stdout
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == edited  # --check writes nothing
    # The figures a row shows are the ones its record.toml holds: a README edited to show others is stale.
    row = next(line for line in readme.splitlines() if line.startswith(f"| 83 | {nb('1.328 minutes')} |"))
    shown = re.search(r"mean\u00a0(\d\.\d{4})", row)
    assert shown is not None, row
    (tmp_path / "README.md").write_text(
        readme.replace(row, row.replace(shown[0], "mean\u00a03.2000")), encoding="utf-8"
    )
    assert speedrun(*args).returncode == 1

    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    chart = tmp_path / "docs" / "record-history.svg"
    chart.write_text(chart.read_text().replace("GPT-2 Small", "GPT-2 small"))
    proc = speedrun(*args)
    assert proc.returncode == 1 and "record-history.svg" in proc.stdout


def test_write_replaces_only_the_marked_blocks(project: Path) -> None:
    readme = project / "README.md"
    board = generate(project / "records", readme)
    assert set(write(board)) == {readme, project / "docs" / "record-history.svg"}
    text = readme.read_bytes().decode()
    original = MARKED_README
    assert text.startswith(original[: original.index("<!-- leaderboard:chart -->")])
    assert text.endswith("<!-- /leaderboard:track_2_medium -->\r\nthe end, without a final newline")
    assert "\r\nbetween the tables\r\n" in text
    assert "stale row" not in text and "old chart link" not in text
    assert f"| 2 | {nb('8.25 minutes')} | A & B &lt;faster> | {nb('2025-02-03')} |" in text
    assert f"| 2 | {nb('30.1 minutes')}\\* |" in text
    assert "[PR](https://github.com/example/speedrun/pull/2)" in text
    assert text.count("| unverified |") == 4
    assert "\n" not in text.replace("\r\n", "")  # the README's own line endings are kept
    again = generate(project / "records", readme)
    assert again.stale == []  # idempotent


def test_contributed_text_cannot_break_the_readme(project: Path) -> None:
    path = add_record(
        project / "records", "2025-04-01_Hostile", 3, description="x <!-- /leaderboard:track_1_short --> | y"
    )
    write(generate(project / "records", project / "README.md"))
    text = (project / "README.md").read_text(encoding="utf-8")
    assert "| x &lt;!-- /leaderboard:track_1_short --> \\| y |" in text
    assert text.count("<!-- /leaderboard:track_1_short -->") == 1
    assert generate(project / "records", project / "README.md").stale == []
    assert path.is_file()


def test_the_chart_is_valid_svg_with_both_tracks_and_dark_colours(project: Path) -> None:
    add_record(project / "records", "2025-04-01_Undated", 3, track="track_2_medium")
    path = project / "records" / "track_2_medium" / "2025-04-01_Undated" / RECORD_FILE
    path.write_text(path.read_text().replace("date = 2025-04-01", 'date = "unknown"'))
    add_record(project / "records", "2023-06-01_Old", 3, "40 minutes")  # more than a year before the last
    svg = generate(project / "records", project / "README.md").chart_new
    root = ET.fromstring(svg)  # the description's '&' and '<' are escaped
    ns = {"svg": "http://www.w3.org/2000/svg"}
    # The whole history (5 dated records), then each track's last twelve months (2 small, 2 medium).
    assert len(root.findall(".//svg:circle", ns)) == 5 + 2 + 2
    assert len(root.findall(".//svg:path", ns)) == 2 + 2  # one step line per track and panel
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "GPT-2 Small, the last twelve months (2 records; linear time axis)" in labels
    assert "GPT-2 Medium, the last twelve months (2 records; linear time axis)" in labels
    assert "Record time (log scale)" in labels and "Date of the record" in labels
    assert "#2: 8.25 minutes" in labels

    # An opaque background of the page's colour in either mode, painted before anything else.
    background = root.find("svg:rect", ns)
    assert background is not None and list(root).index(background) == 2  # after <title> and <style>
    assert (background.get("width"), background.get("height")) == (root.get("width"), root.get("height"))
    assert background.get("class") == "background"
    style = root.find("svg:style", ns).text  # type: ignore[union-attr]
    light, dark = style.split("@media (prefers-color-scheme: dark)")
    assert ".background { fill: #ffffff; }" in light and ".background { fill: #0d1117; }" in dark

    # The footnote sits on a line of its own, below the x-axis title.
    texts = {t.text: t for t in root.iter("{http://www.w3.org/2000/svg}text")}
    footnote = next(t for text, t in texts.items() if text and text.startswith("Not drawn (no published date)"))
    assert footnote.text == "Not drawn (no published date): GPT-2 Medium #3"
    assert float(footnote.get("y")) - float(texts["Date of the record"].get("y")) >= 16  # type: ignore[arg-type]


def test_rows_with_logs_show_the_judges_figures(project: Path) -> None:
    records = project / "records"
    add_record(records, "2025-04-01_Judged", 3, "3.5 minutes", logs=("this_pr/a.txt", "this_pr/b.txt"))
    add_record(records, "2025-05-01_Slower", 4, "3.0 minutes", logs=("run.txt",))
    calls: list[Path] = []

    def judge(path: Path, *, track: str, records_dir: Path | None) -> list[Judgement]:
        calls.append(path)
        folder = path.resolve()
        if folder.name == "2025-04-01_Judged":
            runs = [folder / "this_pr" / "a.txt", folder / "this_pr" / "b.txt"]
            return [fake_judgement(folder / "this_pr", runs, [210.0, 214.0])]
        return [fake_judgement(folder, [folder / "run.txt"], [190.0])]

    board = generate(records, project / "README.md", judge=judge)
    text = board.readme_new.replace("\u00a0", " ")
    assert "| 3 | 3.5 minutes |" in text
    assert "| ✓ n=2, mean 3.2781, p=0.004; time: log |" in text  # a.txt's own time is 3.5 minutes
    assert "| ⚠ n=1, mean 3.2781, p=0.004; logs: 3.167 min |" in text
    assert "[log 1](records/track_1_short/2025-04-01_Judged/this_pr/a.txt)" in text
    assert calls[0] == (records / "track_1_short" / "2025-04-01_Judged").resolve()  # the whole record folder
    assert "4 rows, 2 with figures the judge read in their logs" in text


def test_time_agreement_uses_the_published_precision(project: Path) -> None:
    records = project / "records"
    add_record(records, "2025-04-01_Mean", 3, "2.933 minutes", logs=("a.txt", "b.txt"))
    add_record(records, "2025-05-01_Normalised", 4, "2.9 minutes", logs=("a.txt",))

    def judge(path: Path, *, track: str, records_dir: Path | None) -> list[Judgement]:
        folder = path.resolve()
        if folder.name.endswith("Mean"):  # published = mean 175.98 s; neither run's own time
            return [fake_judgement(folder, [folder / "a.txt", folder / "b.txt"], [175.0, 176.96])]
        return [fake_judgement(folder, [folder / "a.txt"], [190.0], normalised_s=174.5)]  # 2.908 min: within 0.1

    text = generate(records, project / "README.md", judge=judge).readme_new.replace("\u00a0", " ")
    assert "| ✓ n=2, mean 3.2781, p=0.004; time: mean |" in text
    assert "| ✓ n=1, mean 3.2781, p=0.004; time: normalised |" in text


def test_a_folder_shared_by_two_records_is_judged_file_by_file(tmp_path: Path) -> None:
    mirror = tmp_path / "upstream" / "records"
    shared = mirror / "track_2_medium" / "2025-01-18"
    shared.mkdir(parents=True)
    for name in ("main.log", "run.txt"):
        (shared / name).write_text("x")
    url = "https://github.com/KellerJordan/modded-nanogpt/blob/master/records/track_2_medium/2025-01-18/"
    ours = tmp_path / "records"
    for number, folder, log in ((1, "2024-05-28_Baseline", "main.log"), (2, "2025-01-18_First", "run.txt")):
        path = add_record(ours, folder, number, track="track_2_medium")
        path.write_text(path.read_text().replace("logs = []", f'logs = ["{url}{log}"]'))
    judged: list[Path] = []

    def judge(path: Path, *, track: str, records_dir: Path | None) -> list[Judgement]:
        judged.append(path)
        return [fake_judgement(path.parent, [path], [60.0])]

    verifications = generate(ours, _readme(tmp_path), logs_dir=mirror, judge=judge).verifications
    assert sorted(p.name for p in judged) == ["main.log", "run.txt"]
    assert {v.n for v in verifications.values()} == {1}


def _readme(folder: Path) -> Path:
    path = folder / "README.md"
    path.write_text(MARKED_README)
    return path


def test_templates_can_be_overridden(project: Path) -> None:
    templates = project / "templates"
    templates.mkdir()
    (templates / "table.md.j2").write_text("{% for row in rows %}* {{ row.number }}: {{ row.time }}\n{% endfor %}")
    text = generate(project / "records", project / "README.md", templates=templates).readme_new
    assert f"* 2: {nb('8.25 minutes')}" in text
    assert "<svg" in generate(project / "records", project / "README.md", templates=templates).chart_new


def test_json_output(project: Path) -> None:
    proc = speedrun(
        "leaderboard", "--check", "--json", "--records", project / "records", "--readme", project / "README.md"
    )
    assert proc.returncode == 1  # the fixture's README is stale
    data = json.loads(proc.stdout)
    assert [(r["track"], r["number"]) for r in data["rows"]] == [
        ("track_1_short", 1),
        ("track_1_short", 2),
        ("track_2_medium", 1),
        ("track_2_medium", 2),
    ]
    assert data["rows"][1]["time_seconds"] == pytest.approx(495.0) and data["rows"][1]["verified"] is None
    assert data["written"] == []
    assert (project / "README.md").read_bytes() == MARKED_README.encode()


BAD_INPUTS = {
    "malformed TOML": (
        "records/track_1_short/2025-01-02_First/record.toml",
        'time = "10.5 minutes"',
        "time = 10.5 min",
    ),
    "missing field": ("records/track_1_short/2025-01-02_First/record.toml", 'time = "10.5 minutes"\n', ""),
    "duplicate number": ("records/track_1_short/2025-02-03_Second/record.toml", "number = 2", "number = 1"),
    "future date": ("records/track_1_short/2025-02-03_Second/record.toml", "date = 2025-02-03", "date = 2999-01-01"),
    "unresolved log": ("records/track_1_short/2025-02-03_Second/record.toml", "logs = []", 'logs = ["gone.txt"]'),
    "no markers": ("README.md", "<!-- leaderboard:track_1_short -->", ""),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(project: Path, case: str) -> None:
    relative, old, new = BAD_INPUTS[case]
    target = project / relative
    target.write_bytes(target.read_bytes().replace(old.encode(), new.encode(), 1))
    readme_before = (project / "README.md").read_bytes()
    proc = speedrun("leaderboard", "--records", project / "records", "--readme", project / "README.md")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(target) in proc.stderr.replace("\n", "")
    assert (project / "README.md").read_bytes() == readme_before
    assert not (project / "docs").exists()


@pytest.mark.archive
def test_records_new_scaffolds_a_folder_the_leaderboard_verifies(project: Path, upstream_records: Path) -> None:
    runs = upstream_records / "track_1_short" / "2025-10-04_Backout"
    args = records_new_args(runs, name="Backout", description="Backout", date="2025-10-04")
    proc = speedrun(*args, "--contributor", "@me", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["number"], result["n"], result["time"]) == (3, 5, "2.345 minutes")  # README.md there: 140.697 s
    folder = project / "records" / "track_1_short" / "2025-10-04_Backout"
    (record,) = [r for r in load_records(project / "records") if r.folder == folder]
    assert record.log_urls == ("514e7581-fbd4-4338-a3e4-e556f9c958ce.txt",)  # one link, as published rows have
    assert (folder / record.log_urls[0]).is_file() and record.contributors == ("@me",)

    again = speedrun(*args, cwd=project)
    assert again.returncode == 2 and "already exists" in again.stderr

    board = generate(project / "records", project / "README.md")
    verification = board.verifications[record]
    assert verification.n == 5 and verification.mean_time_s == pytest.approx(140.6968)
    assert verification.time_agrees  # the time is the runs' mean, and the first linked run's own time rounds the same
    (row,) = [line for line in board.readme_new.splitlines() if line.startswith("| 3 |")]
    assert row.count("](") == 1 and "[log](records/track_1_short/2025-10-04_Backout/514e7581-" in row


@pytest.mark.archive
def test_records_new_cites_the_files_given_or_written_never_its_staging_folder(
    project: Path, upstream_records: Path
) -> None:
    """Record 5's log breaks today's compile-flag rule at line 372: the report names that line in the file given
    (nothing is written), then, with --force, in the record folder written; a bad log is named as given."""
    source = upstream_records / "track_1_short" / "2024-10-14_ModernArch"
    args = records_new_args(source, name="Old", description="d", date="2024-10-14")
    log = "dabaaddd-237c-4ec9-939d-6608a9ed5e27.txt"
    refused = speedrun(*args, cwd=project)
    assert refused.returncode == 1 and "not written" in refused.stdout, refused.stdout + refused.stderr
    assert f"\n    {source / log}:372\n" in refused.stdout and ".new-" not in refused.stdout
    forced = speedrun(*args, "--force", cwd=project)
    written = f"records/track_1_short/2024-10-14_Old/{log}"  # as the new folder's file, from where it was run
    assert forced.returncode == 0 and (project / written).is_file(), forced.stdout + forced.stderr
    assert f"\n    {written}:372\n" in forced.stdout
    assert ".new-" not in forced.stdout

    cut = project / "cut.txt"
    cut.write_bytes((source / log).read_bytes()[:60_000])  # ends before its first val line
    bad = speedrun(*records_new_args(cut, name="Cut", description="d", date="2024-10-14"), cwd=project)
    assert bad.returncode == 2 and bad.stderr.startswith(f"error: {cut}:"), bad.stderr
    assert ".new-" not in bad.stderr


def test_records_new_refuses_bad_names_and_missing_logs(project: Path) -> None:
    proc = speedrun(
        "records", "new", project / "nothing", "--track", "small", "--name", "x", "--description", "d", cwd=project
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = speedrun("records", "new", project, "--track", "small", "--name", "../up", "--description", "d", cwd=project)
    assert proc.returncode == 2 and "--name" in proc.stderr
    assert not list((project / "records" / "track_1_short").glob(".new-*"))


def test_prior_record_follows_a_record_added_in_the_same_process(tmp_path: Path) -> None:
    records = tmp_path / "records"
    add_record(records, "2025-01-02_First", 1)
    submission = tmp_path / "submission"
    assert prior_record(submission, "track_1_short", records)[0].number == 1  # type: ignore[union-attr]
    add_record(records, "2025-02-03_Second", 2)
    assert prior_record(submission, "track_1_short", records)[0].number == 2  # type: ignore[union-attr]


def test_run_from_another_folder_says_where_to_run_it(tmp_path: Path) -> None:
    proc = speedrun("leaderboard", "--check", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = " ".join(proc.stderr.split())
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"README.md: README file does not exist in {tmp_path}" in line
    assert "from the repository root, or pass --readme" in line


def test_generate_refuses_an_empty_records_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "records").mkdir()
    with pytest.raises(BadInput, match=r"no record\.toml"):
        generate(tmp_path / "records", _readme(tmp_path))
    monkeypatch.chdir(tmp_path)  # without --records, the error names the ./records it looked in
    with pytest.raises(BadInput, match=r"no record\.toml") as raised:
        generate(None, _readme(tmp_path))
    assert raised.value.path == str(tmp_path / "records")


@pytest.mark.parametrize(
    ("published", "seconds", "shows"),
    [
        ("2.863 minutes", 2.8624 * 60, True),  # rounded up (record 26)
        ("2.717 minutes", 2.71797 * 60, True),  # rounded down (record 30)
        ("2.358 minutes", 140.693, False),  # 2.3449 minutes: more than one digit off (record 40)
        ("22.3 minutes", 22.36 * 60, True),
        ("22.3 minutes", 22.41 * 60, False),
        ("5.8 hours", 5.75 * 3600, True),
        ("25.95 minutes*", 25.95 * 60, True),
    ],
)
def test_shows_as_published(tmp_path: Path, published: str, seconds: float, shows: bool) -> None:
    path = add_record(tmp_path, "2025-01-02_A", 1, published)
    assert shows_as(seconds, read_record(path, "track_1_short")) is shows


@pytest.mark.archive
def test_records_new_refuses_logs_the_judge_fails_unless_forced(project: Path, upstream_records: Path) -> None:
    runs = upstream_records / "track_1_short" / "2024-11-06_ShortcutsTweaks"  # mean loss above 3.28
    args = records_new_args(runs, name="Shortcuts", description="d", date="2024-11-06")
    proc = speedrun(*args, cwd=project)
    assert proc.returncode == 1 and "not written" in proc.stdout, proc.stdout + proc.stderr
    folder = project / "records" / "track_1_short" / "2024-11-06_Shortcuts"
    assert not folder.exists() and not list(folder.parent.glob(".new-*"))
    proc = speedrun(*args, "--force", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert read_record(folder / RECORD_FILE, "track_1_short").number == 3


@pytest.mark.archive
def test_records_new_keeps_named_folders_apart(project: Path, upstream_records: Path) -> None:
    source = upstream_records / "track_1_short" / "2026-02-28_TransposeCopyBackward"
    args = ("records", "new", source / "this_pr", source / "baseline", "--track", "small", "--name", "Transpose")
    proc = speedrun(*args, "--description", "d", "--date", "2026-02-28", "--force", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    folder = project / "records" / "track_1_short" / "2026-02-28_Transpose"
    assert {p.name for p in folder.iterdir()} == {"this_pr", "baseline", RECORD_FILE}
    record = read_record(folder / RECORD_FILE, "track_1_short")
    assert record.log_urls and all(link.startswith("this_pr/") for link in record.log_urls)
    assert json.loads(proc.stdout)["time_source"] == "normalised against the baseline"
