"""The kit's layers, read from the source with ``ast``: kit -> encode -> index -> train -> pipeline -> eval -> report
-> bench.

- a module imports only from its own layer or lower ones;
- every import of the kit's own packages sits at the top of its module (an ``if TYPE_CHECKING:`` block at the top
  level is allowed), never inside a function, a class body or a conditional, so a module's dependencies are what
  its first lines say;
- the import graph of the kit's own modules (``__main__`` modules included) has no cycle.

Edges: ``import a.b`` and ``from a.b import x`` depend on module ``a.b`` (the longest prefix that is a module of the
kit), ``from a import b`` on ``a.b`` when that is a module. Imports under ``if TYPE_CHECKING:`` never run, so they
count for the layers but not for cycles.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from kit.paths import REPO

LAYERS = ("kit", "encode", "index", "train", "pipeline", "eval", "report", "bench")


@dataclass(frozen=True)
class Import:
    """One import statement of a kit module that names one of the kit's own modules."""

    module: str         # the importing module
    path: str           # its file, relative to the repository
    line: int
    text: str           # the statement as written (ast.unparse)
    target: str         # the kit module it depends on
    top_level: bool     # a direct child of the module body
    type_checking: bool  # inside a top-level ``if TYPE_CHECKING:`` block

    def __str__(self) -> str:
        return f"{self.module} ({self.path}:{self.line}): {self.text}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def kit_sources(root: Path = REPO) -> dict[str, tuple[str, str]]:
    """``{module name: (path relative to root, source)}`` of every module of the kit's packages."""
    sources = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            sources[module_name(path, root)] = (str(path.relative_to(root)), path.read_text(encoding="utf-8"))
    return sources


def _is_type_checking(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest prefix of ``name`` that is a kit module (None outside the kit)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        found = (_resolve(alias.name, modules) for alias in node.names if alias.name.split(".")[0] in LAYERS)
        return sorted({t for t in found if t})
    base = node.module or ""
    if node.level:  # relative: from the importer's package, one level up per extra dot
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    if base.split(".")[0] not in LAYERS:
        return []
    found = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        found.add(submodule if submodule in modules else _resolve(base, modules))
    return sorted(t for t in found if t)


def _is_lazy_import(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy_import"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def kit_imports(sources: dict[str, tuple[str, str]]) -> list[Import]:
    """Every import statement of the kit's modules that names a kit module, wherever it sits."""
    modules = set(sources)
    imports = []
    for module, (path, source) in sources.items():
        tree = ast.parse(source, filename=path)
        top = {id(node) for node in tree.body}
        type_checking = {id(node) for block in tree.body if _is_type_checking(block)
                         for stmt in block.body for node in ast.walk(stmt)}
        # ``name = lazy_import("x.y")`` (kit.lazy) at the top is an import of x.y, loaded on first use
        top_calls = {id(node) for stmt in tree.body if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr))
                     for node in ast.walk(stmt) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if _is_lazy_import(node):
                target = _resolve(node.args[0].value, modules)
                if target is not None and target != module:
                    imports.append(Import(module, path, node.lineno, ast.unparse(node), target, id(node) in top_calls,
                                          False))
                continue
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, module, path.endswith("__init__.py"), modules):
                if target != module:
                    imports.append(Import(module, path, node.lineno, ast.unparse(node), target, id(node) in top,
                                          id(node) in type_checking))
    return sorted(imports, key=lambda i: (i.path, i.line, i.target))


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def upward_imports(imports: list[Import]) -> list[str]:
    return [f"{i} -- {i.module.split('.')[0]} may not import {i.target} (layer {i.target.split('.')[0]} is above it)"
            for i in imports if layer(i.target) > layer(i.module)]


def hidden_imports(imports: list[Import]) -> list[str]:
    return [f"{i} -- not at the module's top level" for i in imports if not (i.top_level or i.type_checking)]


def import_cycles(imports: list[Import]) -> list[str]:
    """One line per cycle found (one per strongly connected component): the modules and the imports that close it."""
    edges: dict[str, dict[str, Import]] = {}
    for i in imports:
        if not i.type_checking:
            edges.setdefault(i.module, {}).setdefault(i.target, i)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components (the graph is a few hundred edges)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(edges):
        if v not in index:
            connect(v)
    cycles = []
    for component in components:
        start = min(component)
        path, seen = [start], {start}
        while True:  # walk inside the component until a module repeats: that closes a cycle
            nxt = min(w for w in edges[path[-1]] if w in component)
            if nxt in seen:
                loop = path[path.index(nxt):] + [nxt]
                break
            path.append(nxt)
            seen.add(nxt)
        steps = "; ".join(str(edges[a][b]) for a, b in zip(loop, loop[1:]))
        cycles.append(f"cycle {' -> '.join(loop)}: {steps}")
    return cycles


def _fail(problems: list[str], what: str) -> None:
    assert not problems, f"{len(problems)} {what}:\n" + "\n".join(problems)


# ---- the kit --------------------------------------------------------------------------------------------------------

