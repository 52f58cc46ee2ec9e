"""Find what a training source does to the compiler: settings it makes, and code that could make one unseen.

Read with `ast`, never run. Every finding carries its source line and one of three kinds, which the rule
maps to a status:

- `setting`: an explicit compiler setting (a `torch._inductor.config` write, a `torch.compile` option, a
  `TORCHINDUCTOR_*` environment variable). The rules forbid them, except those the track allows.
- `allowed`: such a setting that the track allows (`coordinate_descent_tuning` on the medium track).
- `unconfirmed`: code that may change the compiled code in a way the judge cannot read: a computed name
  (`exec`, `eval`, `importlib`, `getattr(torch, name)`, `sys.modules[name]`), the compiler's config handed
  around as a value, a write to the compiler's internals or to a `torch._dynamo.config` setting that
  changes compiled code, or a source that is not Python as a whole. Nothing here is proof of a setting,
  and nothing here can be confirmed clean.

Names are followed through aliases: imports (`import torch._inductor.config as c`, `from torch import
compile as c`), assignments (`cfg = torch._inductor.config`, `c = torch.compile`, `p = functools.partial(
torch.compile, ...)`), literal lookups (`getattr(torch, "_inductor")`, `importlib.import_module("...")`,
`sys.modules["..."]`, `vars(x)["..."]`, `x.__dict__.update(...)`). A module-level alias counts everywhere
(whatever the order: a function may run after a later assignment), a function's own names shadow it.

Only the top-level statements that mention a compiler word, or an alias of one, are parsed and walked
(see `embedded.source_structure`); walks are iterative, so no nesting can exhaust the stack.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from speedrun.judge.embedded import Block, block_tree, parse_block, source_structure

SETTING = "setting"
ALLOWED = "allowed"
UNCONFIRMED = "unconfirmed"

INDUCTOR_CONFIG = "torch._inductor.config"
DYNAMO_CONFIG = "torch._dynamo.config"
# Keyword arguments of torch.compile that shape the graph rather than tune the compiler.
STRUCTURAL_COMPILE_ARGUMENTS = frozenset({"dynamic", "fullgraph"})
# `torch._dynamo.config` settings that only bound how often dynamo recompiles or what it logs: they change no
# compiled code. The records set `recompile_limit` (and, before PyTorch 2.7 renamed it, `cache_size_limit`)
# so that a schedule of window sizes or batch sizes does not fall back to eager after 8 recompiles; the
# cost of hitting the limit is slower, uncompiled code, never faster code. Every other dynamo setting
# (`compiled_autograd`, `optimize_ddp`, `capture_scalar_outputs`, `assume_static_by_default`, ...) decides
# what is traced and compiled: the judge cannot confirm those leave the compiled code as the rules intend.
BENIGN_DYNAMO_CONFIG = frozenset(
    {
        "cache_size_limit",
        "recompile_limit",
        "accumulated_cache_size_limit",
        "accumulated_recompile_limit",
        "verbose",
        "log_level",
    }
)
# Environment variables the compiler reads. TORCHINDUCTOR_<NAME> sets inductor's config <name>; the other two
# families switch dynamo and torch.compile behaviour. Where compiled artifacts are stored changes nothing.
COMPILER_ENVIRONMENT = ("TORCHINDUCTOR", "TORCHDYNAMO", "TORCH_COMPILE")
BENIGN_ENVIRONMENT = frozenset({"TORCHINDUCTOR_CACHE_DIR"})
MAX_EXEC_DEPTH = 3  # exec("exec('...')") is followed this deep, then it is unconfirmed
MAX_READ_STATEMENTS = 1_000  # statements naming the compiler that are read (a record has a few dozen)

# Words without which a statement cannot reach the compiler (or an alias of it, added per source). Most of a
# training script has none, and is neither parsed nor walked. Left out as no trigger: plain
# `torch.compile(x, dynamic=..., fullgraph=...)` calls and bare `@torch.compile` decorators (removed first),
# `x.eval()` and `x.modules()` methods, `eval` in prose (`to eval on`), and reads `os.environ["NAME"]`,
# `os.environ.get(...)`: a compiler variable set from a literal name is caught by the name itself.
# Each pattern starts with its word, so that `re` scans for it as fast as `str.find`; a lookbehind after the
# word checks what precedes it.
_TRIGGER_WORDS = (
    "_inductor",
    "_dynamo",
    "putenv",
    "importlib",
    "__import__",
    "__dict__",
    "TORCHINDUCTOR",
    "TORCHDYNAMO",
    "TORCH_COMPILE",
)
_TRIGGER_PATTERNS = {
    word: re.compile(pattern)
    for word, pattern in {
        "compile": r"compile(?<![\w]compile)(?!\w)",
        "torch": r"torch(?<![\w.]torch)(?![\w.]|\s+\.)",
        "sys": r"sys(?<![\w.]sys)(?![\w.]|\s+\.)|sys\s*\.\s*modules",
        "modules": r"modules(?<![\w.]modules)(?!\w)",
        "exec": r"exec(?<![\w.]exec)(?!\w|\s+[a-z])",
        "eval": r"eval(?<![\w.]eval)(?!\w|\s+[a-z])",
        "vars": r"vars(?<![\w.]vars)(?!\w)",
        "partial": r"partial(?<!\wpartial)(?!\w)",
        "environ": r"environ(?<!\wenviron)(?!\w)(?!\s*\.\s*get\s*\()"
        r"""(?!\s*\[\s*(?:"[^"\n]*"|'[^'\n]*')\s*\](?!\s*=(?!=)))""",
    }.items()
}
_PLAIN_COMPILE = re.compile(
    r"torch\.compile(?:(?<=@torch\.compile)(?<![^\n \t]@torch\.compile)[ \t]*$|\(\s*(?:\w+\s*(?:,\s*|(?=\))))?"
    r"(?:(?:dynamic|fullgraph)\s*=\s*(?:True|False|None)\s*(?:,\s*|(?=\))))*\))",
    re.MULTILINE,
)
_LOCAL = "<local>"  # what a name a function binds for itself stands for: never a compiler object


