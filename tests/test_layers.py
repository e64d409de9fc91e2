"""Imports go down only: shared layer -> registry -> stages -> run -> CLI/console/serve.

Parses every module under src/wattlm with `ast` (imports inside functions count too: a lazy import
is still a dependency) and fails on an upward import, on one stage importing another stage, on an
import cycle between modules, and on a module over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "wattlm"

# Longest prefix wins. A stage's own `cli.py` belongs to the top layer (it is a verb of the CLI).
LAYERS: dict[str, int] = {
    "wattlm": 0,
    "wattlm.errors": 0,
    "wattlm.shared": 0,
    "wattlm.registry": 1,
    "wattlm.registry_locks": 1,
    "wattlm.registry_check": 1,
    "wattlm.jobs": 1,
    "wattlm.cache": 1,
    "wattlm.lineage": 1,
    "wattlm.datasets": 1,
    "wattlm.models": 1,
    "wattlm.engines": 1,
    "wattlm.data": 2,
    "wattlm.synth": 2,
    "wattlm.train": 2,
    "wattlm.eval": 2,
    "wattlm.export": 2,
    "wattlm.kb": 2,
    "wattlm.run": 3,
    "wattlm.recipe": 3,
    "wattlm.cli": 4,
    "wattlm.cli_common": 4,
    "wattlm.serve": 4,
    "wattlm.console": 4,
}
LAYER_NAMES = ("shared", "registry", "stage", "run", "cli/serve")
STAGE_LAYER = 2
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def owner(module: str) -> str:
    """The most specific LAYERS entry covering a module."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS and (prefix != "wattlm" or module == "wattlm"):
            return prefix
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")


def layer(module: str) -> int:
    if module.split(".")[-1] == "cli" and module != "wattlm.cli":
        return 4
    return LAYERS[owner(module)]


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The wattlm modules a file imports (resolved to modules that exist)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if not name.startswith("wattlm"):
                continue
            # `from wattlm.data import pipeline` names a module; `from wattlm.data.pipeline import X` does not.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    known = set(files)
    return {mod: imports_of(path, mod, known) for mod, path in files.items()}


def test_imports_only_go_down():
    graph = import_graph()
    wrong = []
    for mod, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if dep == "wattlm" or mod == "wattlm":
                continue
            src_layer, dep_layer = layer(mod), layer(dep)
            if dep_layer > src_layer:
                wrong.append(f"{mod} ({LAYER_NAMES[src_layer]}) imports {dep} ({LAYER_NAMES[dep_layer]})")
            elif src_layer == dep_layer == STAGE_LAYER and owner(mod) != owner(dep):
                wrong.append(f"stage {mod} imports another stage's {dep}: move the helper down")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = import_graph()
    # Package __init__ files that only re-export are edges too; a cycle through one is still a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    import sys

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_modules_stay_small():
    big = [f"{p.relative_to(SRC.parent)}: {n} lines" for p in sorted(SRC.rglob("*.py"))
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not big, "modules over 400 lines:\n" + "\n".join(big)


def test_layer_check_catches_an_upward_import(tmp_path):
    """The check itself can fail: a stage importing the run layer is reported."""
    fake = tmp_path / "wattlm" / "train"
    fake.mkdir(parents=True)
    (fake / "x.py").write_text("from wattlm.run.pipeline import run_recipe\n")
    deps = imports_of(fake / "x.py", "wattlm.train.x", {"wattlm.run.pipeline", "wattlm.train.x"})
    assert deps == {"wattlm.run.pipeline"}
    assert layer("wattlm.run.pipeline") > layer("wattlm.train.x")
