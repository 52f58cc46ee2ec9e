"""A hash of a run's data pipeline, computed from the source embedded in its log.

Rule 1 of the speedrun: the train and validation token streams must not change. The judge checks it by
hashing what decides those streams, read from the syntax tree (positions, comments and docstrings left
out, so reformatting does not count as a change). A hash printed in the log is never trusted.

- Our trainer's logs embed `speedrun/trainer/data.py` as a section: the whole section is hashed.
- Upstream logs embed one training script. Its hash covers the top-level data-loading definitions, and the
  facts around them that decide which tokens are read, each in source order:
  - the data files: every assignment to a train/val file setting (`train_files`, `input_val_bin`, ...),
    as the file-name patterns it names (`fineweb_val_*.bin`; a folder is where the data lies, not which
    data it is), or as the expression it computes when it names none;
  - the validation size: every assignment to `val_tokens`, and to names computed from it (`val_steps`);
  - every assignment to a data-loading name outside its definition (a loader replaced after it);
  - the loaders made (`train_loader = distributed_data_generator(args.train_files, ...)`: the target, the
    definition called, and the files it is given), and every place a loader is advanced (`next`, `.send`,
    `.next_batch`, a loop over it) within the loops and branches around it: a batch skipped or drawn
    twice in the loop changes the hash.
"""

from __future__ import annotations

import ast
import hashlib
import re
from bisect import bisect_left
from collections.abc import Iterator
from functools import lru_cache

from speedrun.judge.embedded import (
    block_tree,
    normalised_dump,
    parse_source,
    sections,
    source_structure,
)

TRAINER_DATA_SECTION = "speedrun/trainer/data.py"
# The 2026-05 recipe's batches of whole documents: which tokens a step trains on, so pinned too
TRAINER_DOCUMENTS_SECTION = "speedrun/trainer/documents.py"

# The top-level definitions that load and serve tokens in the upstream training scripts, across
# every era of the archive (plain loader, generator, BOS-aligned batching, async preloading).
UPSTREAM_DATA_DEFINITIONS = frozenset(
    {
        "_peek_data_shard",
        "_load_data_shard",
        "DistributedDataLoader",
        "distributed_data_generator",
        "BOSFinder",
        "DataPreloader",
        "Shard",
        "find_batch_starts",
    }
)
# Settings naming the token files: `input_bin`, `input_val_bin`, `train_files`, `val_files`, `train_bin`, ...
DATA_FILE_SETTING = re.compile(r"^(?:input_)?(?:train|val)_?(?:files|bins?)$|^input_bin$")
VAL_TOKENS = "val_tokens"
MAX_FACTS = 1_000  # a record has a dozen: past this, the hash says so and stops reading
# How a loader is advanced: `next(loader)`, `loader.send(...)`, `loader.next_batch()`, `loader.reset()`.
ADVANCING_METHODS = frozenset({"send", "next_batch", "reset", "__next__"})
# The words, whole words only: their start is checked apart (`_word_character`), as a pattern that began with `\b`
# would be tried at every character, where one that begins with the words skips to the letters they start with.
_FACT_WORDS = re.compile(
    r"(?:(?:input_)?(?:train|val)_?(?:files|bins?)|input_bin|val_tokens|"
    + "|".join(sorted(UPSTREAM_DATA_DEFINITIONS))
    + r")\b"
)
# Literal parts of those words: a statement holding none of them (most of a script) is passed over at the speed
# of `str.find`, without the regex, which tries every position.
_FACT_LITERALS = (
    *(f"{part}{sep}{kind}" for part in ("train", "val") for sep in ("_", "") for kind in ("files", "bin")),
    "input_bin",
    "val_tokens",
    *UPSTREAM_DATA_DEFINITIONS,
)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_hash(source: str) -> str | None:
    """Hash of a whole Python file's syntax tree (our trainer's data.py); None if it does not parse."""
    tree = parse_source(source)
    return None if tree is None else _sha256(normalised_dump(tree))


def data_pipeline_hash(source: str, sectioned: bool | None = None) -> str | None:
    """The data-pipeline hash of an embedded training source, or None when it holds no data-loading code.

    `sectioned`: whether the log is our trainer's (`RunLog.sectioned`), whose data pipeline is its
    `speedrun/trainer/data.py` section. None decides from the source's shape alone (for callers without
    the log); a log's own flag is the stronger evidence.
    """
    return _pipeline_hash(source, _is_sectioned(source, sectioned))


@lru_cache(maxsize=512)
def _pipeline_hash(source: str, sectioned: bool) -> str | None:
    if sectioned:
        data = sections(source).get(TRAINER_DATA_SECTION)
        return None if data is None else source_hash(data[1])
    parts = _upstream_parts(source)
    return None if parts is None else _sha256("\n".join(parts))


def data_pipeline_facts(source: str) -> tuple[str, ...] | None:
    """The facts an upstream source's hash covers, one line each (for the tests and for explaining a change)."""
    parts = _upstream_parts(source)
    return None if parts is None else tuple(parts[len(_definition_dumps(source) or ()) :])


