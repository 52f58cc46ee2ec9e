"""Write the README's rule table from the judge's registry and the track files, as ruff writes its rule docs.

    python scripts/rule_table.py [--check]

The table sits between `<!-- rules:start -->` and `<!-- rules:end -->` in README.md; tests/test_rules.py fails
when it is out of date. `--check` writes nothing and exits 1 when the README differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speedrun.errors import BadInput  # noqa: E402
from speedrun.judge.rules import rule_table  # noqa: E402
from speedrun.readme_blocks import replace_block  # noqa: E402
from speedrun.tracks import TRACK_NAMES, load_track  # noqa: E402

START, END = "<!-- rules:start -->", "<!-- rules:end -->"


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    try:
        new = replace_block(
            text, START, END, rule_table([load_track(n, ROOT / "records") for n in TRACK_NAMES]), readme
        )
    except BadInput as e:
        print(e, file=sys.stderr)
        return 2
    if new == text:
        return 0
    if "--check" in argv:
        print(f"{readme}: the rule table is out of date: run python scripts/rule_table.py", file=sys.stderr)
        return 1
    readme.write_text(new, encoding="utf-8")
    print(f"wrote the rule table into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
