"""The training source embedded at the top of a run log, read as text and with `ast`, never run.

A log embeds the source that ran, and the judge relies on it (compiler flags, the data pipeline), so the
source must be Python as a whole: `source_structure` checks that, and where it is not (a forged boundary,
a cut, garbage) says why, so the rules can refuse to confirm what they cannot read.

A whole training script takes tens of milliseconds to parse, and the archive holds a thousand of them, so
the source is read one top-level statement at a time: `top_level_blocks` splits it at unindented lines,
cheaply and without parsing, and each block is parsed once, keyed by its text, since records copy most of
their code from the record before. A split can go wrong only inside a multi-line string or bracket, and
then the block ending there does not parse on its own; from that block on, the source is parsed whole.
Why that is enough: parsing a block that starts where a statement starts succeeds only if it ends where
a statement ends (an open string, bracket or line continuation at its end is a syntax error), so every
block that parses ends at a true boundary, and the next one starts at one.

Every walk over a syntax tree here and in the rules is iterative: a submission may nest an expression
thousands deep, and a recursive walk would raise RecursionError.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections import Counter, OrderedDict
from dataclasses import dataclass
from functools import lru_cache

SECTION_MARKER = "# >>> "  # our trainer embeds each file under a line `# >>> speedrun/trainer/<file>.py`
TRAINER_SECTION = SECTION_MARKER + "speedrun/trainer/"
MAX_SOURCE_CHARS = 1024 * 1024  # the largest source of the upstream history is 139 KB; parsing 1 MiB takes ~0.7 s
MAX_SOURCE_STATEMENTS = 20_000  # ... and 171 top-level statements
# Upstream scripts from 2026 append their Triton kernels file after a banner:
# `----------------------------------------` / `# triton_kernels.py` / `----------------------------------------`.
_FILE_BANNER = re.compile(r"^-{40}\n# [^\n]{1,200}\n-{40}$", re.MULTILINE)
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


@dataclass(frozen=True)
class SourceStructure:
    """A source read as Python: its top-level statements, or why it is not Python.

    `blocks` are the statements that parse (each on its own); when `problem` is set they may leave parts of
    the source out, so nothing read from them can be confirmed for the whole.
    """

    blocks: tuple[Block, ...]
    problem: str | None = None  # e.g. "line 12: invalid syntax"; None when the whole source parses
    problem_line: int = 0  # the 1-based source line of the problem (0: none, or the whole source)


def is_sectioned(source: str) -> bool:
    """Whether a source has our trainer's shape: its files, each under a `# >>> speedrun/trainer/...` line,
    from the first line on. Only the log's parser decides whether the log is really ours (it also needs the
    trainer's `config:` line): anything else is one script, and a `# >>>` line in it is a comment."""
    return source.startswith(TRAINER_SECTION)


def sections(source: str) -> dict[str, tuple[int, str]]:
    """Our trainer's embedded files: path -> (1-based first line of its text, text). Empty for other sources.

    Call it only for a log the parser recognised as our trainer's (`RunLog.sectioned`).
    """
    if not is_sectioned(source):
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
    return _split_blocks(source, first_line)


def _split_blocks(source: str, first_line: int, limit: int | None = None) -> tuple[Block, ...]:
    """`top_level_blocks`, uncached; with `limit`, it stops once it has more blocks than that."""
    blocks: list[Block] = []
    start, number = 0, first_line
    at, at_number = 0, first_line  # the last statement line seen, to count lines from
    only_decorators = source.startswith("@")
    for match in _STATEMENT_LINE.finditer(source):
        position = match.end()
        if _CONTINUATION.match(source, position):
            continue  # `)` closing a multi-line decorator or call, `else:`: the statement goes on
        if only_decorators:
            only_decorators = source.startswith("@", position)  # another decorator, or the decorated definition
            continue
        at_number += source.count("\n", at, position)
        at = position
        blocks.append(Block(number, source[start : position - 1]))
        start, number = position, at_number
        only_decorators = source.startswith("@", position)
        if limit is not None and len(blocks) > limit:
            return tuple(blocks)
    blocks.append(Block(number, source[start:]))
    # Every block but the first starts with a code line; the first may hold only blank lines and comments.
    if not _has_code(blocks[0].text):
        del blocks[0]
    return tuple(blocks)


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.split("\n"))