def _upstream_parts(source: str) -> list[str] | None:
    dumps = _definition_dumps(source)
    if dumps is None:
        return None
    return [*dumps, *_facts(source)]


def _is_sectioned(source: str, sectioned: bool | None) -> bool:
    return bool(sections(source)) if sectioned is None else sectioned


def _definition_dumps(source: str) -> list[str] | None:
    dumps: list[str] = []
    for block in source_structure(source).blocks:
        name = block.defines
        if name not in UPSTREAM_DATA_DEFINITIONS:
            continue
        dump = _definition_dump(block.text, name)
        if dump is None:
            return _whole_source_dumps(source)
        dumps.append(dump)
    return dumps or None


@lru_cache(maxsize=4096)
def _definition_dump(text: str, name: str) -> str | None:
    # Records copy their loader from one another, so the same block text recurs across the archive, at
    # other lines: keyed by the text alone, each distinct definition is dumped once.
    tree = block_tree(text)
    if tree is None:
        return None
    return "\n".join(normalised_dump(node) for node in tree.body if getattr(node, "name", None) == name)


def _whole_source_dumps(source: str) -> list[str] | None:
    tree = parse_source(source)
    if tree is None:
        return None
    dumps = [normalised_dump(node) for node in tree.body if getattr(node, "name", None) in UPSTREAM_DATA_DEFINITIONS]
    return dumps or None


# --- the facts around the definitions --------------------------------------------------------------------------


def _facts(source: str) -> list[str]:
    """The data facts of a whole source, in source order. Only statements that name a data definition, a file
    setting, `val_tokens` or a loader made from a definition are parsed, and in them only the lines that name
    one are walked to."""
    blocks = source_structure(source).blocks
    loaders: set[str] = set()
    for block in blocks:
        loaders.update(_loaders_made(block.text))
    names = tuple(sorted(loaders))
    facts: list[str] = []
    for block in blocks:
        facts.extend(_block_facts(block.text, names))
        if len(facts) > MAX_FACTS:
            return [*facts[:MAX_FACTS], f"more than {MAX_FACTS:,} facts: not read further"]
    return facts


@lru_cache(maxsize=16384)
def _word_lines(text: str, names: tuple[str, ...]) -> tuple[int, ...]:
    """The 1-based lines of a statement that name a data definition, a file setting, `val_tokens`, or one
    of `names` (loaders): the only lines whose nodes the walks below visit."""
    offsets = []
    if any(literal in text for literal in _FACT_LITERALS):
        offsets = [m.start() for m in _FACT_WORDS.finditer(text) if not _word_character(text, m.start() - 1)]
    for name in names:
        at = text.find(name)
        while at >= 0:
            if not _word_character(text, at - 1) and not _word_character(text, at + len(name)):
                offsets.append(at)
            at = text.find(name, at + 1)
    if not offsets:
        return ()
    newlines = [m.start() for m in re.finditer("\n", text)]
    return tuple(sorted({bisect_left(newlines, offset) + 1 for offset in offsets}))


def _word_character(text: str, at: int) -> bool:
    """Whether text[at] is a character of a word, as a regex word character (False outside the text)."""
    return 0 <= at < len(text) and (text[at].isalnum() or text[at] == "_")


@lru_cache(maxsize=4096)
def _loaders_made(text: str) -> frozenset[str]:
    """Names assigned a call of a data-loading definition: `train_loader = distributed_data_generator(...)`."""
    lines = _word_lines(text, ())
    tree = block_tree(text) if lines else None
    if tree is None:
        return frozenset()
    made = set()
    for node in _nodes(tree, lines):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _called_definition(node.value) is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            made.update(name for target in targets if (name := _last_name(target)) is not None)
    return frozenset(made)


@lru_cache(maxsize=4096)
def _block_facts(text: str, loaders: tuple[str, ...]) -> tuple[str, ...]:
    lines = _word_lines(text, loaders)
    tree = block_tree(text) if lines else None
    return () if tree is None else tuple(_FactWalker(set(loaders), lines).walk(tree))


