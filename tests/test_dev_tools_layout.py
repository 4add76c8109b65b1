"""The development scripts and `skeljax.testing` keep their place (read statically, with `ast`): a script imports
`skeljax` and nothing of `tests`, and never edits `sys.path` to reach a sibling; the package itself never imports
`skeljax.testing`, whose PyTorch references need the test extra; no test module imports another (shared helpers live
in tests/helpers.py, shared fixtures in tests/conftest.py)."""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))
PACKAGE = sorted(p for p in (REPO / "skeljax").rglob("*.py") if "testing" not in p.relative_to(REPO).parts)
TEST_MODULES = sorted((REPO / "tests").glob("test_*.py"))


def _imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _sys_path_edits(path: pathlib.Path) -> list[int]:
    """Lines that call sys.path.insert / append / extend."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("insert", "append", "extend")
        and ast.unparse(node.func.value) == "sys.path"
    ]


def _imported_test_modules(path: pathlib.Path) -> set[str]:
    """The tests/test_*.py modules (by file stem) that the file at `path`, itself in tests/, imports anywhere in it:
    absolutely (`tests.test_x`, `from tests import test_x`) or relatively (`from .test_x import`, `from . import`)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level in (0, 1):
            package = node.module if node.level == 0 else ".".join(filter(None, ("tests", node.module)))
            modules.add(package)
            modules.update(f"{package}.{a.name}" for a in node.names)
    return {m.split(".")[1] for m in modules if m.startswith("tests.test_")}


def test_the_static_reader_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sys\nsys.path.insert(0, '.')\nfrom tests import torch_reference\nimport skeljax.testing\n"
    )
    assert _sys_path_edits(sample) == [2]
    assert {"tests", "tests.torch_reference", "skeljax.testing"} <= _imported_modules(sample)


def test_the_test_import_reader_finds_every_form(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "from tests.test_a import x\n"
        "import tests.test_b\n"
        "from tests import helpers, test_c\n"
        "from .test_d import (\n    y,\n    z,\n)\n"
        "from . import conftest, test_e\n"
        "from tests.helpers import SMALL\n"
        "from tests.http_server import Server\n"
        "import testsuite.test_f\n"
        "def f():\n    from tests.test_g.sub import w\n"
    )
    assert _imported_test_modules(sample) == {"test_a", "test_b", "test_c", "test_d", "test_e", "test_g"}
    sample.write_text("from tests.helpers import SMALL, small_model\nfrom tests import numpy_reference_transforms\n")
    assert _imported_test_modules(sample) == set()


def test_no_test_module_imports_another():
    offenders = {p.name: sorted(_imported_test_modules(p) - {p.stem}) for p in TEST_MODULES}
    assert len(TEST_MODULES) > 10 and {name: got for name, got in offenders.items() if got} == {}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_script_neither_edits_sys_path_nor_imports_tests(script):
    assert _sys_path_edits(script) == [], f"{script.name} edits sys.path"
    assert not {m for m in _imported_modules(script) if m == "tests" or m.startswith("tests.")}, script.name


def test_the_package_does_not_import_its_testing_helpers():
    offenders = [
        str(p.relative_to(REPO))
        for p in PACKAGE
        if any(m == "skeljax.testing" or m.startswith("skeljax.testing.") for m in _imported_modules(p))
    ]
    assert SCRIPTS and PACKAGE and offenders == []
