"""Find the compiler flags a training source sets: `torch._inductor.config` writes and `torch.compile` options.

Read with `ast`, so comments and strings never count, and aliases are followed
(`import torch._inductor.config as config; config.coordinate_descent_tuning = True`).
Only the top-level blocks that mention the compiler are parsed: see `embedded.top_level_blocks`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache

from speedrun.judge.embedded import Block, parse_block, parse_source, sections, top_level_blocks

INDUCTOR_CONFIG = "torch._inductor.config"
# Keyword arguments of torch.compile that shape the graph rather than tune the compiler.
STRUCTURAL_COMPILE_ARGUMENTS = frozenset({"dynamic", "fullgraph"})


@dataclass(frozen=True)
class CompileFlag:
    """One compiler setting found in the source, with the 1-based source line that sets it."""

    name: str  # e.g. "coordinate_descent_tuning", "mode=reduce-overhead", "max_autotune"
    line: int
    how: str  # "inductor config" or "torch.compile"


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _FlagFinder(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases  # local name -> the dotted module path it stands for
        self.flags: list[CompileFlag] = []

    def resolve(self, node: ast.AST) -> str | None:
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        full = self.aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for alias in node.names:
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _config_target(self, target: ast.AST, line: int) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._config_target(element, line)
            return
        full = self.resolve(target) if isinstance(target, ast.Attribute) else None
        if full and full.startswith(INDUCTOR_CONFIG + "."):
            self.flags.append(CompileFlag(full[len(INDUCTOR_CONFIG) + 1 :], line, "inductor config"))

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._config_target(target, node.lineno)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._config_target(node.target, node.lineno)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._config_target(node.target, node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = self.resolve(node.func)
        if function == "torch.compile":
            for keyword in node.keywords:
                if keyword.arg in STRUCTURAL_COMPILE_ARGUMENTS:
                    continue
                if keyword.arg == "options" and isinstance(keyword.value, ast.Dict):
                    for key in keyword.value.keys:
                        name = key.value if isinstance(key, ast.Constant) else ast.unparse(key) if key else "**"
                        self.flags.append(CompileFlag(str(name), node.lineno, "torch.compile"))
                elif keyword.arg == "backend" and _constant(keyword.value) == "inductor":
                    continue
                else:
                    value = _constant(keyword.value)
                    shown = f"{keyword.arg}={value}" if value is not None else f"{keyword.arg or '**'}=..."
                    self.flags.append(CompileFlag(shown, node.lineno, "torch.compile"))
        elif function in (f"{INDUCTOR_CONFIG}.patch", f"{INDUCTOR_CONFIG}.update"):
            for keyword in node.keywords:
                self.flags.append(CompileFlag(keyword.arg or "**", node.lineno, "inductor config"))
            for argument in node.args:
                if isinstance(argument, ast.Dict):
                    for key in argument.keys:
                        name = _constant(key) if key is not None else "**"
                        self.flags.append(CompileFlag(str(name), node.lineno, "inductor config"))
                elif _constant(argument) is not None:
                    self.flags.append(CompileFlag(str(_constant(argument)), node.lineno, "inductor config"))
        elif function == "setattr" and len(node.args) >= 2 and self.resolve(node.args[0]) == INDUCTOR_CONFIG:
            name = _constant(node.args[1])
            self.flags.append(CompileFlag(str(name) if name is not None else "?", node.lineno, "inductor config"))
        self.generic_visit(node)


def _constant(node: ast.AST | None) -> object | None:
    return node.value if isinstance(node, ast.Constant) else None


# `torch.compile(x, dynamic=False, fullgraph=True)` and the bare decorator set no flag: skipping blocks whose
# only compiler mentions look like this spares parsing most of a training script.
_PLAIN_COMPILE = re.compile(
    r"torch\.compile(?:\((?:\s*\w+\s*,)?(?:\s*(?:dynamic|fullgraph)\s*=\s*(?:True|False|None)\s*,?)*\s*\)|(?![\w(]))"
)


def _is_compiler(module: str) -> bool:
    return module == "torch" or module.startswith(("torch._inductor", "torch.compile"))


@lru_cache(maxsize=512)
def find_compile_flags(source: str) -> tuple[CompileFlag, ...]:
    """Every compiler flag the source sets, in source order (lines are 1-based lines of `source`)."""
    parts = list(sections(source).values()) or [(1, source)]
    flags: list[CompileFlag] = []
    for start, text in parts:
        aliases: _Aliases = frozenset()
        blocks = top_level_blocks(text, start)
        imports = [b for b in blocks if b.text.startswith(("import ", "from "))]
        for block in imports:
            aliases = _visit_block(block, aliases, flags)
        # Names bound to torch's compiler: a block that mentions none of them sets no flag.
        watched = ("compile", "inductor", "setattr", *(k for k, v in aliases if _is_compiler(v)))
        for block in blocks:
            if block.text.startswith(("import ", "from ")) or not any(
                word in _PLAIN_COMPILE.sub("", block.text) for word in watched
            ):
                continue
            aliases = _visit_block(block, aliases, flags)
    return tuple(sorted(flags, key=lambda f: f.line))


_Aliases = frozenset[tuple[str, str]]  # local name -> the dotted module path it stands for


def _visit_block(block: Block, aliases: _Aliases, flags: list[CompileFlag]) -> _Aliases:
    """Add the flags one block sets to `flags` (at the block's lines); return the aliases known after it."""
    found = _block_flags(block.text, aliases)
    if found is None:  # a block that is not Python (a file separator, a banner) sets nothing
        return aliases
    block_flags, aliases = found
    shift = block.first_line - 1
    flags.extend(CompileFlag(f.name, f.line + shift, f.how) for f in block_flags)
    return aliases


@lru_cache(maxsize=8192)
def _block_flags(text: str, aliases: _Aliases) -> tuple[tuple[CompileFlag, ...], _Aliases] | None:
    """The flags a block sets (lines counted from the block's first) and the aliases after it; None if it does
    not parse. Records copy most of their code from the record before, so most blocks recur across the
    archive at other lines: keyed by text, each is parsed once."""
    tree = parse_block(Block(1, text))
    if tree is None:
        return None
    finder = _FlagFinder(dict(aliases))
    finder.visit(tree)
    return tuple(finder.flags), frozenset(finder.aliases.items())


def whole_source_flags(source: str) -> tuple[CompileFlag, ...] | None:
    """The same search over one full parse of the source: None when it does not parse (used by the tests)."""
    tree = parse_source(source)
    if tree is None:
        return None
    finder = _FlagFinder({})
    finder.visit(tree)
    return tuple(sorted(finder.flags, key=lambda f: f.line))
