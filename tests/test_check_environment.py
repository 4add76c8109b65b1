"""scripts/check_environment.py (the preflight of scripts/accelerator_check.sh) and the package list of
scripts/offline_wheels.sh: missing packages and a CPU-only JAX are reported as problems, versions outside the
tested range only as notes, and every package the offline bundle names resolves to a version here."""

import importlib.metadata
import importlib.util
import os
import re

import pytest
from packaging.requirements import Requirement

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load():
    spec = importlib.util.spec_from_file_location(
        "check_environment", os.path.join(REPO, "scripts", "check_environment.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_requirements_come_from_setup_cfg_with_the_named_test_extras():
    check = _load()
    by_name = {req.name: req for req in check.setup_requirements(("mmaction2",))}
    assert {"jax", "flax", "grain", "tensorflow-datasets", "ml_collections", "mmaction2"} <= set(by_name)
    assert by_name["mmaction2"].specifier.contains("1.2.0")
    assert not by_name["jax"].specifier.contains("0.12.0")  # the upper bound of the tested range
    assert "torch" not in by_name  # only the extras asked for


def test_a_missing_package_is_a_problem_and_an_untested_version_a_note(capsys):
    check = _load()
    problems = check.check_versions(
        [Requirement("numpy"), Requirement("numpy<1.0"), Requirement("skeljax-no-such-package>=1")]
    )
    out = capsys.readouterr().out
    assert problems == ["skeljax-no-such-package is not installed"]
    assert "MISSING" in out and "outside the tested range <1.0" in out


def test_an_import_that_fails_is_reported_with_its_error():
    check = _load()
    problems = check.check_imports(("json", "skeljax_no_such_module"))
    assert len(problems) == 1 and "skeljax_no_such_module" in problems[0] and "ModuleNotFoundError" in problems[0]


def test_this_environment_passes_and_a_required_gpu_fails_on_cpu(capsys):
    check = _load()
    assert check.main([]) == 0
    assert "environment: ok" in capsys.readouterr().out
    import jax

    if jax.default_backend() != "cpu":
        pytest.skip("the GPU requirement is met here")
    assert check.main(["--require-gpu"]) == 1
    assert "JAX computes on cpu, not a GPU" in capsys.readouterr().out


def test_every_package_of_the_offline_bundle_is_installed_here():
    """offline_wheels.sh pins each name to the version installed where it runs; a misspelt or dropped name fails."""
    with open(os.path.join(REPO, "scripts", "offline_wheels.sh")) as f:
        text = f.read()
    body = re.search(r"^packages=\((.*?)^\)", text, re.S | re.M).group(1)
    names = [word for line in body.splitlines() for word in line.split("#")[0].split()]
    assert {"grain", "tensorflow-datasets", "ml_collections", "mmaction2", "portpicker"} <= set(names)
    for name in names:
        importlib.metadata.version(name)  # raises PackageNotFoundError
