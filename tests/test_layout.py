"""The layout of DESIGN.md section 2, checked by reading the source (ast only, no imports).

Every Import and ImportFrom node counts, at module level or inside a function
(a lazy import is still an import), between the project's modules under
vid2vid/, preprocess/, train/, infer/ and dream/:

- no import cycle: no module imports a name back from a module that imports
  it (a lazy import that breaks a cycle is a toolbox waiting to be split out);
- no module imports another module's private name (`from x import _y`);
- no file over 500 lines but the training loop's (one concept per file);
- the import direction: `preprocess`, `train`, `infer` and `dream` import `vid2vid`,
  `infer` may import `preprocess`, `dream` may import `infer` (never `train` or
  `preprocess`), `train` never imports `preprocess` or
  `infer`, and the core `vid2vid` imports none of the three except from
  `vid2vid/cli.py`, which wires the commands.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vid2vid", "preprocess", "train", "infer", "dream")
MAX_LINES = 500
LONG_ALLOWED = {"train/trainer.py"}   # the training loop: one function read top to bottom
# package -> the project packages its modules may import
ALLOWED = {"vid2vid": {"vid2vid"}, "preprocess": {"preprocess", "vid2vid"},
           "train": {"train", "vid2vid"}, "infer": {"infer", "preprocess", "vid2vid"},
           "dream": {"dream", "infer", "vid2vid"}}
WIRING = {"vid2vid.cli"}              # may import every stage (lazily, for a fast --help)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:   # relative: from the file's package up
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            found.append((module, [alias.name for alias in node.names], node.lineno))
    return found


def _project_targets(module: str, names: list[str]) -> set[str]:
    """The project modules an import statement reaches: the module itself and, for
    `from package import name`, the submodule `package.name` when there is one."""
    out = {module} if module in MODULES else set()
    out |= {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
    return out


def _graph() -> dict[str, dict[str, int]]:
    """module -> {project module it imports: first line}."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(name, {})
        for module, names, line in _imports(name, path):
            for target in _project_targets(module, names) - {name}:
                edges.setdefault(target, line)
    return graph


def test_no_import_cycles():
    graph = _graph()
    # Tarjan's strongly connected components: any with more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    described = []
    for component in cycles:
        edges = [f"{a} -> {b} (line {graph[a][b]})" for a in component for b in component
                 if b in graph[a]]
        described.append("; ".join(edges))
    assert not cycles, "import cycles (share the common part in its own module):\n" + \
        "\n".join(described)


def test_no_private_names_imported():
    bad = []
    for name, path in MODULES.items():
        for module, names, line in _imports(name, path):
            if module == "__future__":
                continue
            for n in names:
                if n.startswith("_") and not (n.startswith("__") and n.endswith("__")):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {n}")
    assert not bad, "private names imported from another module (make them public or " \
                    "move them):\n" + "\n".join(bad)


def test_no_file_over_500_lines():
    folders = (*PACKAGES, "benchmarks", "tests")
    long = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            n = len(path.read_text().splitlines())
            if n > MAX_LINES and rel not in LONG_ALLOWED:
                long.append(f"{rel}: {n} lines")
    assert not long, f"files over {MAX_LINES} lines (split them by concept):\n" + "\n".join(long)


def test_import_direction():
    bad = []
    for name, path in MODULES.items():
        package = name.split(".")[0]
        for module, names, line in _imports(name, path):
            target = module.split(".")[0]
            if target not in PACKAGES or target in ALLOWED[package] or name in WIRING:
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line}: {package} imports {module}")
    assert not bad, "imports against DESIGN.md section 2's direction:\n" + "\n".join(bad)


def test_the_checks_see_the_project():
    # A typo in ROOT or PACKAGES would make every check above pass on nothing.
    assert {"vid2vid.cli", "preprocess.pipeline", "train.trainer", "infer.transfer",
            "dream.command"} <= set(MODULES)
    graph = _graph()
    assert "vid2vid.config" in graph["train.trainer"]