@lru_cache(maxsize=256)
def source_structure(source: str) -> SourceStructure:
    """The source's top-level statements, each checked to parse; or the reason it is not Python as a whole.

    A source that is not Python as it stands may still be the upstream multi-file shape (a script, a banner,
    the kernels file): then each file must parse on its own. Cached: the runs of a record share a source.
    """
    return check_source(source)


def check_source(source: str) -> SourceStructure:
    """`source_structure`, uncached: for texts tried once, such as where a log's source might end."""
    if len(source) > MAX_SOURCE_CHARS:
        return SourceStructure((), f"{len(source):,} characters, over the {MAX_SOURCE_CHARS:,} the judge reads")
    if not _FILE_BANNER.search(source):
        return _statements(source, 1)
    files = _files_structure(source)
    if files.problem is None:
        return files
    whole = _statements(source, 1)  # a banner inside a string: then the whole may still parse
    return whole if whole.problem is None else files


def _files_structure(source: str) -> SourceStructure:
    """The upstream multi-file shape: each file between banners must parse on its own."""
    blocks: list[Block] = []
    start, line = 0, 1
    for banner in [*_FILE_BANNER.finditer(source), None]:
        end = banner.start() if banner else len(source)
        part = _statements(source[start:end], line)
        if part.problem is not None:
            return SourceStructure(tuple(blocks) + part.blocks, part.problem, part.problem_line)
        blocks.extend(part.blocks)
        if banner is not None:
            line += source.count("\n", start, banner.end()) + 1
            start = banner.end() + 1
    return SourceStructure(tuple(blocks))


def _statements(text: str, first_line: int) -> SourceStructure:
    starts = len(_STATEMENT_LINE.findall(text)) + 1  # counted before any block is made: a cheap refusal
    if starts > MAX_SOURCE_STATEMENTS:
        return SourceStructure((), f"{starts:,} unindented lines, over the {MAX_SOURCE_STATEMENTS:,} statements read")
    blocks = _split_blocks(text, first_line)
    statements: list[Block] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if _parse_error(block.text) is None:
            statements.append(block)
            i += 1
            continue
        # A block that does not parse on its own either ends inside a string or bracket that the next
        # blocks close (the split went wrong: merge them until the whole parses), or holds an error.
        merged = _merge_until_parsed(blocks, i)
        if merged is None:
            line, why = _parse_error("\n".join(b.text for b in blocks[i:])) or _parse_error(block.text) or (1, "")
            line += block.first_line - 1
            readable = statements + [b for b in blocks[i + 1 :] if _parse_error(b.text) is None]
            return SourceStructure(tuple(readable), f"line {line}: {why}", line)
        statements.append(Block(block.first_line, merged[1]))
        i = merged[0]
    return SourceStructure(tuple(statements))


MAX_MERGED_BLOCKS = 64  # a string holding unindented lines spans a few blocks; past this, parse the rest at once


def _merge_until_parsed(blocks: tuple[Block, ...], i: int) -> tuple[int, str] | None:
    """(index after the last block merged, merged text) for blocks from `i` on that parse together.

    Two, then four, eight... blocks, then all the rest at once: a string spanning statements costs a few
    parses, and an error (or a source cut inside a string) no more than about twice the text after it.
    Any run of blocks that parses ends where a statement ends, so a coarser block is as good as the fewest.
    """
    count = 2
    while count < MAX_MERGED_BLOCKS and i + count < len(blocks):
        text = "\n".join(b.text for b in blocks[i : i + count])
        if _parse_error(text) is None:
            return i + count, text
        count *= 2
    rest = "\n".join(b.text for b in blocks[i:])
    return (len(blocks), rest) if _parse_error(rest) is None else None


