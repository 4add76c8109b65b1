"""skeljax.io.atomic: a write either lands whole at its path with the usual permissions, or leaves nothing."""

import os

import pytest

from skeljax.io.atomic import atomic_directory, atomic_file, atomic_path
from tests.helpers import mode


class Boom(Exception):
    pass


@pytest.mark.usefixtures("umask_027")
def test_file_lands_whole_with_umask_mode(tmp_path):
    target = tmp_path / "sub" / "out.bin"  # missing parents are created
    with atomic_file(target) as f:
        f.write(b"abc")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_bytes() == b"abc"
    assert mode(target) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600
    assert os.listdir(target.parent) == ["out.bin"]


@pytest.mark.usefixtures("umask_027")
def test_text_mode_and_existing_mode_kept(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    os.chmod(target, 0o604)
    with atomic_file(target, "w", encoding="utf-8") as f:
        f.write("néw")
    assert target.read_text(encoding="utf-8") == "néw"
    assert mode(target) == 0o604
    with pytest.raises(ValueError, match="'a'"), atomic_file(target, "a"):
        pass


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_failed_file_write_leaves_target_and_no_temp(tmp_path, exc):
    new, old = tmp_path / "new.bin", tmp_path / "old.bin"
    old.write_bytes(b"before")
    for target in (new, old):
        with pytest.raises(exc), atomic_file(target) as f:
            f.write(b"half")
            raise exc()
    assert not new.exists()
    assert old.read_bytes() == b"before"
    assert sorted(os.listdir(tmp_path)) == ["old.bin"]


@pytest.mark.usefixtures("umask_027")
def test_path_variant_keeps_suffix_and_cleans_up(tmp_path):
    target = tmp_path / "clip.gif"
    with atomic_path(target, suffix=".tmp.gif") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".tmp.gif")
        with open(tmp, "wb") as f:
            f.write(b"GIF89a")
    assert target.read_bytes() == b"GIF89a" and mode(target) == 0o640
    with pytest.raises(Boom), atomic_path(tmp_path / "other.gif") as tmp:
        with open(tmp, "wb") as f:
            f.write(b"x")
        raise Boom()
    assert sorted(os.listdir(tmp_path)) == ["clip.gif"]


@pytest.mark.usefixtures("umask_027")
def test_directory_lands_whole_replacing_old(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        assert ".tmp-" in os.path.basename(tmp) and not target.exists()
        with open(os.path.join(tmp, "a"), "w") as f:
            f.write("1")
    assert mode(target) == 0o750  # 0o777 & ~0o027, not mkdtemp's 0o700
    assert os.listdir(target) == ["a"]
    # replaces the old folder and its contents
    with atomic_directory(target) as tmp, open(os.path.join(tmp, "b"), "w") as f:
        f.write("2")
    assert os.listdir(target) == ["b"]
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_failed_directory_write_leaves_nothing(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(Boom), atomic_directory(target) as tmp:
        with open(os.path.join(tmp, "half"), "w") as f:
            f.write("x")
        raise Boom()
    assert os.listdir(tmp_path) == []
    os.mkdir(target)
    (target / "keep").write_text("k")
    with pytest.raises(Boom), atomic_directory(target):
        raise Boom()
    assert os.listdir(target) == ["keep"] and os.listdir(tmp_path) == ["model"]
