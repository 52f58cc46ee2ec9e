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
# The newline before an unindented line that is not a comment, where a top-level statement may start. Led by
# a literal newline, the regex skips from one newline to the next rather than trying every character.
_STATEMENT_LINE = re.compile(r"\n(?=[^\s#])")
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
    """Split source into top-level statements at unindented lines, without parsing it.

    Only the unindented code lines are visited (a regex finds them), not every line: a block ends where
    such a line starts a new statement, unless the block so far holds only decorators.
    """
    blocks: list[Block] = []
    start, number = 0, first_line
    at, at_number = 0, first_line  # the last statement line seen, to count lines from
    only_decorators = source.startswith("@")
    for match in _STATEMENT_LINE.finditer(source):
        position = match.end()
        if only_decorators or _CONTINUATION.match(source, position):
            only_decorators = only_decorators and source.startswith("@", position)
            continue
        at_number += source.count("\n", at, position)
        at = position
        blocks.append(Block(number, source[start : position - 1]))
        start, number = position, at_number
        only_decorators = source.startswith("@", position)
    blocks.append(Block(number, source[start:]))
    # Every block but the first starts with a code line; the first may hold only blank lines and comments.
    if not _has_code(blocks[0].text):
        del blocks[0]
    return tuple(blocks)


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
    """A layout-free text form of a syntax tree: no positions, no docstrings, comments already gone.

    Not `ast.dump`, whose output changes between Python versions (3.12 adds `type_params`, 3.13 leaves
    empty fields out): a hash of it would make the same log pass under one interpreter and fail under
    another. Here empty and None fields are always left out, and so is `ctx`, which the syntax implies.
    """
    return _stable_dump(strip_docstrings(tree))


def _stable_dump(node: object) -> str:
    if isinstance(node, ast.AST):
        fields = []
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(node, ast.JoinedStr) and name == "values":  # 3.12 adds empty parts to format specs
                value = [v for v in value if not (isinstance(v, ast.Constant) and v.value == "")]
            if name in ("ctx", "type_comment") or value is None or (isinstance(value, list) and not value):
                continue
            fields.append(f"{name}={_stable_dump(value)}")
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(map(_stable_dump, node))}]"
    return repr(node)
