"""JAX's persistent compilation cache (skeljax.compilation_cache): a recompile is a hit read from the directory;
'' turns it off; an unwritable directory warns and the run goes on; the default follows XDG_CACHE_HOME.

Hits are observed through JAX's own monitoring event, not through timings."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache as jax_cc

from skeljax import compilation_cache
from skeljax.config import schema

HIT = "/jax/compilation_cache/cache_hits"  # recorded by jax._src.compiler on a persistent-cache hit
WRITE = "/jax/compilation_cache/cache_misses"  # recorded by jax._src.compilation_cache when an entry is written
SAVED = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs", "jax_enable_compilation_cache")


@pytest.fixture(autouse=True)
def jax_cache_state(monkeypatch):
    """Every test starts without a persistent cache and leaves JAX as it found it (other tests share the process)."""
    monkeypatch.delenv(compilation_cache.JAX_ENV, raising=False)
    monkeypatch.delenv(compilation_cache.MIN_TIME_ENV, raising=False)
    before = {name: getattr(jax.config, name) for name in SAVED}
    jax.config.update("jax_compilation_cache_dir", None)
    jax_cc.reset_cache()
    yield
    for name, value in before.items():
        jax.config.update(name, value)
    jax_cc.reset_cache()  # drop the cache object opened on this test's directory
    jax.clear_caches()  # and the in-memory executables that were loaded from it


@pytest.fixture
def events():
    seen = []

    def listener(event, **kwargs):
        seen.append(event)

    jax.monitoring.register_event_listener(listener)
    yield seen
    jax.monitoring.unregister_event_listener(listener)


def _program(x):  # a program no other test compiles: its cache entry is this test's own
    return jnp.tanh(x @ x.T).sum(axis=1) * 3.25 + jnp.cumsum(x[:, 0])


X = np.linspace(-1.0, 1.0, 48, dtype=np.float32).reshape(6, 8)
EXPECTED = np.tanh(X.astype(np.float64) @ X.T).sum(axis=1) * 3.25 + np.cumsum(X[:, 0])


def _compile_twice(events):
    """Compile and run `_program`, drop JAX's in-memory caches, do it again; (results, hits after each)."""
    jax.clear_caches()
    first = np.asarray(jax.jit(_program)(X))
    hits_first = events.count(HIT)
    jax.clear_caches()
    second = np.asarray(jax.jit(_program)(X))
    return (first, second), (hits_first, events.count(HIT) - hits_first)


def _entries(path):
    return sorted(n for n in os.listdir(path) if n.endswith("-cache")) if os.path.isdir(path) else []


