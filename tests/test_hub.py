"""`speedrun data fineweb` without a network: one line at once that says what to do, not the client's retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.test_data import _hf_cache

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there, so the connection is refused


def fetch(data_dir: Path, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HF_HUB_CACHE": str(cache), "NO_COLOR": "1", **env}
    for name in ("HF_HOME", "HF_HUB_OFFLINE"):
        if name not in env:
            environment.pop(name, None)
    command = [sys.executable, "-m", "speedrun", "data", "fineweb", "--dir", str(data_dir), "--train-shards", "2"]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_an_unreachable_hub_is_one_line_at_once_with_what_to_do(tmp_path: Path) -> None:
    line = one_line(fetch(tmp_path / "fineweb", tmp_path / "cache", HF_ENDPOINT=UNREACHABLE))
    assert line.startswith(f"error: {UNREACHABLE}: cannot reach the Hugging Face hub (Connection refused)")
    assert "check the network" in line and "HF_HUB_OFFLINE=1" in line and "HF_ENDPOINT" in line
    assert not (tmp_path / "fineweb").exists()  # nothing started


def test_a_hub_that_never_answers_times_out_after_the_clients_own_timeout(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        proc = fetch(
            tmp_path / "fineweb", tmp_path / "cache", HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_ETAG_TIMEOUT="1"
        )
    line = one_line(proc)
    assert "cannot reach the Hugging Face hub (timed out)" in line


def test_shards_already_in_place_need_no_hub(tmp_path: Path) -> None:
    _hf_cache(tmp_path / "cache", train_shards=2)
    cache = tmp_path / "cache" / "hub"
    assert fetch(tmp_path / "fineweb", cache, HF_HUB_OFFLINE="1").returncode == 0
    proc = fetch(tmp_path / "fineweb", cache, HF_ENDPOINT=UNREACHABLE)  # online mode, nothing to fetch
    assert proc.returncode == 0, proc.stderr
    assert "3 shard(s) present" in proc.stdout


def test_without_the_hub_client_it_names_the_extra_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['huggingface_hub'] = None; "  # as if it were not installed
        "from speedrun.cli import main; "
        f"sys.argv = ['speedrun', 'data', 'fineweb', '--dir', {str(tmp_path / 'fineweb')!r}]; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    line = one_line(proc)
    assert "needs the huggingface_hub package: pip install -e '.[train]'" in line