def first_error_line(text: str) -> int | None:
    """The 1-based line of the first syntax error in `text` (None if it parses): where a text that starts with
    a source and runs on into what the program printed stops being Python. Uncached, tree not kept."""
    try:
        _parse(text)
    except SyntaxError as e:
        return e.lineno or 1
    except (RecursionError, MemoryError, ValueError, OverflowError):
        return 1
    return None


@lru_cache(maxsize=16384)
def _parse_error(text: str) -> tuple[int, str] | None:
    """(1-based line, reason) when the text is not Python, else None. Cached by text: blocks recur.
    The tree is kept a while (`block_tree`): the statements the rules read are parsed once, here."""
    try:
        _keep(text, _parse(text))
    except SyntaxError as e:  # IndentationError and TabError included
        return e.lineno or 1, f"{e.msg} (not valid Python)"
    except (RecursionError, MemoryError):
        return 1, "nested too deeply to parse"
    except (ValueError, OverflowError) as e:
        return 1, f"cannot be parsed ({e})"
    return None


def _parse(text: str) -> ast.Module:
    """`ast.parse`, silent: a submission's `"\\s"` would otherwise print a warning (or, with -W error, raise one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text)


def parse_block(block: Block) -> ast.Module | None:
    """The block's syntax tree with line numbers shifted to the source's coordinates, or None if it does not parse."""
    try:
        tree = _parse(block.text)
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return None
    if block.first_line != 1:
        ast.increment_lineno(tree, block.first_line - 1)  # ast.walk: iterative
    return tree


MAX_KEPT_TREES = 512  # the statements of a few sources: the rules read a record's right after parsing its logs
_TREES: OrderedDict[str, ast.Module] = OrderedDict()


def block_tree(text: str) -> ast.Module | None:
    """A statement's syntax tree, shared by the readers that walk it (compiler flags, data facts), from the
    parse that checked it when that was recent. Callers must not change it."""
    tree = _TREES.get(text)
    if tree is not None:
        _TREES.move_to_end(text)
        return tree
    tree = parse_block(Block(1, text))
    if tree is not None:
        _keep(text, tree)
    return tree


def _keep(text: str, tree: ast.Module) -> None:
    _TREES[text] = tree
    if len(_TREES) > MAX_KEPT_TREES:
        _TREES.popitem(last=False)


def parse_source(source: str, first_line: int = 1) -> ast.Module | None:
    """The whole source's syntax tree (line numbers shifted by first_line - 1), or None if it does not parse."""
    return parse_block(Block(first_line, source))


def _is_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def code_difference(a: str, b: str) -> tuple[Block, Block | None] | None:
    """Where two sources differ as code, or None when they are the same program written differently.

    Comments, docstrings, layout and the annotations of arguments and return values do not count. Each source
    is split into its top-level statements, those with the same text are set aside, and only the others are
    parsed and compared, in order: the runs of a record mostly differ in a line or two, so this costs a few
    parses, not two whole scripts'. The result is the first statement of `a` that differs from its counterpart
    in `b`, or, when one source has statements left over, the first of those with None.
    """
    if a == b:
        return None
    blocks_a, blocks_b = top_level_blocks(a), top_level_blocks(b)
    only_a, only_b = _unshared(blocks_a, blocks_b), _unshared(blocks_b, blocks_a)
    # The statements left are compared in place, the first pair that differs ending the search: versions of a
    # script edit statements where they stand, and most differ at once, so this parses two statements, not all.
    for block_a, block_b in zip(only_a, only_b, strict=False):
        if _code_dump(block_a.text) != _code_dump(block_b.text):
            return block_a, block_b
    if len(only_a) > len(only_b):
        return only_a[len(only_b)], None
    if len(only_b) > len(only_a):
        return only_b[len(only_a)], None
    return None


