"""The training source embedded at the top of a run log, read as text and with `ast`, never run.

A whole training script takes tens of milliseconds to parse, and the archive holds a thousand of
them, so the rules parse only the top-level blocks they need: `top_level_blocks` splits a source
at its unindented statements, cheaply and without parsing. A block that does not parse on its own
(a multi-line string with unindented lines, say) makes the caller fall back to the whole source.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache

SECTION_MARKER = "# >>> "  # our trainer embeds each file under a line `# >>> speedrun/trainer/<file>.py`
# Unindented lines that continue the statement before them rather than start a new one.
_CONTINUATION = re.compile(r"[)\]}]|(?:else|elif|except|finally)\b")
_DEF_NAME = re.compile(r"^(?:@[^\n]*\n)*(?:async\s+)?(?:def|class)\s+(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """Consecutive source lines forming one top-level statement (with its decorators)."""

    first_line: int  # 1-based, in the coordinates of the source the block was cut from
    text: str

    @property
    def defines(self) -> str | None:
        """The name a `def` or `class` block defines, else None."""
        match = _DEF_NAME.match(self.text)
        return match.group(1) if match else None


def sections(source: str) -> dict[str, tuple[int, str]]:
    """Our trainer's embedded files: path -> (1-based first line of its text, text). Empty for other sources."""
    if SECTION_MARKER not in source:
        return {}
    found: dict[str, tuple[int, str]] = {}
    name: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(source.splitlines(), start=1):
        if line.startswith(SECTION_MARKER):
            if name is not None:
                found[name] = (start, "\n".join(body) + "\n")
            name, start, body = line[len(SECTION_MARKER) :].strip(), number + 1, []
        elif name is not None:
            body.append(line)
    if name is not None:
        found[name] = (start, "\n".join(body) + "\n")
    return found


@lru_cache(maxsize=256)
def top_level_blocks(source: str, first_line: int = 1) -> tuple[Block, ...]:
    """Split source into top-level statements at unindented lines, without parsing it."""
    blocks: list[Block] = []
    current: list[str] = []
    start = first_line
    only_decorators = False
    for number, line in enumerate(source.split("\n"), start=first_line):
        starts_statement = bool(line) and not line[0].isspace() and line[0] != "#"
        if starts_statement and current and not only_decorators and not _CONTINUATION.match(line):
            blocks.append(Block(start, "\n".join(current)))
            current, start = [], number
        if not current:
            start = number
            only_decorators = line.startswith("@")
        elif starts_statement:
            only_decorators = only_decorators and line.startswith("@")
        current.append(line)
    if current:
        blocks.append(Block(start, "\n".join(current)))
    return tuple(b for b in blocks if _has_code(b.text))


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.split("\n"))


def parse_block(block: Block) -> ast.Module | None:
    """The block's syntax tree with line numbers shifted to the source's coordinates, or None if it does not parse."""
    try:
        tree = ast.parse(block.text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if block.first_line != 1:
        ast.increment_lineno(tree, block.first_line - 1)
    return tree


def parse_source(source: str, first_line: int = 1) -> ast.Module | None:
    """The whole source's syntax tree (line numbers shifted by first_line - 1), or None if it does not parse."""
    return parse_block(Block(first_line, source))


def strip_docstrings(tree: ast.AST) -> ast.AST:
    """Drop docstrings in place, so that editing one does not change a code hash."""
    stack = [tree]
    while stack:
        node = stack.pop()
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and _is_docstring(body):
            node.body = body = body[1:] or [ast.Pass()]
        # Definitions (and so docstrings) only live in statement lists: no need to visit expressions.
        for field in ("body", "orelse", "finalbody", "handlers"):
            stack.extend(
                child for child in getattr(node, field, ()) if isinstance(child, (ast.stmt, ast.excepthandler))
            )
    return tree


def _is_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def normalised_dump(tree: ast.AST) -> str:
    """A layout-free text form of a syntax tree: no positions, no docstrings, comments already gone."""
    return ast.dump(strip_docstrings(tree), include_attributes=False)
