"""The house rules of the package layout, checked on the source (no imports are run).

Layers, bottom to top: models <- engine <- training <- export; ofx_bridge sits on engine;
cli (the `gsrender` command, one module per verb) sits on top of everything, and only cli
parses command lines: no module below it imports argparse (the library takes settings, the
verbs turn options into them). A package may import the
ones below it and nothing else, and no group of modules may import each other in a cycle.
Every import counts: at module level or inside a function (lazy), absolute or relative,
`importlib.import_module("...")` with a literal name, and a string constant that is exactly
the name of one of our modules (a dispatch table such as a verb -> module map is a lazy
import by another route). Imports under `if TYPE_CHECKING:` never run, so they count for
the layers but not for cycles.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "gsrender"
# which other top-level packages each package may import (cli: all of them)
ALLOWED: dict[str, frozenset[str]] = {
    "models": frozenset(),
    "engine": frozenset({"models"}),
    "training": frozenset({"engine", "models"}),
    "export": frozenset({"training", "engine", "models"}),
    "ofx_bridge": frozenset({"engine", "models"}),
    "cli": frozenset({"models", "engine", "training", "export", "ofx_bridge"}),
}


@dataclass(frozen=True)
class Edge:
    """One import of `target` (a module name) by `source`, where it is written."""

    source: str
    target: str
    where: str  # path:line
    kind: str  # "import" | "lazy import" | "TYPE_CHECKING import" | "import_module" | "string reference"

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.kind}, {self.where})"


@dataclass
class Report:
    """What the checker found in one source tree."""

    modules: dict[str, Path] = field(default_factory=dict)  # module name -> file
    edges: list[Edge] = field(default_factory=list)
    upward: list[Edge] = field(default_factory=list)
    cycles: list[list[Edge]] = field(default_factory=list)  # closed paths; every module of a cycle is on one

    def message(self) -> str:
        """A readable list of every problem, or '' when there is none."""
        lines = []
        if self.upward:
            lines.append(f"{len(self.upward)} import(s) against the layers (allowed: {_allowed_text()}):")
            lines += [f"  {e}" for e in self.upward]
        if self.cycles:
            lines.append(f"{len(self.cycles)} import cycle(s):")
            for cycle in self.cycles:
                lines.append("  " + " -> ".join([cycle[0].source, *(e.target for e in cycle)]))
                lines += [f"      {e}" for e in cycle]
        return "\n".join(lines)


def _allowed_text() -> str:
    return "; ".join(f"{p} <- {', '.join(sorted(a)) or 'nothing'}" for p, a in ALLOWED.items())


# --------------------------------------------------------------------------- reading the tree


def package_dirs(root: Path) -> dict[str, Path]:
    """`gsrender.<pkg>` -> folder, from pyproject.toml's [tool.setuptools] package-dir."""
    with open(root / "pyproject.toml", "rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {name: root / folder for name, folder in mapping.items() if name.startswith(NAMESPACE + ".")}


def find_modules(root: Path) -> dict[str, Path]:
    """Every .py file under the mapped folders, by module name (the most specific mapping wins)."""
    claimed: dict[Path, str] = {}
    for pkg, folder in sorted(package_dirs(root).items(), key=lambda kv: len(kv[0])):
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            claimed[path] = ".".join((pkg, *parts))
    return {name: path for path, name in claimed.items()}


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of `from <level dots><name> import ...` written in `module`."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module that importing `name` runs: itself, else its nearest existing parent."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


class _ImportVisitor(ast.NodeVisitor):
    """Collects the imports of one module with their kind (module level, lazy, TYPE_CHECKING)."""

    def __init__(self, module: str, path: Path, modules: dict[str, Path]) -> None:
        self.module, self.modules = module, modules
        self.is_package = _is_package(path)
        self.depth = 0  # inside functions
        self.type_checking = 0
        self.found: list[tuple[str, int, str]] = []  # (absolute target name, line, kind)

    def _kind(self) -> str:
        if self.type_checking:
            return "TYPE_CHECKING import"
        return "lazy import" if self.depth else "import"

    def _add(self, target: str, node: ast.AST, kind: str | None = None) -> None:
        self.found.append((target, getattr(node, "lineno", 0), kind or self._kind()))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        if not guarded:
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = (
            _resolve_relative(self.module, self.is_package, node.level, node.module)
            if node.level
            else node.module or ""
        )
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            # `from pkg import name`: the submodule when `name` is one, else the package itself
            self._add(sub if alias.name != "*" and sub in self.modules else base, node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        first = node.args[0] if node.args else None
        if (
            name in ("import_module", "__import__")
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
        ):
            self._add(first.value, node, "import_module")
            for child in [func, *node.args[1:], *node.keywords]:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value in self.modules and node.value != self.module:
            self._add(node.value, node, "string reference")


def _imports(module: str, path: Path, modules: dict[str, Path], root: Path) -> list[Edge]:
    visitor = _ImportVisitor(module, path, modules)
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    where = path.relative_to(root).as_posix()
    seen: set[tuple[str, int, str]] = set()
    edges = []
    for target, line, kind in visitor.found:
        if target != NAMESPACE and not target.startswith(NAMESPACE + "."):
            continue  # the standard library and third-party packages
        if (target, line, kind) in seen:
            continue
        seen.add((target, line, kind))
        edges.append(Edge(module, target, f"{where}:{line}", kind))
    return edges


# --------------------------------------------------------------------------- the two rules


def top_package(name: str) -> str:
    """`gsrender.engine.backends.x` -> `engine` (the layer a module belongs to)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_upward(edge: Edge) -> bool:
    """An import that leaves its package for one it may not depend on."""
    src, dst = top_package(edge.source), top_package(edge.target)
    return src != dst and dst not in ALLOWED.get(src, frozenset())


def find_cycles(edges: list[Edge]) -> list[list[Edge]]:
    """Closed import paths: Tarjan's algorithm finds the groups of modules that reach each other,
    then shortest cycles are added until every module of every group is on one."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges:
        if e.source != e.target:
            graph.setdefault(e.source, {}).setdefault(e.target, e)
            graph.setdefault(e.target, {})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def strongconnect(v: str) -> None:  # iterative, so deep graphs cannot hit the recursion limit
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles = []
    for group in sorted(groups):
        covered: set[str] = set()
        for start in group:
            if start not in covered:
                path = _cycle_path(graph, set(group), start)
                covered.update(e.source for e in path)
                cycles.append(path)
    return cycles


def _cycle_path(graph: dict[str, dict[str, Edge]], group: set[str], start: str) -> list[Edge]:
    """The shortest closed path from `start` back to itself inside one strongly connected group."""
    prev: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child, edge in sorted(graph[node].items()):
                if child not in group or child in prev:
                    continue
                prev[child] = edge
                if child == start:
                    path = [edge]
                    while path[0].source != start:
                        path.insert(0, prev[path[0].source])
                    return path
                nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group always has one


def check_tree(root: Path) -> Report:
    """Read every module of the tree at `root` and apply both rules."""
    report = Report(modules=find_modules(root))
    for module, path in sorted(report.modules.items()):
        report.edges += _imports(module, path, report.modules, root)
    report.upward = [e for e in report.edges if is_upward(e)]
    runtime = []
    for e in report.edges:
        owner = _owner(e.target, report.modules)
        if owner is not None and e.kind != "TYPE_CHECKING import":
            runtime.append(Edge(e.source, owner, e.where, e.kind))
    report.cycles = find_cycles(runtime)
    return report


def argparse_imports(root: Path) -> list[str]:
    """`path:line` of every argparse import in a module below cli/ (at any depth, lazy or not)."""
    found = []
    for name, path in sorted(find_modules(root).items()):
        if top_package(name) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "argparse" or n.startswith("argparse.") for n in names):
                found.append(f"{path.relative_to(root).as_posix()}:{node.lineno}")
    return found


# --------------------------------------------------------------------------- tests


def test_layers_and_no_cycles() -> None:
    message = check_tree(ROOT).message()
    if message:
        pytest.fail("\n" + message, pytrace=False)


def test_only_cli_parses_command_lines() -> None:
    found = argparse_imports(ROOT)
    assert not found, "argparse below cli/ (move the command line to a cli/ module): " + ", ".join(found)


def test_argparse_rule_sees_every_kind_of_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "pyproject.toml",
        '[tool.setuptools]\npackage-dir = { "gsrender.engine" = "engine", "gsrender.cli" = "cli" }\n',
    )
    _write(tmp_path, "engine/__init__.py", "")
    _write(tmp_path, "engine/a.py", "import argparse\n")
    _write(tmp_path, "engine/b.py", "def f():\n    from argparse import Namespace\n")
    _write(tmp_path, "engine/c.py", "import os  # argparse in a comment is not an import\n")
    _write(tmp_path, "cli/__init__.py", "import argparse\n")  # the command line's own layer
    assert argparse_imports(tmp_path) == ["engine/a.py:1", "engine/b.py:2"]


