"""NTU data by name, offline: PYSKL's published pickle comes from a local HTTP server standing in for
download.openmmlab.com ($SKELJAX_ZOO_MIRROR), is fetched once, prepared, and trained on by the main command; a cut
connection or a file that is not PYSKL's leaves nothing in the data directory; with downloads off, the one error
line names the manual directory and the file."""

import hashlib
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from skeljax.data import ntu_download, ntu_meta, ntu_standin
from skeljax.data.annotations import load_annotations
from skeljax.data.tfds_builders import load_source
from skeljax.io import download
from tests.http_server import Server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH60 = "/mmaction/pyskl/data/nturgbd/ntu60_3danno.pkl"  # PYSKL tools/data/README.md's link, written out
PATH120_2D = "/mmaction/pyskl/data/nturgbd/ntu120_hrnet.pkl"
# The recipe shrunk to a few steps: 8-sample batches of 16-frame clips, one pass, one test clip.
TINY = [
    "--config.num_epochs=1",
    "--config.data.repeat_times=1",
    "--config.batch_size=8",
    "--config.eval_batch_size=8",
    "--config.test_batch_size=8",
    "--config.model.bn_group=8",
    "--config.data.clip_len=16",
    "--config.data.test_num_clips=1",
    "--config.data.num_workers=0",
    "--config.test_last=false",
]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """A 40-sample PYSKL-format NTU-60 3D pickle and its bytes."""
    path = tmp_path_factory.mktemp("standin") / "ntu60_3danno.pkl"
    ntu_standin.write_ntu60_standin(path, 40, seed=1)
    return path, path.read_bytes()


@pytest.fixture
def server(monkeypatch):
    s = Server()
    monkeypatch.setenv("SKELJAX_ZOO_MIRROR", s.url)
    monkeypatch.delenv("SKELJAX_NO_DOWNLOAD", raising=False)
    yield s
    s.close()