def _unshared(blocks: tuple[Block, ...], others: tuple[Block, ...]) -> list[Block]:
    """The statements of `blocks` whose text `others` does not hold (as many times), in order."""
    texts = Counter(block.text for block in others)
    left = []
    for block in blocks:
        if texts[block.text]:
            texts[block.text] -= 1
        else:
            left.append(block)
    return left


@lru_cache(maxsize=4096)
def _code_dump(text: str) -> str:
    """A statement's code without its comments, docstrings, layout or annotations; its text when it does not parse."""
    tree = block_tree(text)
    return text if tree is None else _stable_dump(tree, skip_annotations=True)


def normalised_dump(tree: ast.AST) -> str:
    """A layout-free text form of a syntax tree: no positions, no docstrings, comments already gone.

    Not `ast.dump`, whose output changes between Python versions (3.12 adds `type_params`, 3.13 leaves
    empty fields out): a hash of it would make the same log pass under one interpreter and fail under
    another. Here empty and None fields are always left out, and so is `ctx`, which the syntax implies.
    The tree is left as it is (docstrings are skipped as it is written out), so a shared one may be dumped.
    """
    return _stable_dump(tree)


def _stable_dump(root: object, skip_annotations: bool = False) -> str:
    """`Name(field=value, ...)` text of a tree, built with an explicit stack (deep trees must not recurse).

    The stack holds text to emit as is (a value is written with `repr` as it is pushed, so every string on the
    stack is text) or a node or list still to expand. With `skip_annotations`, the annotations of arguments and
    the return annotations of functions are left out.
    """
    parts: list[str] = []
    emit = parts.append
    stack: list[object] = [_pushed(root)]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        if type(item) is str:
            emit(item)
        elif isinstance(item, ast.AST):
            pending: list[object] = [f"{type(item).__name__}("]
            separator = ""
            for name in _field_names(type(item), skip_annotations):
                value = _dumped_value(item, name)
                if value is None or (isinstance(value, list) and not value):
                    continue
                pending += (f"{separator}{name}=", _pushed(value))
                separator = ", "
            pending.append(")")
            pending.reverse()
            extend(pending)
        else:  # a list
            pending = ["]"]
            for i in range(len(item) - 1, -1, -1):  # type: ignore[arg-type]
                pending.append(_pushed(item[i]))  # type: ignore[index]
                if i:
                    pending.append(", ")
            pending.append("[")
            extend(pending)
    return "".join(parts)


def _pushed(value: object) -> object:
    """A node or list as it is, to be expanded; any other value as its text."""
    return value if isinstance(value, (ast.AST, list)) else repr(value)


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
# Annotations that change nothing a program computes: of arguments, and of what functions return. (A class
# body's `x: int = 1` is an assignment too, and a dataclass field: it stays.)
_ANNOTATIONS: dict[type, tuple[str, ...]] = {
    ast.arg: ("annotation",),
    ast.FunctionDef: ("returns",),
    ast.AsyncFunctionDef: ("returns",),
}


@lru_cache(maxsize=256)  # one entry per node type and flag
def _field_names(kind: type, skip_annotations: bool) -> tuple[str, ...]:
    """The fields of a node type that are written out: not `ctx`, which the syntax implies, nor `type_comment`,
    nor, with `skip_annotations`, annotations."""
    skipped = ("ctx", "type_comment", *(_ANNOTATIONS.get(kind, ()) if skip_annotations else ()))
    return tuple(name for name in kind._fields if name not in skipped)


def _dumped_value(node: ast.AST, name: str) -> object:
    """A field's value as it is written out: docstrings left out, and the empty parts 3.12 adds to format specs.
    None or an empty list are not written."""
    value = getattr(node, name, None)
    if name == "body" and isinstance(node, _DOCUMENTED) and _is_docstring(value):  # type: ignore[arg-type]
        return value[1:] or [ast.Pass()]  # type: ignore[index]
    if name == "values" and isinstance(node, ast.JoinedStr):
        return [v for v in value if not (isinstance(v, ast.Constant) and v.value == "")]  # type: ignore[union-attr]
    return value
