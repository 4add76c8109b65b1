"""The package's import graph, read statically: no import circle anywhere, and the layers point one way.

Every `import` and `from ... import` in every file of skeljax/ counts, those inside functions too (a function-level
import hides a circle from Python's loader, not from a reader). `from pkg import name` is an edge to the module
`pkg.name` when there is one, else to `pkg`. The models and file-format packages must not know about downloads,
training or prediction.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "skeljax"
# (importer prefix, forbidden prefixes): the lower layers import nothing from the layers above them.
LAYERS = {
    "skeljax.models": ("skeljax.zoo", "skeljax.train", "skeljax.predict"),
    "skeljax.io": ("skeljax.zoo", "skeljax.train", "skeljax.predict"),
}


def module_name(path: Path, root: Path) -> str:
    """'skeljax.predict.cli' for skeljax/predict/cli.py, 'skeljax.predict' for skeljax/predict/__init__.py."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every dotted name `source` imports (module level or not), relative imports made absolute: 'pkg.mod' for
    `import pkg.mod`, 'pkg.a' and 'pkg.b' for `from pkg import a, b` (whether 'pkg.a' is a module or a name in
    `pkg` is decided by `edges`)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def edges(names: Iterable[str], modules: set[str]) -> set[str]:
    """The modules of `modules` that the imported `names` are: `pkg.name` if that is a module, else its longest
    prefix that is one (`from skeljax.predict import Predictor` -> skeljax.predict)."""
    out = set()
    for name in names:
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in modules:
                out.add(candidate)
                break
    return out


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """{module: the package modules it imports} for every .py file under `root`."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    graph = {}
    for module, path in files.items():
        names = imported_names(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
        graph[module] = edges(names, modules) - {module}
    return graph


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One circle per strongly connected component with more than one module, as [a, b, ..., a] (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
            if len(component) > 1 or v in graph.get(v, ()):
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_circle_in(sorted(c), graph, c) for c in components]


def _circle_in(start_order: list[str], graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """A shortest circle through the first module of a strongly connected component (breadth first)."""
    start = start_order[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start] + path[::-1][1:] + [start] if v != start else [start, start]
                if w in component and w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no circle through {start} in {sorted(component)}")


def layer_violations(graph: Mapping[str, Iterable[str]], layers=LAYERS) -> list[str]:
    """'importer -> imported' for every import a lower layer must not make."""
    bad = []
    for module, imported in sorted(graph.items()):
        for low, forbidden in layers.items():
            if module == low or module.startswith(low + "."):
                bad += [f"{module} -> {m}" for m in sorted(imported) if m.startswith(forbidden)]
    return bad


# ----------------------------------------------------------------------------------------------------------------
# The checks themselves, then the checkers on hand-made graphs and sources (so that they can fail).
# ----------------------------------------------------------------------------------------------------------------


def test_the_package_has_no_import_circle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_models_and_io_import_nothing_from_zoo_train_or_predict():
    assert layer_violations(import_graph()) == []


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert len(graph) > 50
    assert "skeljax.predict.settings" in graph["skeljax.train.loop"]  # a module-level import
    assert "skeljax.models.stgcn" in graph["skeljax.models.state_dict"]
    assert "skeljax.predict.cli" in graph["skeljax.predict.__main__"]


def test_cycle_finder_on_small_graphs():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]
    two = find_cycles({"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"z"}, "z": {"x"}, "q": {"a", "x"}})
    assert sorted(two) == [["a", "b", "a"], ["x", "y", "z", "x"]]
    # the shortest circle through the first module, even where a longer one exists
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": {"a"}}) == [["a", "c", "a"]]


def test_imports_inside_functions_and_relative_imports_count():
    source = "import os\nfrom . import sibling\ndef f():\n    from ..other.mod import thing\n    import pkg.deep\n"
    names = imported_names(source, "pkg.sub.mod", is_package=False)
    assert names == {"os", "pkg.sub.sibling", "pkg.other.mod.thing", "pkg.deep"}
    modules = {"pkg", "pkg.sub", "pkg.sub.mod", "pkg.sub.sibling", "pkg.other", "pkg.other.mod"}
    # a name that is no module is an edge to the module holding it; 'pkg.deep' is not in the package: to 'pkg'
    assert edges(names, modules) == {"pkg", "pkg.sub.sibling", "pkg.other.mod"}


def test_a_package_importing_its_user_back_is_a_circle(tmp_path):
    root = tmp_path / "pkg"
    (root / "low").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "low" / "__init__.py").write_text("")
    (root / "high.py").write_text("from pkg.low import core\n")
    (root / "low" / "core.py").write_text("def f():\n    from pkg.high import g  # hidden in a function\n")
    graph = import_graph(root)
    assert find_cycles(graph) == [["pkg.high", "pkg.low.core", "pkg.high"]]
    assert layer_violations(graph, {"pkg.low": ("pkg.high",)}) == ["pkg.low.core -> pkg.high"]


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_the_layers_exist(module):
    assert module in import_graph(), f"{module}: a layer rule for a package that is not there"