@dataclass(frozen=True)
class CompileFlag:
    """One finding, with the 1-based source line it is on."""

    name: str  # e.g. "coordinate_descent_tuning", "mode=reduce-overhead", "TORCHINDUCTOR_MAX_AUTOTUNE"
    line: int
    how: str  # "inductor config", "torch.compile", "environment", "dynamo config", "exec", ...
    kind: str = SETTING  # SETTING, ALLOWED or UNCONFIRMED


@lru_cache(maxsize=512)
def find_compile_flags(source: str, allowed: frozenset[str] = frozenset()) -> tuple[CompileFlag, ...]:
    """Every finding in the source, in source order (lines are 1-based lines of `source`).

    `allowed` names the settings the track allows (inductor config names, as `torch.compile(options=...)`
    and `TORCHINDUCTOR_<NAME>` also spell them): those come back as ALLOWED rather than SETTING.
    """
    structure = source_structure(source)
    findings: list[CompileFlag] = []
    if structure.problem is not None:
        findings.append(CompileFlag(structure.problem, structure.problem_line, "unparseable source", UNCONFIRMED))
    blocks = [b for b in structure.blocks if _triggers(b.text)]
    if len(blocks) > MAX_READ_STATEMENTS:
        first = blocks[MAX_READ_STATEMENTS].first_line
        what = f"{len(blocks):,} statements name the compiler, more than the {MAX_READ_STATEMENTS:,} read"
        findings.append(CompileFlag(what, first, "too much to read", UNCONFIRMED))
        blocks = blocks[:MAX_READ_STATEMENTS]
    env = _module_aliases(structure.blocks, blocks)
    words = _alias_words(env)
    triggered = {id(b) for b in blocks}
    for block in structure.blocks:
        if id(block) in triggered or (words and _mentions(block.text, words)):
            shift = block.first_line - 1
            findings.extend(
                CompileFlag(f.name, f.line + shift, f.how, f.kind) for f in _block_findings(block.text, env)
            )
    return tuple(sorted((_allow(f, allowed) for f in findings), key=lambda f: (f.line, f.name)))


def whole_source_flags(source: str) -> tuple[CompileFlag, ...] | None:
    """The same search over one parse of the whole source, without the statement split (for the tests)."""
    tree = parse_block(Block(1, source))
    if tree is None:
        return None
    aliases = _Aliases()
    aliases.add(_bindings(tree))
    return tuple(sorted(_Walker(aliases.resolved(), source).walk(tree), key=lambda f: (f.line, f.name)))


def _allow(flag: CompileFlag, allowed: frozenset[str]) -> CompileFlag:
    if flag.kind != SETTING:
        return flag
    name = flag.name.removeprefix("TORCHINDUCTOR_").lower() if flag.how == "environment" else flag.name
    return CompileFlag(flag.name, flag.line, flag.how, ALLOWED) if name in allowed else flag


# --- aliases ---------------------------------------------------------------------------------------------------

Env = frozenset[tuple[str, str]]  # local name -> the dotted path it stands for (only names that differ)


def _module_aliases(all_blocks: Iterable[Block], blocks: list[Block]) -> Env:
    """The module-level aliases of the whole source, to a fixed point: an alias found in one block may make
    another block (one that names only the alias) worth reading, and may resolve another alias."""
    words: tuple[str, ...] = ()
    while True:
        aliases = _Aliases()
        for block in all_blocks if words else blocks:
            if not words or block in blocks or _mentions(block.text, words):
                aliases.add(_block_bindings(block.text, words))
        env = aliases.resolved()
        if _alias_words(env) == words:
            return env
        words = _alias_words(env)