def test_checker_reads_the_whole_tree() -> None:
    report = check_tree(ROOT)
    mapped = {top_package(name) for name in package_dirs(ROOT)}
    for pkg in ALLOWED:
        if (ROOT / pkg).is_dir():
            assert pkg in mapped, f"{pkg}/ exists but pyproject.toml does not map gsrender.{pkg} to it"
    assert {"models", "engine", "training", "export", "ofx_bridge"} <= mapped
    assert len(report.modules) >= 60, sorted(report.modules)  # ~80 modules in five packages
    for name in ("gsrender.cli.render", "gsrender.training.trainer", "gsrender.ofx_bridge.worker"):
        assert name in report.modules
    assert len(report.edges) >= 100  # the internal imports are seen, not silently skipped


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_checker_finds_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "pyproject.toml",
        '[tool.setuptools]\npackage-dir = { "gsrender.models" = "models", "gsrender.engine" = "engine", '
        '"gsrender.training" = "training" }\n',
    )
    _write(tmp_path, "models/__init__.py", "")
    _write(tmp_path, "models/net.py", "def load():\n    from gsrender.engine import render\n")  # upward
    _write(tmp_path, "engine/__init__.py", "from . import render\n")
    _write(tmp_path, "engine/render.py", "import numpy as np\n\nfrom .tiles import tile\n")
    _write(tmp_path, "engine/tiles.py", "def tile():\n    from .. import engine\n")  # cycle
    _write(tmp_path, "engine/sub/__init__.py", "from ..tiles import tile\n")
    _write(tmp_path, "training/__init__.py", "")
    _write(tmp_path, "training/train.py", "import gsrender.engine.render\nfrom gsrender.models import net\n")

    report = check_tree(tmp_path)
    assert set(report.modules) == {
        "gsrender.models",
        "gsrender.models.net",
        "gsrender.engine",
        "gsrender.engine.render",
        "gsrender.engine.tiles",
        "gsrender.engine.sub",
        "gsrender.training",
        "gsrender.training.train",
    }
    assert [(e.source, e.target, e.kind, e.where) for e in report.upward] == [
        ("gsrender.models.net", "gsrender.engine.render", "lazy import", "models/net.py:2")
    ]
    assert len(report.cycles) == 1
    (cycle,) = report.cycles
    assert [e.source for e in cycle] == ["gsrender.engine", "gsrender.engine.render", "gsrender.engine.tiles"]
    assert cycle[-1].target == "gsrender.engine" and cycle[-1].kind == "lazy import"
    # relative imports resolve from a package __init__ and from a module
    targets = {(e.source, e.target) for e in report.edges}
    assert ("gsrender.engine.sub", "gsrender.engine.tiles") in targets
    assert ("gsrender.engine", "gsrender.engine.render") in targets
    msg = report.message()
    assert "models/net.py:2" in msg and "gsrender.engine -> gsrender.engine.render" in msg

    # the same tree without the two faults is clean
    _write(tmp_path, "models/net.py", "def load():\n    return None\n")
    _write(tmp_path, "engine/tiles.py", "def tile():\n    return None\n")
    clean = check_tree(tmp_path)
    assert not clean.upward and not clean.cycles, clean.message()


def test_checker_sees_dynamic_and_type_only_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "pyproject.toml",
        '[tool.setuptools]\npackage-dir = { "gsrender.engine" = "engine", "gsrender.export" = "export" }\n',
    )
    _write(tmp_path, "engine/__init__.py", "")
    type_only = "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .b import B\n"
    _write(tmp_path, "engine/a.py", type_only)
    _write(tmp_path, "engine/b.py", "from .a import A\n")
    _write(
        tmp_path,
        "engine/verbs.py",
        'import importlib\nVERBS = {"build": "gsrender.export.build"}\n'
        'def run():\n    importlib.import_module("gsrender.export.other")\n',
    )
    _write(tmp_path, "export/__init__.py", "")
    _write(tmp_path, "export/build.py", "")

    report = check_tree(tmp_path)
    assert not report.cycles  # a TYPE_CHECKING import never runs
    assert sorted((e.target, e.kind) for e in report.upward) == [
        ("gsrender.export.build", "string reference"),
        ("gsrender.export.other", "import_module"),
    ]