def test_a_recompile_after_clearing_caches_is_read_from_the_directory(tmp_path, events, capsys):
    path = tmp_path / "cache"
    assert compilation_cache.setup(str(path)) == str(path)
    assert jax.config.jax_compilation_cache_dir == str(path)
    assert f"compilation cache: {path}" in capsys.readouterr().out

    (first, second), (hits_first, hits_second) = _compile_twice(events)
    np.testing.assert_allclose(first, EXPECTED, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(second, first)
    assert hits_first == 0 and hits_second == 1, events
    assert WRITE in events
    assert any(n.startswith("jit__program-") for n in _entries(path)), _entries(path)


def test_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert compilation_cache.setup("~/cc") == str(tmp_path / "cc")
    assert os.path.isdir(tmp_path / "cc")


def test_empty_string_turns_the_cache_off(tmp_path, events, capsys):
    on = tmp_path / "cache"
    compilation_cache.setup(str(on))  # on first, as a notebook might have it: '' must switch it off again
    assert compilation_cache.setup("") is None
    assert jax.config.jax_compilation_cache_dir is None
    assert "compilation cache: off" in capsys.readouterr().out

    (first, second), (hits_first, hits_second) = _compile_twice(events)
    np.testing.assert_array_equal(second, first)
    assert hits_first == hits_second == 0 and WRITE not in events
    assert _entries(on) == []


def _unwritable_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    return tmp_path / "afile" / "cache"


def _read_only_dir(tmp_path, name):
    """A directory with mode 0o500; skips where that does not stop writes (root, unless its
    CAP_DAC_OVERRIDE is dropped: os.geteuid() alone does not tell)."""
    d = tmp_path / name
    d.mkdir()
    d.chmod(0o500)
    try:
        (d / "probe").write_text("")
    except PermissionError:
        return d
    d.chmod(0o700)
    pytest.skip(f"directory permissions do not stop writes here (euid {os.geteuid()})")


def _unwritable_by_mode(tmp_path):
    return _read_only_dir(tmp_path, "readonly") / "cache"


@pytest.mark.parametrize("make", [_unwritable_under_a_file, _unwritable_by_mode], ids=["under_a_file", "chmod_500"])
def test_unwritable_directory_warns_and_the_run_goes_on(tmp_path, make, events, capsys):
    path = make(tmp_path)
    try:
        assert compilation_cache.setup(str(path)) is None
        out = capsys.readouterr().out
        assert f"warning: compilation cache: {path}: cannot be created or written" in out, out
        assert jax.config.jax_compilation_cache_dir is None  # JAX is not pointed at it (no warning per compile)
        (first, second), (hits_first, hits_second) = _compile_twice(events)
        np.testing.assert_allclose(first, EXPECTED, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(second, first)
        assert hits_first == hits_second == 0
        assert not path.exists()
    finally:
        path.parent.chmod(0o700)


def test_existing_read_only_directory_is_refused(tmp_path, capsys):
    path = _read_only_dir(tmp_path, "cache")
    try:
        assert compilation_cache.setup(str(path)) is None
        assert f"warning: compilation cache: {path}: cannot be created or written" in capsys.readouterr().out
        assert jax.config.jax_compilation_cache_dir is None
    finally:
        path.chmod(0o700)


# The same two cases for root, whose CAP_DAC_OVERRIDE ignores directory modes (the tests above skip there): a child
# process drops that capability (and CAP_DAC_READ_SEARCH) from its bounding set and executes itself again, so that
# the kernel checks the modes for it as for anyone, then runs compilation_cache.setup.
_SETUP_WITHOUT_DAC_OVERRIDE = """
import ctypes
import os
import sys

if sys.argv[2] == "drop":
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (linux/capability.h)
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            print("cannot drop capability", cap, os.strerror(ctypes.get_errno()), flush=True)
            sys.exit(3)
    os.execv(sys.executable, [sys.executable, __file__, sys.argv[1], "run"])

import jax

from skeljax import compilation_cache

print("returned", compilation_cache.setup(sys.argv[1]), "jax dir", jax.config.jax_compilation_cache_dir, flush=True)
"""


@pytest.mark.parametrize("where", ["existing", "inside"])
def test_root_without_permission_overrides_gets_the_same_warning(tmp_path, where):
    if os.geteuid() != 0:
        pytest.skip("for root: other users get this from the two tests above")
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    path = readonly if where == "existing" else readonly / "cache"
    env = {k: v for k, v in os.environ.items() if k != compilation_cache.JAX_ENV}
    script = tmp_path / "setup_without_dac_override.py"
    script.write_text(_SETUP_WITHOUT_DAC_OVERRIDE)
    try:
        proc = subprocess.run(
            [sys.executable, str(script), str(path), "drop"],
            capture_output=True,
            text=True,
            env={**env, "JAX_PLATFORMS": "cpu"},
            timeout=300,
            check=False,
        )
    finally:
        readonly.chmod(0o700)
    if proc.returncode == 3:
        pytest.skip(f"this container does not let root drop capabilities: {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"warning: compilation cache: {path}: cannot be created or written" in proc.stdout, proc.stdout
    assert "returned None jax dir None" in proc.stdout, proc.stdout
    assert os.listdir(readonly) == []  # nothing created, no probe file left


def test_the_environment_variable_of_jax_wins(tmp_path, monkeypatch, capsys):
    theirs = str(tmp_path / "theirs")
    monkeypatch.setenv(compilation_cache.JAX_ENV, theirs)
    jax.config.update("jax_compilation_cache_dir", theirs)  # what JAX read from the variable at import
    assert compilation_cache.setup(str(tmp_path / "ours")) == theirs
    assert jax.config.jax_compilation_cache_dir == theirs
    assert not (tmp_path / "ours").exists()
    out = capsys.readouterr().out
    assert theirs in out and compilation_cache.JAX_ENV in out


def test_min_compile_time_from_the_environment_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv(compilation_cache.MIN_TIME_ENV, "7")
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 7.0)
    compilation_cache.setup(str(tmp_path / "cache"), min_compile_time_secs=0.0)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 7.0
    monkeypatch.delenv(compilation_cache.MIN_TIME_ENV)
    compilation_cache.setup(str(tmp_path / "cache"), min_compile_time_secs=0.0)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0


def test_default_directory_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    want = str(tmp_path / "xdg" / "skeljax" / "jax")
    assert compilation_cache.default_dir() == want
    assert schema.base_config().compilation_cache_dir == want
    assert compilation_cache.setup(schema.base_config().compilation_cache_dir) == want
    assert os.path.isdir(want)

    monkeypatch.delenv("XDG_CACHE_HOME")
    assert schema.base_config().compilation_cache_dir == "~/.cache/skeljax/jax"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid per the XDG spec: ignored
    assert compilation_cache.default_dir() == "~/.cache/skeljax/jax"


def test_none_and_quoted_empty_strings_are_off_and_a_path_object_is_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for off in (None, "''", '""'):
        assert compilation_cache.setup(off) is None
        assert jax.config.jax_compilation_cache_dir is None
    assert os.listdir(tmp_path) == []
    assert compilation_cache.setup(tmp_path / "cache") == str(tmp_path / "cache")
    c = schema.base_config()
    c.compilation_cache_dir = ""
    schema.validate(c)


# ---------------------------------------------------------------------------------------------------------------
# The command lines (skeljax-predict, -export, -visualize, zoo get): the same default directory, --no-cache.
# ---------------------------------------------------------------------------------------------------------------


def test_a_command_line_uses_the_default_directory_quietly_and_no_cache_turns_it_off(
    tmp_path, monkeypatch, events, capsys
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    want = str(tmp_path / "xdg" / "skeljax" / "jax")
    assert compilation_cache.setup_for_command(no_cache=False) == want == jax.config.jax_compilation_cache_dir
    assert capsys.readouterr().out == ""  # stdout is the command's output (skeljax-predict --json)
    _, (hits_first, hits_second) = _compile_twice(events)
    assert hits_first == 0 and hits_second == 1

    theirs = str(tmp_path / "theirs")  # --no-cache wins over $JAX_COMPILATION_CACHE_DIR too
    monkeypatch.setenv(compilation_cache.JAX_ENV, theirs)
    jax.config.update("jax_compilation_cache_dir", theirs)
    assert compilation_cache.setup_for_command(no_cache=True) is None
    assert jax.config.jax_compilation_cache_dir is None
    events.clear()
    _, (hits_first, hits_second) = _compile_twice(events)
    assert hits_first == hits_second == 0 and WRITE not in events and not os.path.exists(theirs)


@pytest.fixture(scope="module")
def predict_files(tmp_path_factory):
    """A small ST-GCN++ model directory and one .npy clip for skeljax-predict."""
    import dataclasses

    from flax import nnx

    from skeljax.models.model_dir import save_model
    from skeljax.models.stgcn import Recognizer, stgcnpp_spec

    d = tmp_path_factory.mktemp("predict_cache")
    spec = dataclasses.replace(stgcnpp_spec(60), base_channels=8, num_stages=2, inflate_stages=(2,), down_stages=(2,))
    model = Recognizer(spec, rngs=nnx.Rngs(0))
    model.eval()
    save_model(str(d / "model"), model)
    clip = np.random.default_rng(0).normal(size=(1, 30, 25, 3)).astype(np.float32)
    np.save(d / "clip.npy", clip)
    return str(d / "model"), str(d / "clip.npy")


@pytest.mark.parametrize("no_cache", [False, True])
def test_skeljax_predict_loads_its_programs_from_the_cache_the_second_time(
    tmp_path, monkeypatch, events, capsys, predict_files, no_cache
):
    from skeljax.predict import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    argv = ["--checkpoint", predict_files[0], "--input", predict_files[1], "--json"] + ["--no-cache"] * no_cache
    outputs = []
    for _ in range(2):  # two runs of the command; a new process would also start with empty in-memory caches
        jax.clear_caches()
        assert main(argv) == 0
        outputs.append(capsys.readouterr().out)
    assert json.loads(outputs[0]) == json.loads(outputs[1]) and len(json.loads(outputs[0])["top5"]) == 5
    entries = _entries(tmp_path / "xdg" / "skeljax" / "jax")
    if no_cache:
        assert HIT not in events and entries == []
    else:  # every program of the second run came from the directory: none was compiled twice
        assert events.count(HIT) >= 1 and events.count(HIT) == events.count(WRITE), events
        assert entries