def _alias_words(env: Env) -> tuple[str, ...]:
    return tuple(sorted(name for name, _ in env))


@lru_cache(maxsize=16384)
def _triggers(text: str) -> bool:
    """Whether a statement mentions a word that may reach the compiler. Cached: statements recur across records."""
    if any(word in text for word in _TRIGGER_WORDS):
        return True
    if "compile" in text:
        text = _PLAIN_COMPILE.sub("", text)
    return any(word in text and pattern.search(text) for word, pattern in _TRIGGER_PATTERNS.items())


@lru_cache(maxsize=4096)
def _trigger_lines(text: str, words: tuple[str, ...]) -> tuple[int, ...]:
    """The 1-based lines of a statement holding a trigger word or one of `words` (aliases), sorted: the walk
    visits only the nodes on them (and the nodes around those)."""
    if "compile" in text:  # blank out plain compile calls, keeping every offset and line in place
        text = _PLAIN_COMPILE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    offsets = [m.start() for word in _TRIGGER_WORDS if word in text for m in re.finditer(re.escape(word), text)]
    for word, pattern in _TRIGGER_PATTERNS.items():
        if word in text:
            offsets.extend(m.start() for m in pattern.finditer(text))
    if words and any(word in text for word in words):
        offsets.extend(m.start() for m in re.finditer(r"\b(?:" + "|".join(words) + r")\b", text))
    if not offsets:
        return ()
    newlines = [m.start() for m in re.finditer("\n", text)]
    return tuple(sorted({bisect_left(newlines, offset) + 1 for offset in offsets}))


def _spans(node: ast.AST, lines: tuple[int, ...]) -> bool:
    """Whether a node's lines (with its decorators) include one of `lines`. Nodes without lines always do."""
    first = getattr(node, "lineno", None)
    if first is None:
        return True
    for decorator in getattr(node, "decorator_list", ()):
        first = min(first, decorator.lineno)
    at = bisect_left(lines, first)
    return at < len(lines) and lines[at] <= (getattr(node, "end_lineno", None) or first)


@lru_cache(maxsize=16384)
def _mentions(text: str, words: tuple[str, ...]) -> bool:
    """Whether a statement names one of the words (aliases) as a whole word."""
    return any(word in text for word in words) and re.search(r"\b(?:" + "|".join(words) + r")\b", text) is not None


class _Aliases:
    """Bindings (name, value expression) gathered from many blocks, resolved together to a fixed point."""

    def __init__(self) -> None:
        self.bindings: list[tuple[str, ast.expr]] = []

    def add(self, bindings: Iterable[tuple[str, ast.expr]]) -> None:
        self.bindings.extend(bindings)

    def resolved(self, base: dict[str, str] | None = None) -> Env:
        """The aliases, over those of an enclosing scope (`base`)."""
        env = dict(base or {})
        for _ in range(8):  # `a = torch; b = a._inductor; c = b.config`: each round resolves one more link
            before = dict(env)
            for name, value in self.bindings:
                target = _resolve(value, env)
                if target is not None and target != name and _is_compiler_path(target):
                    env[name] = target
            if env == before:
                break
        return frozenset(env.items())


@lru_cache(maxsize=4096)
def _block_bindings(text: str, words: tuple[str, ...]) -> tuple[tuple[str, ast.expr], ...]:
    """The module-level bindings of a statement that may be aliases: on its lines that hold a trigger word or
    one of `words` (an alias can only be made from a compiler word or another alias)."""
    lines = _trigger_lines(text, words)
    tree = block_tree(text) if lines else None
    return () if tree is None else tuple(_bindings(tree, lines))


def _bindings(scope: ast.AST, lines: tuple[int, ...] | None = None) -> list[tuple[str, ast.expr]]:
    """(name, value) for every name bound in `scope` itself (not in nested functions or classes): imports,
    assignments, walrus. An import `import a.b.c` binds `a` to `a`; `import a.b as x` binds `x` to `a.b`."""
    return _scope_names(scope, lines)[1]


def _scope_names(scope: ast.AST, lines: tuple[int, ...] | None = None) -> tuple[set[str], list[tuple[str, ast.expr]]]:
    """The names a scope binds for itself (for a function: its parameters too, less `global` ones), and the
    (name, value) bindings among them that may be aliases. One pass over the scope's own nodes; with `lines`,
    over those on them only (enough to find how the aliases, whose names are on those lines, are bound)."""
    names: set[str] = set()
    bindings: list[tuple[str, ast.expr]] = []
    declared_global: set[str] = set()
    arguments = getattr(scope, "args", None)
    if isinstance(arguments, ast.arguments):
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
        names.update(a.arg for a in every if a is not None)
    for node in _scope_nodes(scope, lines):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                names.add(node.id)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
                if alias.asname:
                    bindings.append((alias.asname, _dotted_expr(alias.name)))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                names.add(alias.asname or alias.name)
                if node.module and not node.level and alias.name != "*":
                    bindings.append((alias.asname or alias.name, _dotted_expr(f"{node.module}.{alias.name}")))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                bindings.extend(_pairs(target, node.value))
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            bindings.extend(_pairs(node.target, node.value))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
    return names - declared_global, bindings


