"""No import loops: the modules of the project import one another as a tree, never in a circle.

A loop (a imports b, b imports a, even inside a function) means neither module can be read or
moved without the other, and a module-level one breaks the import itself. This test reads every
.py under the product and benchmark folders with `ast` (nothing is imported), builds the graph of
imports between them (module level and inside functions alike; relative imports resolved;
`from pkg import name` counted as an import of pkg.name when that is a module) and fails on the
first cycle it finds, printing it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("edge", "edge_cli", "train", "export", "calibration", "benchmarks", "scripts")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _imported_names(node: ast.AST, importer: str, is_package: bool) -> list[list[str]]:
    """What an import statement reaches, one list of candidates per name, the likeliest first.

    `import a.b` → [[a.b]]; `from a import b, c` → [[a.b, a], [a.c, a]]: the module a.b when it
    is one, else the module a (b is a name defined in it).
    """
    if isinstance(node, ast.Import):
        return [[alias.name] for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:  # relative: drop one package level per dot (a package's own dot is itself)
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [[f"{base}.{alias.name}", base] for alias in node.names]


def _resolve(name: str, importer_path: Path, modules: dict[str, Path]) -> Optional[str]:
    """The project module `name` refers to, or None for the standard library and third parties.

    Benchmark scripts put their own folder on sys.path (benchmarks/quality: `from run_quality
    import …`), so there a name that is a sibling file of the importer resolves to that file too.
    """
    if name in modules:
        return name
    top = name.split(".")[0]
    is_script = importer_path.relative_to(REPO).parts[0] in ("benchmarks", "scripts")
    sibling = importer_path.parent / f"{top}.py"
    if is_script and top not in FOLDERS and sibling.is_file():
        return module_name(sibling)
    return None


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for candidates in _imported_names(node, name, path.name == "__init__.py"):
                resolved = next(filter(None, (_resolve(c, path, modules) for c in candidates)), None)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> Optional[list[str]]:
    """One cycle as [a, b, …, a], or None: depth-first search, a node on the current path seen again."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> Optional[list[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_sees_imports_of_every_form():
    graph = import_graph()
    assert "edge.errors" in graph["edge.bundle"]  # from edge.errors import EdgeError
    assert "train.tfenv" in graph["export.convert"]  # inside a function
    assert len(graph) > 50


def test_find_cycle_reports_the_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import loop: " + " → ".join(cycle or [])
