"""The shared command-line conventions (skeljax/cli.py): one `error:` line and status 1 for a user error, status 2
for a bad flag, --verbose; the console commands installed from setup.cfg."""

import logging
import os
import subprocess
import sys

import pytest

from skeljax import cli, convert, ensemble, predict, visualize
from skeljax.data import prepare_ntu

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_turns_a_user_error_into_one_line_and_status_1(capsys):
    def bad_file():
        raise ensemble.ScoreFileError("x.npz: no such score file")

    assert cli.run(bad_file) == 1
    assert capsys.readouterr().err == "error: x.npz: no such score file\n"
    assert cli.run(lambda: None) == 0 and cli.run(lambda: 3) == 3
    with pytest.raises(FileNotFoundError):  # an OSError is a user error only inside run
        open(os.path.join(REPO, "no such file"))
    assert cli.run(lambda: open(os.path.join(REPO, "no such file"))) == 1
    assert "no such file" in capsys.readouterr().err


def test_run_lets_programming_errors_raise():
    def bug():
        raise TypeError("a bug, with its traceback")

    with pytest.raises(TypeError):
        cli.run(bug)


def test_verbose_sets_the_logging_level():
    p = cli.parser("skeljax-x", "doc")
    try:
        cli.parse(p, ["-vv"])
        assert logging.getLogger().level == logging.DEBUG
        cli.parse(p, [])
        assert logging.getLogger().level == logging.WARNING
    finally:
        logging.getLogger().setLevel(logging.WARNING)


@pytest.mark.parametrize(
    "main, argv",
    [
        (predict.main, ["--checkpoint", "/nonexistent/model", "--input", "/nonexistent/x.npy"]),
        (ensemble.main, ["/nonexistent/a.npz"]),
        (visualize.main, ["--input", "/nonexistent/x.skeleton", "--out", "/nonexistent/x.gif"]),
        (prepare_ntu.main, ["/nonexistent/raw", "/nonexistent/out.pkl", "--quiet"]),
        (convert.main, ["/nonexistent/x.pth", "/nonexistent/out"]),
    ],
)
def test_every_tool_ends_a_user_error_in_one_line(capsys, main, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and err.startswith("error: ") and "/nonexistent/" in err, err


@pytest.mark.parametrize("main", [predict.main, ensemble.main, visualize.main, prepare_ntu.main, convert.main])
def test_a_bad_flag_exits_with_status_2(capsys, main):
    with pytest.raises(SystemExit) as e:
        main(["--no-such-flag"])
    assert e.value.code == 2


def _installed(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.isfile(path):
        pytest.skip(f"{name} is not installed (pip install -e .)")
    return path


@pytest.mark.parametrize(
    "name, usage",
    [
        ("skeljax-predict", "--checkpoint"),
        ("skeljax-ensemble", "files"),
        ("skeljax-prepare-ntu", "raw_dir"),
        ("skeljax-convert", "--to-pytorch"),
        ("skeljax-train", "--workdir"),
    ],
)
def test_console_commands_are_installed(name, usage):
    proc = subprocess.run(
        [_installed(name), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert proc.returncode == (1 if name == "skeljax-train" else 0), proc.stderr  # absl's --help exits with 1
    assert usage in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "script", ["scripts/convert_checkpoint.py", "scripts/ensemble.py", "scripts/export.py", "scripts/prepare_ntu.py"]
)
def test_scripts_still_run_the_package_commands(script):
    proc = subprocess.run(
        [sys.executable, script, "--no-such-flag"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO),
    )
    assert proc.returncode == 2 and "usage: skeljax-" in proc.stderr and "error:" in proc.stderr, proc.stderr