def _pairs(target: ast.expr, value: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    if isinstance(target, ast.Name):
        yield target.id, value
    elif (
        isinstance(target, (ast.Tuple, ast.List))
        and isinstance(value, (ast.Tuple, ast.List))
        and len(target.elts) == len(value.elts)
    ):
        for t, v in zip(target.elts, value.elts, strict=True):
            yield from _pairs(t, v)


def _dotted_expr(dotted: str) -> ast.expr:
    node: ast.expr = ast.Name(dotted.split(".")[0])
    for part in dotted.split(".")[1:]:
        node = ast.Attribute(node, part)
    return node


def _scope_nodes(scope: ast.AST, lines: tuple[int, ...] | None = None) -> Iterator[ast.AST]:
    """Every node of a scope's own code: nested function and class bodies are other scopes (their decorators,
    defaults and base classes run in this one). With `lines`, only nodes on (or around) them."""
    stack: list[ast.AST] = list(_scope_body(scope))
    while stack:
        node = stack.pop()
        if lines is not None and not _spans(node, lines):
            continue
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend([*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d)])
        elif isinstance(node, ast.Lambda):
            stack.extend([*node.args.defaults, *(d for d in node.args.kw_defaults if d)])
        elif isinstance(node, ast.ClassDef):
            stack.extend([*node.decorator_list, *node.bases, *node.keywords])
        else:
            stack.extend(ast.iter_child_nodes(node))


def _scope_body(scope: ast.AST) -> list[ast.AST]:
    if isinstance(scope, ast.Lambda):
        return [scope.body]
    return list(getattr(scope, "body", []))


# --- resolving names -------------------------------------------------------------------------------------------


def _is_compiler_path(dotted: str) -> bool:
    """Paths worth following as aliases: torch itself and its compiler, the environment, module tables, and the
    builtins that reach them by name."""
    return dotted in _ALIASED_NAMES or dotted.startswith(_ALIASED_PREFIXES)


_ALIASED_PREFIXES = (
    "torch.compile",
    "torch._inductor",
    "torch._dynamo",
    "os.environ",
    "os.putenv",
    "sys.modules",
    "importlib",
    "functools.partial",
)
_ALIASED_NAMES = frozenset(
    {"torch", "os", "sys", "functools", "exec", "eval", "compile", "getattr", "setattr", "delattr", "vars"}
    | {"__import__"}
)


