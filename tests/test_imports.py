"""The project's own modules import each other without cycles and without private names.

Read from the source (ast), not by importing: every `import` counts, at module level and inside
functions, because an import inside a function is still a dependency (the function-level
`from app import …` in cli.py made app.py ↔ cli.py one knot).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".venv", "tests", "migrations", "instance", "node_modules"}

# removed by the order core rewrite
ALLOWED_PRIVATE = {
    ("actions.seats", "actions.orders", "_claim"),
    ("actions.seats", "actions.orders", "_fulfil"),
    ("actions.seats", "actions.orders", "_number_order"),
    ("actions.coins", "actions.orders", "_number_order"),
    ("actions.members", "actions.orders", "_number_order"),
    ("actions.billing_jobs", "actions.orders", "_number_order"),
    ("actions.billing_jobs", "actions.orders", "_apply_renewal"),
}
# removed by the order core rewrite: paying a seat order calls back into actions.seats
ALLOWED_EDGES = {("actions.orders", "actions.seats")}


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the project outside tests and migrations."""
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] in SKIPPED or parts[0].startswith("."):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(imported project module, imported name or None) for every import statement in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    found.append((submodule, None))
                elif base in modules:
                    found.append((base, alias.name))
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _imported in imports_of(name, path, modules):
            if target != name and (name, target) not in ALLOWED_EDGES:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_scan_sees_the_project():
    modules = project_modules()
    assert {"app", "cli", "models", "extensions", "actions.orders", "admin_views.base"} <= set(modules)
    assert ("actions.audit", "record") in imports_of("actions.orders", modules["actions.orders"], modules)


def test_cycles_are_found_inside_functions_too(tmp_path):
    (tmp_path / "one.py").write_text("def f():\n    from two import g\n")
    (tmp_path / "two.py").write_text("import one\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from . import b\n")
    (tmp_path / "pkg" / "b.py").write_text("from pkg.a import x\n")
    modules = project_modules(tmp_path)
    assert cycles(import_graph(modules)) == [["one", "two"], ["pkg.a", "pkg.b"]]


def test_no_import_cycle_among_project_modules():
    assert cycles(import_graph(project_modules())) == []


def test_no_private_name_is_imported_from_another_module():
    modules = project_modules()
    private = sorted(
        (name, target, imported)
        for name, path in modules.items()
        for target, imported in imports_of(name, path, modules)
        if imported and imported.startswith("_") and not imported.startswith("__") and target != name
        and (name, target, imported) not in ALLOWED_PRIVATE
    )
    assert private == []
