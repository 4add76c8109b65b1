"""`python -m build` makes a wheel and an sdist that install into a fresh virtualenv, and the demo trains from the
installed package (not from this checkout): console commands, package data and the tested dependency bounds included.

No downloads: the build runs without isolation (setuptools from this environment), pip installs with --no-deps
--no-index, and the new virtualenv sees this environment's packages (jax, flax, ...) through a .pth file placed after
its own site-packages, so the installed skeljax is the one imported. (`venv --system-site-packages` alone would not
do: from inside a virtualenv it exposes the base interpreter's packages, not this environment's.)
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_FILES = ("skeljax/data/kinetics400_classes.txt", "skeljax/data/ntu120_missing.txt")
# The JAX-ecosystem packages whose releases change APIs: each must carry an upper bound (setup.cfg).
BOUNDED = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain")


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The wheel and sdist of a copy of this checkout's files (tracked and new, not ignored ones)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    files = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0")
    for rel in filter(None, files):
        if os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(src / os.path.dirname(rel), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), src / rel)
    out = tmp / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)])
    (wheel,) = glob.glob(str(out / "skeljax-*.whl"))
    (sdist,) = glob.glob(str(out / "skeljax-*.tar.gz"))
    return wheel, sdist


def _venv(path):
    """A fresh virtualenv that sees this environment's packages after its own; returns its python. Without a pip of
    its own (ensurepip's would bring an old setuptools that shadows this environment's): this pip installs into it."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = str(path / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    with open(os.path.join(purelib, "zz_outer_env.pth"), "w") as f:
        f.write("\n".join(sorted(here)) + "\n")
    return python


def test_wheel_holds_the_package_data_commands_and_bounds(dist):
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert set(DATA_FILES) <= names
    assert "skeljax/zoo/download.py" in names and "skeljax/models/stgcn.py" in names
    assert not any(n.startswith(("tests/", "configs/", "scripts/")) for n in names)
    for command in ("skeljax-train", "skeljax-predict", "skeljax-zoo", "skeljax-convert"):
        assert f"{command} = " in entry_points
    requires = [line.split(": ", 1)[1] for line in meta.splitlines() if line.startswith("Requires-Dist: ")]
    for package in BOUNDED:
        (req,) = [r for r in requires if re.match(rf"{re.escape(package)}[<>=]", r) and "extra ==" not in r]
        assert re.search(r"<\d", req) and ">=" in req, req  # e.g. jax<0.12,>=0.10.2
    for dropped in ("Pillow",):
        assert not any(re.match(rf"{dropped}\b", r, re.I) for r in requires), dropped
    assert any(r.startswith("jax[cuda12]") and 'extra == "cuda12"' in r for r in requires)


def test_sdist_holds_the_sources_configs_and_data(dist):
    _, sdist = dist
    with tarfile.open(sdist) as t:
        top = t.getnames()[0].split("/")[0]
        names = {n[len(top) + 1 :] for n in t.getnames()}
    assert {"setup.cfg", "pyproject.toml", "README.md", "configs/demo.py", *DATA_FILES} <= names
    assert "configs/stgcnpp_ntu60.py" in names


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_demo_trains_from_the_installed_package(dist, kind, tmp_path):
    """pip install --no-deps of the wheel (or the sdist) into a new virtualenv, then a two-step demo run outside the
    checkout: the imported skeljax is the installed one, and the run writes its models and metrics."""
    wheel, sdist = dist
    python = _venv(tmp_path / "venv")
    archive = wheel if kind == "wheel" else sdist
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index"]
    _run([*pip, "--no-build-isolation", archive])
    away = tmp_path / "elsewhere"
    away.mkdir()
    where = _run([python, "-c", "import skeljax; print(skeljax.__file__)"], cwd=away).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")), where
    listing = _run([str(tmp_path / "venv" / "bin" / "skeljax-zoo"), "list"], cwd=away).stdout
    assert "stgcnpp_ntu60_xsub_3d_j" in listing

    # configs/ ships in the sdist and the repository, not in the package: the run uses the checkout's demo config,
    # shrunk to a few samples per class.
    (away / "tiny_demo.py").write_text(
        textwrap.dedent(f"""
        import importlib.util

        spec = importlib.util.spec_from_file_location("demo", {os.path.join(ROOT, "configs", "demo.py")!r})
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)

        def get_config(arg=None):
            c = demo.get_config(arg)
            c.data.builder_kwargs.num_per_class = 6
            c.data.test_num_clips = 2
            return c
        """)
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("PYTHONPATH", None)
    args = ["--config", "tiny_demo.py", "--workdir", "run", "--config.num_epochs=1", "--config.stop_after_steps=2"]
    args.append(f"--config.data.data_dir={away / 'tfds'}")
    _run([python, "-m", "skeljax.main", *args], cwd=away, env=env)
    for name in ("config.json", "metrics.jsonl", "best/model_spec.json", "final/model_spec.json"):
        assert os.path.isfile(away / "run" / name), name
