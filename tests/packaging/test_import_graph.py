"""No import circles inside ``ldm_studio``, and the leaf modules stay leaves.

The graph counts every import, also those inside functions: a lazy import that closes a circle
still ties the two layers together (cli -> ui.launch -> desktop -> cli did), it only moves the
crash from start-up to the first call that takes that path. Imports under ``if TYPE_CHECKING:``
never run and are left out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "ldm_studio"


def module_files() -> dict[str, Path]:
    modules = {}
    for file in PACKAGE_DIR.rglob("*.py"):
        parts = list(file.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = file
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imported_names(tree: ast.AST, package: str) -> list[str]:
    """Dotted names of everything imported in ``tree``, relative imports resolved against ``package``."""
    names: list[str] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node):
            pending.extend(node.orelse)  # only the body is type-only
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
            names.append(base)
        pending.extend(ast.iter_child_nodes(node))
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> modules whose code runs when it imports them (parent packages included)."""
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for module, file in modules.items():
        package = module if file.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for name in _imported_names(ast.parse(file.read_text(encoding="utf-8")), package):
            while name and name not in modules:  # `from pkg import function` -> pkg
                name = name.rpartition(".")[0]
            # importing a.b.c runs a and a.b first; a module's own parents are already running
            while name and not (module == name or module.startswith(name + ".")):
                targets.add(name)
                name = name.rpartition(".")[0]
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as [a, b, ..., a], or [] when there is none."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> list[str]:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, path)):
                return cycle
        path.pop()
        state[module] = "done"
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [])):
            return cycle
    return []


def test_the_package_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle == [], "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_a_circle_through_a_lazy_import_and_a_parent_package():
    # the circle this test was written for, as it was: desktop imported the CLI inside a function
    graph = {
        "ldm_studio.cli": {"ldm_studio.ui.launch", "ldm_studio.ui"},
        "ldm_studio.ui.launch": {"ldm_studio.desktop"},
        "ldm_studio.desktop": {"ldm_studio.cli"},
        "ldm_studio.ui": set(),
    }
    assert find_cycle(graph) == [
        "ldm_studio.cli",
        "ldm_studio.ui.launch",
        "ldm_studio.desktop",
        "ldm_studio.cli",
    ]
    tree = ast.parse("def install():\n    from ldm_studio.cli.errors import CliError\n")
    assert "ldm_studio.cli.errors" in _imported_names(tree, "ldm_studio")


def test_desktop_integration_is_a_leaf():
    graph = import_graph()
    assert graph["ldm_studio.desktop"] <= {"ldm_studio.paths", "ldm_studio"}
    assert "ldm_studio.cli" not in graph["ldm_studio.ui.launch"] | graph["ldm_studio.desktop"]


def loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_desktop_imports_neither_the_cli_nor_the_window_in_a_fresh_interpreter():
    loaded = loaded_after_import("ldm_studio.desktop")
    assert not {name for name in loaded if name.startswith(("ldm_studio.cli", "ldm_studio.ui", "PySide6"))}


def test_the_model_catalogue_loads_without_torch_or_qt():
    # the window lists models before torch is imported, and the engine never imports Qt
    loaded = loaded_after_import("ldm_studio.app.catalog")
    assert "ldm_studio.engine.catalog" in loaded
    assert not {name for name in loaded if name.split(".")[0] in ("torch", "PySide6", "diffusers")}
