"""Roles of the groups in a record folder: the candidate, its baseline, and other groups, told apart by
record.toml, by names, and by what the logs hold; only candidates decide the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge.discover import RoleHints, assign_roles, code_hash, split_groups
from speedrun.judge.judging import MODEL_DIM_TRACKS, judge_path, parse_runs
from speedrun.judge.verdict import Role, Verdict
from speedrun.store import Roles
from tests.test_judge_cli import BAD, GOOD, PRIOR_CODE, SOURCE, judge, judge_store, log_text
from tests.test_judge_cli import write_runs as write_runs_of_one_code

LLMC_LOG = "s:0 tel:10.9830\ns:0 trl:10.9811 lr:0.000001 norm:15.37\ns:250 tel:6.3097\ns:500 tel:3.2722\n"
SMALL = RoleHints(track="track_1_short", track_dims=MODEL_DIM_TRACKS)


def write_runs(folder: Path, losses: list[float], times: list[int] | None = None, **kwargs: object) -> list[Path]:
    """Runs of a code of their own: each folder here holds another version of the training script."""
    kwargs.setdefault("source", f"{SOURCE}version = {folder.name!r}\n")
    return write_runs_of_one_code(folder, losses, times, **kwargs)


def roles(folder: Path, hints: RoleHints = SMALL) -> dict[str, tuple[Role, str]]:
    parsed = {key: parse_runs(logs) for key, logs in split_groups(folder).items()}
    return {g.key: (g.role, g.reason) for g in assign_roles(folder, parsed, hints)}


def test_a_folder_of_runs_is_the_candidate(tmp_path: Path) -> None:
    write_runs(tmp_path, GOOD[:3])
    assert roles(tmp_path) == {".": (Role.CANDIDATE, "")}


def test_baselines_by_name_and_the_longest_re_run_is_the_baseline(tmp_path: Path) -> None:
    write_runs(tmp_path / "this_pr", GOOD[:3])
    write_runs(tmp_path / "baseline-s1500", GOOD[:3], steps=1500)
    write_runs(tmp_path / "baseline-s1250", GOOD[:3], steps=1250)
    write_runs(tmp_path / "12-19-Baseline-old", GOOD[:2], steps=1000)
    found = roles(tmp_path)
    assert found["this_pr"][0] is Role.CANDIDATE
    assert found["baseline-s1500"][0] is Role.BASELINE
    assert found["baseline-s1250"] == (
        Role.OTHER,
        "another re-run of the prior record (baseline-s1500 is the baseline)",
    )
    assert found["12-19-Baseline-old"][0] is Role.OTHER


def test_master_and_prior_are_baselines_extra_and_ablations_are_other(tmp_path: Path) -> None:
    write_runs(tmp_path / "xsa-gated", GOOD[:3])
    write_runs(tmp_path / "master-s1480", GOOD[:3])
    write_runs(tmp_path / "extra", GOOD[:1])
    write_runs(tmp_path / "ablations" / "no-gate", BAD[:2])
    found = roles(tmp_path)
    assert found["xsa-gated"][0] is Role.CANDIDATE and found["master-s1480"][0] is Role.BASELINE
    assert found["extra"] == (Role.OTHER, "named as extra runs or an ablation")
    assert found["ablations/no-gate"][0] is Role.OTHER


def test_earlier_versions_are_other(tmp_path: Path) -> None:
    for name in ("this_pr_v1", "this_pr_v1-s1415", "this_pr_v2", "this_pr_v3"):
        write_runs(tmp_path / name, GOOD[:2])
    found = roles(tmp_path)
    assert found["this_pr_v3"][0] is Role.CANDIDATE
    assert found["this_pr_v1"] == (Role.OTHER, "an earlier version (v1) than v3")
    assert found["this_pr_v1-s1415"][0] is Role.OTHER and found["this_pr_v2"][0] is Role.OTHER


def test_a_log_of_another_format_or_model_size_or_a_single_gpu_test_is_other(tmp_path: Path) -> None:
    write_runs(tmp_path, GOOD[:3])
    (tmp_path / "main.log").write_text(LLMC_LOG, encoding="utf-8")
    (tmp_path / "medium.txt").write_text(log_text(2.91, model_dim=1024), encoding="utf-8")
    (tmp_path / "single_run.txt").write_text(log_text(3.27, gpus=1), encoding="utf-8")
    found = roles(tmp_path)
    assert found["."] == (Role.CANDIDATE, "")
    assert found["main.log"] == (Role.OTHER, "a log of another format (llm.c) beside the speedrun logs")
    assert found["medium.txt"] == (Role.OTHER, "a log of the track_2_medium model (model_dim 1024)")
    assert found["single_run.txt"][0] is Role.OTHER and "1 GPU" in found["single_run.txt"][1]


def test_baseline_files_beside_the_runs_are_split_off_by_name_and_by_code(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_runs(logs, GOOD[:3])
    for i in range(2):
        (logs / f"baseline{i}-1500.txt").write_text(log_text(3.278, steps=1500, seed=i), encoding="utf-8")
        (logs / f"baseline{i}-1250.txt").write_text(log_text(3.279, steps=1250, seed=i, source="x = 2\n"), "utf-8")
    found = roles(tmp_path)
    assert found["logs"][0] is Role.CANDIDATE
    assert found["logs/baseline*-1500.txt"] == (Role.BASELINE, "named as a baseline")
    assert found["logs/baseline*-1250.txt"][0] is Role.OTHER  # the shorter re-run


def test_runs_of_the_prior_records_code_are_its_baseline_and_of_another_records_code_are_other(
    tmp_path: Path,
) -> None:
    write_runs(tmp_path, GOOD[:3])
    (tmp_path / "rerun.txt").write_text(log_text(3.276, source="prior = 1\n"), encoding="utf-8")
    (tmp_path / "older.txt").write_text(log_text(3.277, source="older = 1\n"), encoding="utf-8")
    parsed = {key: parse_runs(logs) for key, logs in split_groups(tmp_path).items()}
    code = {r.path.name: code_hash(r) or "" for r in parsed["."]}
    prior, older = code["rerun.txt"], code["older.txt"]
    hints = RoleHints(prior_code=frozenset({prior}), other_code={older: "record 7"}, track="track_1_short")
    found = {g.key: (g.role, g.reason) for g in assign_roles(tmp_path, parsed, hints)}
    assert found["rerun.txt"] == (Role.BASELINE, "runs the prior record's code")
    assert found["older.txt"] == (Role.OTHER, "runs the code of record 7")


def test_record_toml_names_the_candidate_file_and_the_rest_is_other(tmp_path: Path) -> None:
    write_runs(tmp_path, GOOD[:4])  # four versions of a script; the record is the third
    (tmp_path / "run02.txt").write_text(log_text(3.2768, source=f"{SOURCE}version = 'the record'\n"), "utf-8")
    hints = RoleHints(roles=Roles(candidate=("run02.txt",)), track="track_1_short")
    found = roles(tmp_path, hints)
    assert found["run02.txt"] == (Role.CANDIDATE, "named as the submission in record.toml")
    assert found["."] == (Role.OTHER, "not named as the submission in record.toml")


def test_record_toml_names_baseline_and_others_with_their_reasons(tmp_path: Path) -> None:
    for name in ("combined", "muon-beta2", "reference"):
        write_runs(tmp_path / name, GOOD[:2])
    hints = RoleHints(
        roles=Roles(baseline="reference", other=(("muon-beta2", "an ablation of the Muon beta"),)),
        track="track_1_short",
    )
    found = roles(tmp_path, hints)
    assert found["combined"][0] is Role.CANDIDATE
    assert found["reference"] == (Role.BASELINE, "named as the baseline in record.toml")
    assert found["muon-beta2"] == (Role.OTHER, "an ablation of the Muon beta (record.toml)")


def test_the_group_record_toml_links_is_the_candidate_among_several(tmp_path: Path) -> None:
    for name in ("combined", "max_num_docs"):
        write_runs(tmp_path / name, GOOD[:2])
    hints = RoleHints(linked=frozenset({(tmp_path / "combined" / "run01.txt").resolve()}), track="track_1_short")
    found = roles(tmp_path, hints)
    assert found["combined"] == (Role.CANDIDATE, "the log record.toml links")
    assert found["max_num_docs"] == (Role.OTHER, "not the runs record.toml links")


def test_a_folder_of_baselines_alone_is_judged_and_one_of_nothing_but_others_is_bad_input(tmp_path: Path) -> None:
    write_runs(tmp_path / "only" / "baseline", GOOD[:2])
    assert roles(tmp_path / "only") == {"baseline": (Role.CANDIDATE, "")}
    (tmp_path / "medium").mkdir()
    (tmp_path / "medium" / "m.txt").write_text(log_text(2.91, model_dim=1024), encoding="utf-8")
    with pytest.raises(BadInput, match="no group of runs here is a submission"):
        roles(tmp_path / "medium")


def test_runs_of_the_submissions_own_code_are_the_submission_whatever_their_name(tmp_path: Path) -> None:
    write_runs_of_one_code(tmp_path / "this_pr", GOOD)
    write_runs_of_one_code(tmp_path / "extra", BAD)  # the same code's worst runs, set aside by a name
    found = roles(tmp_path)
    assert found["extra"] == (Role.CANDIDATE, "runs the submission's code, though named as extra runs or an ablation")
    hints = RoleHints(roles=Roles(candidate=("this_pr",)), track="track_1_short")
    assert roles(tmp_path, hints)["extra"][0] is Role.CANDIDATE  # nor can record.toml set them aside


def test_groups_that_are_not_the_submission_never_decide(tmp_path: Path) -> None:
    record = tmp_path / "records" / "track_1_short" / "2030-01-02_Idea"
    write_runs(record / "this_pr", GOOD, [88_000 + 50 * i for i in range(8)])
    write_runs(record / "baseline", GOOD, [89_500 + 50 * i for i in range(8)], source=PRIOR_CODE)
    write_runs(record / "ablation", BAD)  # misses the target: would fail on its own
    judgements = judge_path(record, records_dir=judge_store())
    assert [(j.path.name, j.role) for j in judgements] == [("this_pr", Role.CANDIDATE), ("ablation", Role.OTHER)]
    assert judgements[1].verdict is Verdict.FAIL  # on its own; it is reported apart
    proc = judge(record, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    docs = json.loads(proc.stdout)
    assert [(Path(d["path"]).name, d["role"], d["verdict"]) for d in docs] == [
        ("this_pr", "candidate", "pass"),
        ("ablation", "other", "fail"),
    ]
    table = judge(record).stdout
    assert "Not the submission" in table and "named as extra runs" in table