def _simple(node: ast.AST, env: dict[str, str]) -> str | None:
    """A dotted name through aliases, for a chain of attributes on a name only: `cfg.max_autotune`."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([env.get(node.id, node.id), *reversed(parts)])


def _resolve(node: ast.AST, env: dict[str, str]) -> str | None:
    """The dotted path an expression stands for, through aliases and literal lookups, or None.

    `getattr(torch, "_inductor").config` -> `torch._inductor.config`; `sys.modules["a.b"]` -> `a.b`;
    `importlib.import_module("a.b")` -> `a.b`; `vars(x)["k"]` and `x.__dict__["k"]` -> `x.k`. Iterative.
    """
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            if node.attr != "__dict__":
                parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            base = env.get(node.id, node.id)
            break
        elif isinstance(node, ast.Call):
            function = _simple(node.func, env)
            literal = _literal_str(node.args[1] if len(node.args) > 1 else None)
            first = _literal_str(node.args[0] if node.args else None)
            if function == "getattr" and literal is not None and len(node.args) == 2:
                parts.append(literal)
                node = node.args[0]
            elif function == "vars" and len(node.args) == 1:
                node = node.args[0]
            elif function in ("importlib.import_module", "sys.modules.get") and first is not None:
                base = first
                break
            elif function == "__import__" and first is not None:
                fromlist = len(node.args) > 3 or any(k.arg == "fromlist" for k in node.keywords)
                base = first if fromlist else first.split(".")[0]
                break
            elif function == "functools.partial" and node.args and _simple(node.args[0], env) == "torch.compile":
                base = "torch.compile"
                break
            else:
                return None
        elif isinstance(node, ast.Subscript):
            key = _literal_str(node.slice)
            container = _simple(node.value, env)
            if key is None:
                return None
            if container == "sys.modules":
                base = key
                break
            if container is not None and container.endswith(".__dict__"):
                parts.append(key)
                node = node.value.value  # type: ignore[attr-defined]
            elif isinstance(node.value, ast.Call) and _simple(node.value.func, env) == "vars" and node.value.args:
                parts.append(key)
                node = node.value.args[0]
            else:
                return None
        else:
            return None
    return ".".join([base, *reversed(parts)])


def _literal_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _shown(node: ast.AST | None) -> str:
    """A short text for a value in a finding: a constant as is, a name, else `...` (never ast.unparse: it
    recurses, and a submission may nest an expression thousands deep)."""
    if isinstance(node, ast.Constant):
        return str(node.value)[:60]
    if isinstance(node, ast.Name):
        return node.id
    return "..."


# --- the walk --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _block_findings(text: str, env: Env) -> tuple[CompileFlag, ...]:
    """The findings of one top-level statement (lines counted from its first), given the module's aliases.
    Records copy most statements from the record before: keyed by text, each is walked once."""
    tree = block_tree(text)
    return () if tree is None else tuple(_Walker(env, text).walk(tree))


class _Walker:
    """Walks one tree with an explicit stack, following scopes, and yields its findings.

    Only nodes on lines that hold a trigger word or an alias (and the nodes around them) are visited: most
    methods of a model class that mentions `config` (an alias in some records) never touch the compiler.
    """

    def __init__(self, env: Env, text: str, depth: int = 0) -> None:
        self.module_env = dict(env)
        self.text = text
        self.lines = _trigger_lines(text, _alias_words(env))
        self.depth = depth
        self.findings: list[CompileFlag] = []

    def walk(self, tree: ast.AST) -> list[CompileFlag]:
        # (node, env): env is the aliases in force in the node's scope
        self.stack: list[tuple[ast.AST, dict[str, str]]] = [(tree, self.module_env)]
        while self.stack:
            node, env = self.stack.pop()
            if _spans(node, self.lines):
                self._visit(node, env)
        return self.findings

    # --- dispatch

    def _visit(self, node: ast.AST, env: dict[str, str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self._function(node, env)
        elif isinstance(node, ast.ClassDef):
            self._push([*node.bases, *node.keywords, *node.body], env)
            self._decorators(node.decorator_list, env)
        elif isinstance(node, ast.Assign):
            self._assign(node.targets, node.value, env, node.lineno)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            if node.value is not None:
                self._assign([node.target], node.value, env, node.lineno, augmented=isinstance(node, ast.AugAssign))
            else:
                self._push([node.annotation], env)
        elif isinstance(node, ast.NamedExpr):
            self._assign([node.target], node.value, env, node.lineno)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self._write(target, None, env, node.lineno, "deletes")
        elif isinstance(node, ast.Call):
            self._call(node, env)
        elif isinstance(node, (ast.Attribute, ast.Name, ast.Subscript)):
            context = getattr(node, "ctx", None)
            if isinstance(context, ast.Load):
                self._reference(node, env)
            elif not isinstance(node, ast.Name):
                self._write(node, None, env, node.lineno, "assigns")  # a loop or `with` target
        elif isinstance(node, ast.Expr) and _literal_str(node.value) is not None:
            pass  # a docstring or a bare string: no effect
        elif isinstance(node, ast.Constant):
            self._constant(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            pass  # bindings are in `env`; an import alone changes no setting
        else:
            self._push(ast.iter_child_nodes(node), env)

    def _push(self, nodes: Iterable[ast.AST], env: dict[str, str]) -> None:
        self.stack.extend((n, env) for n in nodes)

    def _flag(self, name: str, line: int, how: str, kind: str = SETTING) -> None:
        self.findings.append(CompileFlag(name, line, how, kind))

    def _unconfirmed(self, what: str, line: int, how: str) -> None:
        self._flag(what, line, how, UNCONFIRMED)

    # --- scopes

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, env: dict[str, str]) -> None:
        arguments = node.args
        self._push([*arguments.defaults, *(d for d in arguments.kw_defaults if d)], env)
        if not isinstance(node, ast.Lambda):
            self._decorators(node.decorator_list, env)
            self._push(
                [a.annotation for a in (*arguments.args, *arguments.kwonlyargs) if a.annotation is not None], env
            )
        names, bindings = _scope_names(node, self.lines)
        local = dict(env)
        local.update((name, _LOCAL) for name in names)
        aliases = _Aliases()
        aliases.add(bindings)
        inner = dict(aliases.resolved(local))
        new = tuple(sorted(name for name, target in inner.items() if target != _LOCAL and env.get(name) != target))
        if new:  # a function's own aliases: the lines naming them are worth visiting too
            self.lines = tuple(sorted({*self.lines, *_trigger_lines(self.text, new)}))
        self._push(_scope_body(node), inner)

    def _decorators(self, decorators: list[ast.expr], env: dict[str, str]) -> None:
        for decorator in decorators:
            if _simple(decorator, env) == "torch.compile":
                continue  # a bare @torch.compile sets nothing
            self.stack.append((decorator, env))

    # --- references

    def _reference(self, node: ast.Attribute | ast.Name | ast.Subscript, env: dict[str, str]) -> None:
        """A name, attribute or subscript read as a value: a compiler object used so escapes the judge's view."""
        target = _resolve(node, env)
        if target is None:
            self._push(ast.iter_child_nodes(node), env)
            return
        if _escapes(target):
            self._unconfirmed(f"uses {target} as a value", node.lineno, "reference")
        elif isinstance(node, ast.Subscript):
            self.stack.append((node.slice, env))

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and value.startswith(COMPILER_ENVIRONMENT) and value not in BENIGN_ENVIRONMENT:
            self._unconfirmed(f"names {node.value[:60]}", node.lineno, "environment")

    # --- writes

    def _assign(
        self, targets: list[ast.expr], value: ast.expr, env: dict[str, str], line: int, augmented: bool = False
    ) -> None:
        aliasing = all(_is_alias_target(t) for t in targets) and not augmented
        if aliasing and _is_compiler_path(_resolve(value, env) or ""):
            if isinstance(value, ast.Call) and _resolve(value.func, env) == "functools.partial":
                self.stack.append((value, env))  # the partial's own options
            return  # an alias: followed through `env`, not a use
        for target in targets:
            if augmented and _resolve(target, env) == "os.environ":
                self._environment_mapping(value, line, env)  # os.environ |= {...}
                return
            self._write(target, value, env, line, "assigns")
        self.stack.append((value, env))

    def _write(self, target: ast.expr, value: ast.expr | None, env: dict[str, str], line: int, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._write(element, None, env, line, verb)
            return
        if isinstance(target, ast.Starred):
            self._write(target.value, None, env, line, verb)
            return
        if isinstance(target, ast.Name):
            return
        if isinstance(target, ast.Subscript):
            self._subscript_write(target, env, line, verb)
            return
        resolved = _resolve(target, env) if isinstance(target, ast.Attribute) else None
        if resolved is None:
            self._push(ast.iter_child_nodes(target), env)
            return
        self._setting(resolved, line, verb)

    def _setting(self, path: str, line: int, verb: str) -> None:
        """A write to `path` (an attribute of some module or object)."""
        if path.startswith(INDUCTOR_CONFIG + "."):
            self._flag(path[len(INDUCTOR_CONFIG) + 1 :], line, "inductor config")
        elif path.startswith(DYNAMO_CONFIG + "."):
            name = path[len(DYNAMO_CONFIG) + 1 :]
            if name.split(".")[0] not in BENIGN_DYNAMO_CONFIG:
                self._unconfirmed(name, line, "dynamo config")
        elif path.startswith(("torch._inductor", "torch._dynamo", "torch.compile")) or path in (
            "torch._inductor",
            "torch._dynamo",
        ):
            self._unconfirmed(f"{verb} {path}", line, "compiler internals")
        elif path.startswith(("sys.modules", "importlib")):
            self._unconfirmed(f"{verb} {path}", line, "dynamic access")

    def _subscript_write(self, target: ast.Subscript, env: dict[str, str], line: int, verb: str) -> None:
        container = _resolve(target.value, env)
        key = _literal_str(target.slice)
        if container == "os.environ":
            if key is None:
                self._unconfirmed("an environment variable with a computed name", line, "environment")
            else:
                self._environment(key, line)
            return
        namespace = _namespace_of(target.value, env)
        if namespace is not None and _is_compiler_path(namespace) and namespace != "os":
            if key is None:
                self._unconfirmed(f"{verb} an attribute of {namespace} with a computed name", line, "dynamic access")
            else:
                self._setting(f"{namespace}.{key}", line, verb)
            return
        if container == "sys.modules":
            self._unconfirmed(f"{verb} sys.modules[{key or '...'}]", line, "dynamic access")
            return
        self._push([target.value, target.slice], env)

    def _environment(self, name: str, line: int) -> None:
        if name.startswith(COMPILER_ENVIRONMENT) and name not in BENIGN_ENVIRONMENT:
            kind = SETTING if name.startswith("TORCHINDUCTOR_") else UNCONFIRMED
            self._flag(name, line, "environment", kind)

    def _environment_mapping(self, mapping: ast.expr | None, line: int, env: dict[str, str]) -> None:
        """`os.environ.update({...})`, `os.environ |= {...}`: each literal key; anything else is unconfirmed."""
        if isinstance(mapping, ast.Dict) and all(_literal_str(k) is not None for k in mapping.keys):
            for key in mapping.keys:
                self._environment(_literal_str(key) or "", line)
            self._push(mapping.values, env)
        else:
            self._unconfirmed("environment variables from a computed mapping", line, "environment")

    # --- calls

    def _call(self, node: ast.Call, env: dict[str, str]) -> None:
        function = _resolve(node.func, env)
        line = node.lineno
        args = node.args
        name = _literal_str(args[1]) if len(args) > 1 else None
        if function == "torch.compile":
            self._compile_options(node.keywords, line, env)
            self._push(args, env)
            if isinstance(node.func, ast.Call) and _resolve(node.func.func, env) == "functools.partial":
                self.stack.append((node.func, env))  # partial(torch.compile, mode=...)(model): its options too
        elif function == "functools.partial" and args and _resolve(args[0], env) == "torch.compile":
            self._compile_options(node.keywords, line, env)
            self._push(args[1:], env)
        elif function in (f"{INDUCTOR_CONFIG}.patch", f"{INDUCTOR_CONFIG}.update"):
            self._config_call(node, INDUCTOR_CONFIG, env)
        elif function in (f"{DYNAMO_CONFIG}.patch", f"{DYNAMO_CONFIG}.update"):
            self._config_call(node, DYNAMO_CONFIG, env)
        elif function in ("setattr", "delattr") and args:
            target = _resolve(args[0], env)
            if target is not None and _is_torch(target):
                if name is None:
                    self._unconfirmed(f"{function} on {target} with a computed name", line, "dynamic access")
                else:
                    self._setting(f"{target}.{name}", line, f"{function}s")
            self._push(args[1:] if target is not None else args, env)
        elif function in ("getattr", "hasattr") and args:
            target = _resolve(args[0], env)
            if target is not None and _is_torch(target) and name is None:
                self._unconfirmed(f"{function} on {target} with a computed name", line, "dynamic access")
            value = _resolve(node, env) if function == "getattr" else None
            if value is not None and _escapes(value):
                self._unconfirmed(f"uses {value} as a value", line, "reference")
            self._push(args[2:] if target is not None else args, env)
        elif function in ("exec", "eval", "compile"):
            self._exec(node, function, env)
        elif function in ("importlib.import_module", "__import__", "sys.modules.get"):
            value = _resolve(node, env)
            if value is None:
                self._unconfirmed(f"{function} of a computed name", line, "dynamic access")
            elif _escapes(value):
                self._unconfirmed(f"uses {value} as a value", line, "reference")
            self._push(args[1:], env)
        elif function == "os.putenv" and args:
            key = _literal_str(args[0])
            if key is None:
                self._unconfirmed("an environment variable with a computed name", line, "environment")
            else:
                self._environment(key, line)
            self._push(args[1:], env)
        elif function in ("os.environ.update", "os.environ.setdefault", "os.environ.__setitem__"):
            self._environment_call(node, function, env)
        elif self._namespace_update(node, env):
            pass
        elif function is not None and _is_compiler_call(function):
            self._unconfirmed(f"calls {function}", line, "compiler internals")
            self._push([*args, *node.keywords], env)
        else:
            if function is None or not isinstance(node.func, (ast.Name, ast.Attribute)):
                self.stack.append((node.func, env))
            elif isinstance(node.func, ast.Attribute):
                self._method_base(node.func, env)
            self._push([*args, *node.keywords], env)

    def _method_base(self, function: ast.Attribute, env: dict[str, str]) -> None:
        """`x.method(...)`: the object the method is called on is used, not handed around; look inside it."""
        base = function.value
        while isinstance(base, ast.Attribute):
            base = base.value
        if not isinstance(base, ast.Name):
            self.stack.append((base, env))

    def _compile_options(self, keywords: list[ast.keyword], line: int, env: dict[str, str]) -> None:
        for keyword in keywords:
            self.stack.append((keyword.value, env))
            if keyword.arg in STRUCTURAL_COMPILE_ARGUMENTS:
                continue
            if keyword.arg is None:
                self._unconfirmed("torch.compile options from **", line, "torch.compile")
            elif keyword.arg == "options" and isinstance(keyword.value, ast.Dict):
                for key in keyword.value.keys:
                    shown = _literal_str(key)
                    if shown is None:
                        self._unconfirmed("options from a computed key", line, "torch.compile")
                    else:
                        self._flag(shown, line, "torch.compile")
            elif keyword.arg == "backend" and _literal_str(keyword.value) == "inductor":
                continue
            else:
                self._flag(f"{keyword.arg}={_shown(keyword.value)}", line, "torch.compile")

    def _config_call(self, node: ast.Call, config: str, env: dict[str, str]) -> None:
        """`config.patch(name=value)`, `config.patch({"name": value})`, `config.patch("name", value)`."""
        line = node.lineno
        names: list[str] = []
        for keyword in node.keywords:
            if keyword.arg is None:
                self._unconfirmed(f"{config}.patch(**...)", line, "dynamic access")
            else:
                names.append(keyword.arg)
        for argument in node.args[:1]:
            if isinstance(argument, ast.Dict) and all(_literal_str(k) is not None for k in argument.keys):
                names.extend(_literal_str(k) or "" for k in argument.keys)
            elif _literal_str(argument) is not None:
                names.append(_literal_str(argument) or "")
            else:
                self._unconfirmed(f"{config} settings from a computed value", line, "dynamic access")
        for setting in names:
            self._setting(f"{config}.{setting}", line, "sets")
        self._push([*node.args, *(k.value for k in node.keywords)], env)

    def _environment_call(self, node: ast.Call, function: str, env: dict[str, str]) -> None:
        line = node.lineno
        if function.endswith(".update"):
            if node.args:
                self._environment_mapping(node.args[0], line, env)
            for keyword in node.keywords:
                if keyword.arg is None:
                    self._unconfirmed("environment variables from **", line, "environment")
                else:
                    self._environment(keyword.arg, line)
                self.stack.append((keyword.value, env))
            return
        key = _literal_str(node.args[0]) if node.args else None
        if key is None:
            self._unconfirmed("an environment variable with a computed name", line, "environment")
        else:
            self._environment(key, line)
        self._push(node.args[1:], env)

    def _namespace_update(self, node: ast.Call, env: dict[str, str]) -> bool:
        """`vars(x).update({...})`, `x.__dict__.update(...)`, `.setdefault`, `.__setitem__` on a compiler object."""
        function = node.func
        if not isinstance(function, ast.Attribute) or function.attr not in ("update", "setdefault", "__setitem__"):
            return False
        namespace = _namespace_of(function.value, env)
        if namespace is None or not _is_torch(namespace):
            return False
        line = node.lineno
        mapping = node.args[0] if node.args else None
        if function.attr == "update" and isinstance(mapping, ast.Dict):
            keys = [_literal_str(k) for k in mapping.keys]
        elif function.attr != "update" and _literal_str(mapping) is not None:
            keys = [_literal_str(mapping)]
        else:
            keys = [None]
        keys += [k.arg for k in node.keywords]
        for key in keys:
            if key is None:
                self._unconfirmed(f"updates {namespace} from a computed mapping", line, "dynamic access")
            else:
                self._setting(f"{namespace}.{key}", line, "updates")
        self._push([*node.args, *(k.value for k in node.keywords)], env)
        return True

    def _exec(self, node: ast.Call, function: str, env: dict[str, str]) -> None:
        """exec/eval/compile of a literal string: its code is read like the rest; of anything else, unconfirmed."""
        line = node.lineno
        code = _literal_str(node.args[0]) if node.args else None
        tree = None
        if code is not None and self.depth < MAX_EXEC_DEPTH:
            tree = parse_block(Block(1, code))
        if tree is None:
            self._unconfirmed(f"{function} of code the judge cannot read", line, function)
            self._push(node.args, env)
            return
        inner = _Walker(frozenset(env.items()), code or "", self.depth + 1)
        for finding in inner.walk(tree):
            self._flag(finding.name, line, finding.how, finding.kind)


def _is_alias_target(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) or (
        isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in target.elts)
    )


