"""The shape of the package's code: modules, lines, the largest files and functions, and where
command lines are parsed.

    python bench/code_shape.py [ROOT]

Counts every .py file under the package folders (engine, models, export, training, ofx_bridge,
cli): modules, lines, median lines per module, files over 400 and 500 lines, functions over
100 lines, the modules that import argparse, and the module-level `main()` functions.
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path

PACKAGES = ("engine", "models", "export", "training", "ofx_bridge", "cli")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else Path(__file__).resolve().parents[1])
    files = [p for d in PACKAGES for p in sorted((root / d).rglob("*.py")) if "__pycache__" not in p.parts]
    lines = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in files}
    rel = {p: p.relative_to(root).as_posix() for p in files}
    print(f"modules {len(files)}, lines {sum(lines.values())}, median {statistics.median(lines.values())}")
    for limit in (400, 500):
        big = sorted(((n, rel[p]) for p, n in lines.items() if n > limit), reverse=True)
        print(f"files over {limit} lines: {len(big)}" + "".join(f"\n  {n:5d} {f}" for n, f in big))
    argparse_modules, mains, long_functions = set(), [], []
    for p in files:
        tree = ast.parse(p.read_text(encoding="utf-8"))
        mains += [rel[p] for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
                argparse_modules.add(rel[p])
            if isinstance(node, ast.ImportFrom) and node.module == "argparse":
                argparse_modules.add(rel[p])
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 100:
                    long_functions.append((length, f"{rel[p]}:{node.name}"))
    print(f"functions over 100 lines: {len(long_functions)}" + "".join(
        f"\n  {n:5d} {f}" for n, f in sorted(long_functions, reverse=True)))  # fmt: skip
    listed = "".join(f"\n  {m}" for m in sorted(argparse_modules))
    print(f"modules importing argparse: {len(argparse_modules)}" + listed)
    print(f"main() functions: {len(mains)}" + "".join(f"\n  {m}" for m in sorted(mains)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