def test_modules_are_found():
    sources = kit_sources()
    assert {"kit.errors", "kit.io", "encode.__main__", "index.__main__", "train.data", "train.losses",
            "train.losses.variants", "eval.reproduce", "bench.e2e"} <= set(sources)
    imports = kit_imports(sources)
    assert any(i.module == "kit.io" and i.target == "kit.errors" for i in imports)
    assert any(i.module == "index.__main__" and i.target == "index.anserini" for i in imports)


def test_no_module_imports_from_a_higher_layer():
    _fail(upward_imports(kit_imports(kit_sources())), "imports from a higher layer")


def test_kit_imports_are_at_the_top_of_each_module():
    _fail(hidden_imports(kit_imports(kit_sources())), "imports of the kit's own packages below the top level")


def test_the_import_graph_has_no_cycle():
    _fail(import_cycles(kit_imports(kit_sources())), "import cycles")


# ---- the checks themselves ------------------------------------------------------------------------------------------

FAKE = {
    "kit": ("kit/__init__.py", ""),
    "kit.a": ("kit/a.py", "from kit.b import x\n"),
    "kit.b": ("kit/b.py", "import kit.c\n"),
    "kit.c": ("kit/c.py", "from kit import a\n"),
    "encode": ("encode/__init__.py", ""),
    "encode.e": ("encode/e.py", "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n\n"
                                "from kit.b import y\n\nif TYPE_CHECKING:\n    from kit.c import z\n\n"
                                "def f():\n    from train.t import w\n\n"
                                "class C:\n    import kit.a\n\n"
                                "try:\n    from . import g\nexcept ImportError:\n    pass\n"),
    "encode.g": ("encode/g.py", "import numpy\n"),
    "train": ("train/__init__.py", ""),
    "train.t": ("train/t.py", "from encode.e import f\n\nif f:\n    from kit.a import x\n"),
}


def test_the_checks_name_each_offending_module_and_import():
    imports = kit_imports(FAKE)
    assert upward_imports(imports) == [
        "encode.e (encode/e.py:10): from train.t import w -- encode may not import train.t (layer train is above it)"]
    assert hidden_imports(imports) == [
        "encode.e (encode/e.py:10): from train.t import w -- not at the module's top level",
        "encode.e (encode/e.py:13): import kit.a -- not at the module's top level",
        "encode.e (encode/e.py:16): from . import g -- not at the module's top level",
        "train.t (train/t.py:4): from kit.a import x -- not at the module's top level"]
    cycles = import_cycles(imports)
    assert cycles[0] == ("cycle kit.a -> kit.b -> kit.c -> kit.a: kit.a (kit/a.py:1): from kit.b import x; "
                         "kit.b (kit/b.py:1): import kit.c; kit.c (kit/c.py:1): from kit import a")
    assert len(cycles) == 2 and cycles[1].startswith("cycle encode.e -> train.t -> encode.e: ")
    # a TYPE_CHECKING import never runs: it is allowed at the top and closes no cycle
    assert not any("kit.c import z" in line for line in hidden_imports(imports) + cycles)


def test_a_lazy_import_is_an_import_edge():
    """kit.lazy.lazy_import("x") at a module's top names a dependency like an import statement does: layers and cycles
    see it; inside a function it is a hidden import."""
    fake = {"kit": ("kit/__init__.py", ""), "kit.a": ("kit/a.py", 'm = lazy_import("train.t")\n'),
            "train": ("train/__init__.py", ""),
            "train.t": ("train/t.py", 'from kit.a import m\n\ndef f():\n    return lazy_import("kit.a")\n')}
    imports = kit_imports(fake)
    assert upward_imports(imports) == [
        "kit.a (kit/a.py:1): lazy_import('train.t') -- kit may not import train.t (layer train is above it)"]
    assert hidden_imports(imports) == ["train.t (train/t.py:4): lazy_import('kit.a') -- not at the module's top level"]
    assert import_cycles(imports)[0].startswith("cycle kit.a -> train.t -> kit.a")
    assert any(i.target == "train.trainer" and i.top_level for i in kit_imports(kit_sources()) if i.module == "train.cache")


def test_the_command_lines_import_without_torch():
    """Every command names its heavy dependencies (the trainer, the document encoder, the losses) at its top but loads
    them (and torch, transformers) only to train or encode: a command that fails on bad input, reads a recipe or prints
    --help answers in about a second, and the test suite, which runs the real command lines a hundred times, stays
    fast."""
    import subprocess
    import sys

    runners = ["report.compare", "eval.reproduce", "eval.ablation", "eval.study.__main__", "report.docs", "report.site",
               "train.__main__", "train.recipe", "train.conditions", "train.cache", "train.data", "encode.__main__",
               "index.__main__"]
    code = (f"import sys, {', '.join(runners)}\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules, 'train.trainer' in sys.modules)\n"
            "import train.recipe\ntrain.recipe.losses.SparseDistillLoss\n"
            "print('torch' in sys.modules, 'train.losses' in sys.modules, 'train.trainer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False", "True", "True", "False"]  # each loaded on its first use