def _namespace_of(node: ast.expr, env: dict[str, str]) -> str | None:
    """`x` for `vars(x)` or `x.__dict__`, resolved; else None."""
    if isinstance(node, ast.Attribute) and node.attr == "__dict__":
        return _resolve(node.value, env)
    if isinstance(node, ast.Call) and _simple(node.func, env) == "vars" and len(node.args) == 1:
        return _resolve(node.args[0], env)
    return None


def _is_torch(path: str) -> bool:
    return path == "torch" or path.startswith("torch.")


def _escapes(path: str) -> bool:
    """Whether using `path` as a plain value (passing it, storing it) lets code the judge cannot follow reach the
    compiler: torch itself, its compiler modules and their config, torch.compile, the module table."""
    if path in ("torch", "torch._inductor", "torch._dynamo", INDUCTOR_CONFIG, DYNAMO_CONFIG, "torch.compile"):
        return True
    if path in ("sys.modules", "importlib"):
        return True
    return path.startswith("torch._inductor.") and not path.startswith(INDUCTOR_CONFIG + ".")


def _is_compiler_call(function: str) -> bool:
    """Calls into the compiler beyond its public entry point and the settings handled above."""
    if function.startswith(INDUCTOR_CONFIG + "."):
        return True  # load_config, ...: settings the judge cannot read
    if function.startswith("torch._inductor"):
        return True
    if function.startswith(DYNAMO_CONFIG + "."):
        return True
    return function.startswith("importlib.") or function.startswith("sys.modules.")