class _FactWalker:
    """Walks a statement with an explicit stack, keeping the loops and branches around each node."""

    def __init__(self, loaders: set[str], lines: tuple[int, ...]) -> None:
        self.loaders = loaders
        self.lines = lines
        self.facts: list[tuple[int, int, str]] = []  # (line, column, fact): sorted into source order at the end

    def walk(self, tree: ast.AST) -> list[str]:
        stack: list[tuple[ast.AST, tuple[str, ...], str | None]] = [(tree, (), None)]
        while stack:
            node, around, definition = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in UPSTREAM_DATA_DEFINITIONS and not around:
                    continue  # hashed whole, as a definition
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self._assignment(node, around)
            elif isinstance(node, ast.Call):
                self._advance(node, around)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                self._loop_over(node, around)
            stack.extend(
                (child, _inside(node, child, around), definition)
                for child in ast.iter_child_nodes(node)
                if _spans(child, self.lines)
            )
        return [fact for _, _, fact in sorted(self.facts)]

    def _add(self, node: ast.AST, fact: str) -> None:
        self.facts.append((getattr(node, "lineno", 0), getattr(node, "col_offset", 0), fact))

    def _assignment(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign, around: tuple[str, ...]) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        for target in targets:
            name = _last_name(target)
            if name is None or value is None:
                continue
            where = " > ".join(around)
            if DATA_FILE_SETTING.match(name):
                patterns = _file_patterns(value)
                shown = ",".join(patterns) if patterns else normalised_dump(value)
                self._add(node, f"files {name} = {shown}")
            elif name in UPSTREAM_DATA_DEFINITIONS:
                self._add(node, f"rebinds {name} = {normalised_dump(value)} [{where}]")
            elif name == VAL_TOKENS or _reads(value, {VAL_TOKENS}):
                self._add(node, f"val size {name} = {_shape(value)}")
            elif (called := _called_definition(value)) is not None:
                first = value.args[0] if isinstance(value, ast.Call) and value.args else None
                files = normalised_dump(first) if first is not None else "-"
                self._add(node, f"loader {name} = {called}({files}) [{where}]")
            elif name in self.loaders:
                self._add(node, f"loader {name} = {normalised_dump(value)} [{where}]")

    def _advance(self, node: ast.Call, around: tuple[str, ...]) -> None:
        function = node.func
        loader = None
        if isinstance(function, ast.Name) and function.id == "next" and node.args:
            loader, how = _last_name(node.args[0]), "next"
        elif isinstance(function, ast.Attribute) and function.attr in ADVANCING_METHODS:
            loader, how = _last_name(function.value), function.attr
        if loader in self.loaders:
            self._add(node, f"advances {loader} by {how} [{' > '.join(around)}]")

    def _loop_over(self, node: ast.For | ast.AsyncFor | ast.comprehension, around: tuple[str, ...]) -> None:
        loader = _last_name(node.iter)
        if loader in self.loaders:
            self._add(node if not isinstance(node, ast.comprehension) else node.iter, f"iterates {loader}")


def _inside(node: ast.AST, child: ast.AST, around: tuple[str, ...]) -> tuple[str, ...]:
    """The loops and branches around `child`: a loop's body is inside it, a branch's body and else-part are
    inside it; the loop's own header is not. Only their kinds: what a loop runs over is named differently
    from record to record (`range(train_steps + 1)`, `range(args.num_iterations + 1)`)."""
    if isinstance(node, (ast.For, ast.AsyncFor)) and child is not node.iter and child is not node.target:
        return (*around, "for")
    if isinstance(node, ast.While) and child is not node.test:
        return (*around, "while")
    if isinstance(node, ast.If) and child is not node.test:
        return (*around, "if " + ("else" if child in node.orelse else "then"))
    if isinstance(node, ast.Try):
        return (*around, "try")
    return around


_NAME = re.compile(r"Name\(id='[^']*'\)")


def _shape(node: ast.AST) -> str:
    """A layout-free dump with local names left out: `val_tokens // (seq_len * world_size)` and the same over
    `ddp_world_size` agree; constants, operators and attributes (`args.val_tokens`) still count."""
    return _NAME.sub("Name()", normalised_dump(node))


def _nodes(tree: ast.AST, lines: tuple[int, ...] | None = None) -> Iterator[ast.AST]:
    """Every node of a tree (iteratively); with `lines`, only those whose lines hold one of them."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if lines is None or _spans(c, lines))


def _spans(node: ast.AST, lines: tuple[int, ...]) -> bool:
    """Whether a node's lines include one of `lines` (sorted). Nodes without lines (operators) always do."""
    first = getattr(node, "lineno", None)
    if first is None:
        return True
    at = bisect_left(lines, first)
    return at < len(lines) and lines[at] <= (node.end_lineno or first)


def _last_name(node: ast.AST | None) -> str | None:
    """`x` for `x`, `args.x`, `self.args.x`; else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _called_definition(value: ast.AST | None) -> str | None:
    if isinstance(value, ast.Call):
        name = _last_name(value.func)
        if name in UPSTREAM_DATA_DEFINITIONS:
            return name
    return None


def _reads(value: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, (ast.Name, ast.Attribute)) and _last_name(n) in names for n in _nodes(value))


def _file_patterns(value: ast.AST) -> list[str]:
    """The file names a setting's value spells: `"data/fineweb10B/fineweb_val_*.bin"` -> `fineweb_val_*.bin`."""
    found = []
    for node in _nodes(value):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip():
            found.append(node.value.replace("\\", "/").rsplit("/", 1)[-1])
    return [name for name in found if name]


def data_pipeline_line(source: str, sectioned: bool | None = None) -> int:
    """The 1-based line of the source where its data-loading code starts (0 when there is none), to cite."""
    if _is_sectioned(source, sectioned):
        data = sections(source).get(TRAINER_DATA_SECTION)
        return data[0] if data else 0
    blocks = source_structure(source).blocks
    return next((b.first_line for b in blocks if b.defines in UPSTREAM_DATA_DEFINITIONS), 0)


def is_trainer_source(source: str | None, sectioned: bool | None = None) -> bool:
    """Whether an embedded source comes from our own trainer (sectioned by file)."""
    return source is not None and _is_sectioned(source, sectioned) and bool(sections(source))
