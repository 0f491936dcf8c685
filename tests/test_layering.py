"""The package's import graph runs one way: no module imports from a layer above its own (README, Layout).

A new module must be placed in LAYERS; the test names any import that runs back up."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepfinder_unsup"

# bottom (0) to top; a module may import from its own layer and those below
LAYERS = {
    0: ["_version", "_quiet", "log", "batches", "volume", "watchdog", "threads"],
    1: ["geometry"],
    2: ["io"],
    3: ["extract", "model", "simulate", "plot", "interactive", "average", "compute"],
    4: ["embed", "int8", "cluster", "report"],
    5: ["train", "streaming"],
    6: ["adapt"],
    7: ["pipeline"],
    8: ["cli", "__init__"],
}
LAYER_OF = {name: level for level, names in LAYERS.items() for name in names}


def top_name(module: str) -> str:
    """'deepfinder_unsup.io.star' -> 'io'; the package itself -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1] if path.name != "__init__.py" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
            else:
                names = [node.module or ""]
            found.update(n for n in names if n.startswith("deepfinder_unsup"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("deepfinder_unsup"))
    return found


def test_every_module_has_a_layer():
    modules = {top_name(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert modules - set(LAYER_OF) == set(), "place the new module(s) in LAYERS"


def test_no_import_runs_up_a_layer():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        me = top_name(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for target in imports_of(path):
            other = top_name(target)
            if other != me and LAYER_OF.get(other, -1) > LAYER_OF[me]:
                upward.append(
                    f"{path.relative_to(PACKAGE.parent)} imports {target} (layer {LAYER_OF[other]} > {LAYER_OF[me]})"
                )
    assert upward == []