def files_under(folder) -> list[str]:
    """Every file (not folder) under `folder`, relative to it."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def run_main(env_extra: dict, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO, **env_extra)
    cmd = [sys.executable, "-m", "skeljax.main", "--config", "configs/stgcnpp_ntu60.py:xsub_3d_j", *args]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


def test_published_urls():
    assert ntu_download.pyskl_url("ntu60_3danno.pkl") == "https://download.openmmlab.com" + PATH60
    assert sorted(ntu_download.PYSKL_FILES) == [
        "ntu120_3danno.pkl",
        "ntu120_hrnet.pkl",
        "ntu60_3danno.pkl",
        "ntu60_hrnet.pkl",
    ]
    with pytest.raises(ValueError, match="no such NTU file"):
        ntu_download.pyskl_url("ntu60_xsub_train.pkl")


def test_download_once_into_the_downloads_folder_then_reused(server, standin, tmp_path, capsys, monkeypatch):
    path, body = standin
    server.files[PATH60] = body
    data = tmp_path / "data"
    val = load_source("ntu60/xsub_3d", "val", data)
    assert server.requests == [PATH60]  # mirror kept the published path
    cached = data / "downloads" / "ntu60_3danno.pkl"
    assert cached.read_bytes() == body
    err = capsys.readouterr().err
    assert f"downloading {server.url}{PATH60} to {cached}" in err
    assert "no published checksum; downloaded sha256 " in err  # PYSKL publishes none: printed to record it
    assert "ntu60/xsub_3d train: 20/20 samples (100%)" in err  # the preparation's progress line
    want = {a["frame_dir"]: a for a in load_annotations(path)["annotations"]}
    assert len(val) == len(load_annotations(path)["split"]["xsub_val"]) == 20
    for i in range(len(val)):
        got = val[i]
        np.testing.assert_array_equal(got["keypoint"], want[got["frame_dir"]]["keypoint"])
        assert got["label"] == ntu_meta.ntu_label(got["frame_dir"])
    # Another benchmark of the same file: read from the downloads folder, not fetched again (downloads off or not).
    monkeypatch.setenv("SKELJAX_NO_DOWNLOAD", "1")
    assert len(load_source("ntu60/xview_3d", "train", data)) == 23
    assert server.requests == [PATH60]


def test_tfds_data_source_by_name(server, standin, tmp_path):
    """What a TFDS user types: the registered builder fetches its public file itself."""
    import tensorflow_datasets as tfds

    _, body = standin
    server.files[PATH60] = body
    kwargs = {"file_format": "array_record"}  # tfds.data_source reads array_record; TFDS's default needs TensorFlow
    ds = tfds.data_source("ntu60/xsub_3d", split="val", data_dir=str(tmp_path), builder_kwargs=kwargs)
    assert len(ds) == 20 and server.requests == [PATH60]


def test_shared_fetch_checks_what_is_recorded(server, tmp_path, monkeypatch):
    """skeljax.io.download, the fetch of the zoo and the datasets: a recorded size or digest that does not match
    keeps nothing; a matching one (or a published digest prefix) keeps the file."""
    body = b"x" * 1000
    server.files["/f.bin"] = body
    url, dest = "https://example.org/f.bin", tmp_path / "d" / "f.bin"
    with pytest.raises(download.DownloadError, match=r"size mismatch \(1000 bytes, expected 999\)"):
        download.fetch(url, dest, size=999, quiet=True)
    with pytest.raises(download.DownloadError, match="checksum mismatch"):
        download.fetch(url, dest, sha256="0" * 64, quiet=True)
    assert files_under(tmp_path) == []
    got = download.fetch(url, dest, sha256=hashlib.sha256(body).hexdigest()[:8], size=1000, quiet=True)
    assert got.downloaded and got.size == 1000 and dest.read_bytes() == body
    assert not download.fetch(url, dest).downloaded and len(server.requests) == 3
    for value, off in (("1", True), ("yes", True), ("", False), ("0", False), ("false", False)):
        monkeypatch.setenv("SKELJAX_NO_DOWNLOAD", value)
        assert download.downloads_disabled() is off, value
    monkeypatch.setenv("SKELJAX_NO_DOWNLOAD", "1")  # for every skeljax download: the zoo's and the pose models' too
    assert not download.fetch(url, dest).downloaded  # a file in place needs no download
    with pytest.raises(download.DownloadError, match=f"{url}: downloads are off .* {tmp_path / 'd' / 'g.bin'} does"):
        download.fetch(url, tmp_path / "d" / "g.bin")
    assert len(server.requests) == 3


def test_a_pickle_in_the_manual_dir_wins(server, standin, tmp_path):
    path, _ = standin
    manual = tmp_path / "data" / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "ntu60_3danno.pkl").write_bytes(path.read_bytes())
    assert len(load_source("ntu60/xsub_3d", "train", tmp_path / "data")) == 20
    assert server.requests == []


def test_cut_connection_leaves_nothing_and_a_rerun_downloads_again(server, standin, tmp_path):
    _, body = standin
    server.files[PATH60] = body
    server.cut.add(PATH60)
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=f"{PATH60}: connection cut after {len(body) // 2} of {len(body) + 4096}"):
        load_source("ntu60/xsub_3d", "train", data)
    assert files_under(data) == []
    server.cut.clear()
    assert len(load_source("ntu60/xsub_3d", "train", data)) == 20
    assert server.requests == [PATH60, PATH60]


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"<html><body>404 Not Found</body></html>", "not a readable annotation pickle"),
        (pickle.dumps([{"frame_dir": "S001C001P001R001A001"}], protocol=4), "expected PYSKL's"),
    ],
    ids=["error_page", "list_pickle"],
)
def test_a_file_that_is_not_pyskls_is_deleted(server, tmp_path, body, reason):
    server.files[PATH120_2D] = body
    data = tmp_path / "data"
    with pytest.raises(ntu_download.NotPysklPickle) as e:
        load_source("ntu120/xsub_2d", "train", data)
    message = str(e.value)
    cached = data / "downloads" / "ntu120_hrnet.pkl"
    assert message.startswith(f"{server.url}{PATH120_2D}: not a PYSKL annotation pickle (")
    assert reason in message and message.endswith(f"deleted the download {cached}")
    assert "\n" not in message
    assert files_under(data) == [] and not data.exists()  # the folder did not exist before


def test_main_with_a_file_that_is_not_pyskls_prints_one_error_line(server, tmp_path):
    server.files[PATH60] = b"<html>an error page</html>"
    data = tmp_path / "data"
    proc = run_main(
        {"SKELJAX_ZOO_MIRROR": server.url}, "--workdir", str(tmp_path / "w"), f"--config.data.data_dir={data}"
    )
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert f"{server.url}{PATH60}" in errors[0] and str(data / "downloads" / "ntu60_3danno.pkl") in errors[0]
    assert "Traceback" not in proc.stderr
    assert files_under(data) == []


def test_downloads_off_one_short_error_naming_the_manual_dir_and_file(tmp_path):
    """The NTU config on an empty data directory, downloads off: a short stderr (no traceback, instructions not
    repeated) naming where to put which file; nothing created."""
    data = tmp_path / "data"
    env = {"SKELJAX_NO_DOWNLOAD": "1", "SKELJAX_ZOO_MIRROR": "http://127.0.0.1:9"}  # nothing listens there
    proc = run_main(env, "--workdir", str(tmp_path / "w"), f"--config.data.data_dir={data}")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) <= 15, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    manual = data / "downloads" / "manual"
    assert f"no {manual / 'ntu60_3danno.pkl'} " in errors[0]
    assert "https://download.openmmlab.com" + PATH60 in errors[0] and "SKELJAX_NO_DOWNLOAD" in errors[0]
    assert f"{manual / 'nturgb+d_skeletons'}/" in errors[0]  # the raw alternative of the 3D configs
    assert proc.stderr.count("download.openmmlab.com") == 1
    assert files_under(data) == []
    # --verbose shows where it came from
    proc = run_main(env, "--workdir", str(tmp_path / "w"), f"--config.data.data_dir={data}", "--verbose")
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.splitlines()[-1] == errors[0]


def test_manual_only_formats_name_the_files(server, tmp_path, monkeypatch):
    data, manual = tmp_path / "data", tmp_path / "manual"
    with pytest.raises(FileNotFoundError, match=r"ntu60_3danno_original\.pkl nor the folder .*nturgb\+d_skeletons"):
        load_source("ntu60/xsub_3d_original", "train", data, manual_dir=manual)
    with pytest.raises(FileNotFoundError, match=r"ntu60_xview_train\.pkl and .*ntu60_xview_val\.pkl"):
        load_source("ntu60/xview_3d_mmaction0x", "train", data, manual_dir=manual)
    assert server.requests == []  # neither has a public file
    monkeypatch.setenv("SKELJAX_NO_DOWNLOAD", "1")
    with pytest.raises(FileNotFoundError, match=r"no .*manual/ntu120_hrnet\.pkl and downloads are off") as e:
        load_source("ntu120/xset_2d", "train", data, manual_dir=manual)
    assert "skeleton" not in str(e.value)  # 2D keypoints cannot come from the raw skeletons
    assert server.requests == [] and files_under(data) == []


@pytest.mark.slow
def test_main_command_downloads_prepares_trains_and_the_second_run_downloads_nothing(server, standin, tmp_path):
    _, body = standin
    server.files[PATH60] = body
    data, env = tmp_path / "data", {"SKELJAX_ZOO_MIRROR": server.url}
    common = [f"--config.data.data_dir={data}", *TINY]
    proc = run_main(env, "--workdir", str(tmp_path / "run"), *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.requests == [PATH60]
    assert os.path.isfile(tmp_path / "run" / "best" / "model_spec.json")
    assert "ntu60/xsub_3d train: 20/20 samples" in proc.stderr
    proc = run_main(env, "--workdir", str(tmp_path / "run"), "--mode", "eval", *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.requests == [PATH60]  # the second run downloads nothing
    assert "downloading" not in proc.stderr and "samples (100%)" not in proc.stderr  # nor prepares again
