"""The model zoo by name: every URL follows the published naming, and downloads (against a local HTTP server) are
verified, atomic and cached."""

import hashlib
import os
import re

import numpy as np
import pytest

import skeljax
from skeljax import zoo
from skeljax.models.model_dir import read_spec
from skeljax.testing import torch_reference as ref
from skeljax.zoo import __main__ as zoo_cli
from skeljax.zoo import download
from tests.http_server import Server

HOST = "https://download.openmmlab.com"
NAME = "stgcnpp_ntu60_xsub_3d_j"
PATH = "/mmaction/pyskl/ckpt/stgcnpp/stgcnpp_ntu60_xsub_3dkp/j.pth"
MM_NAME = "stgcn_mmaction0x_ntu60_xsub_2d_j"
MM_PATH = "/mmaction/skeleton/stgcn/stgcn_80e_ntu60_xsub_keypoint/stgcn_80e_ntu60_xsub_keypoint-e7bb9653.pth"


# ----------------------------------------------------------------------------------------------------------------
# Names and URLs, checked against the published tables' naming written out here.
# ----------------------------------------------------------------------------------------------------------------

# mmskeleton's links for the ST-GCN authors' checkpoints (`mmskeleton/utils/checkpoint.py`), written out.
ORIGINAL_URLS = {
    "stgcn_original_kinetics_j": "https://open-mmlab.s3.ap-northeast-2.amazonaws.com/mmskeleton/models/st-gcn/st_gcn.kinetics-6fa43f73.pth",
    "stgcn_original_ntu60_xsub_3d_j": "https://open-mmlab.s3.ap-northeast-2.amazonaws.com/mmskeleton/models/st-gcn/st_gcn.ntu-xsub-300b57d4.pth",
    "stgcn_original_ntu60_xview_3d_j": "https://open-mmlab.s3.ap-northeast-2.amazonaws.com/mmskeleton/models/st-gcn/st_gcn.ntu-xview-9ba67746.pth",
}


def published_url(name: str) -> str:
    """The URL PYSKL's `configs/stgcn++/README.md` / `configs/stgcn/README.md`, MMAction2 v0.24.1's
    `configs/skeleton/stgcn/README.md` or mmskeleton links for the model this name describes."""
    if name in ORIGINAL_URLS:
        return ORIGINAL_URLS[name]
    m = re.fullmatch(
        r"(stgcnpp|stgcn_pyskl|stgcn_vanilla|stgcn_mmaction0x)_(ntu60|ntu120)_(xsub|xview|xset)_(2d|3d)"
        r"_(j|b|jm|bm)",
        name,
    )
    assert m, name
    model, bench, split, kind, feat = m.groups()
    if model == "stgcn_mmaction0x":
        assert (bench, split, feat) == ("ntu60", "xsub", "j")
        return {
            "2d": HOST + MM_PATH,
            "3d": HOST + "/mmaction/skeleton/stgcn/stgcn_80e_ntu60_xsub_keypoint_3d/"
            "stgcn_80e_ntu60_xsub_keypoint_3d-13e7ccf0.pth",
        }[kind]
    annotation = {"3d": "3dkp", "2d": "hrnet"}[kind]
    family = "stgcnpp" if model == "stgcnpp" else "stgcn"
    return f"{HOST}/mmaction/pyskl/ckpt/{family}/{model}_{bench}_{split}_{annotation}/{feat}.pth"


def expected_names() -> set[str]:
    feats = ("j", "b", "jm", "bm")
    ntu = [("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset")]
    names = {
        f"{m}_{b}_{s}_{k}_{f}" for m in ("stgcnpp", "stgcn_pyskl") for b, s in ntu for k in ("3d", "2d") for f in feats
    }
    names |= {f"stgcn_vanilla_ntu60_{s}_{k}_{f}" for s in ("xsub", "xview") for k in ("3d", "2d") for f in feats}
    return names | {"stgcn_mmaction0x_ntu60_xsub_2d_j", "stgcn_mmaction0x_ntu60_xsub_3d_j"} | set(ORIGINAL_URLS)


def test_every_row_has_a_name_and_the_published_url():
    rows = zoo.zoo_rows()
    assert {r.name for r in rows} == expected_names() and len(rows) == len(expected_names())
    for r in rows:
        assert r.url == published_url(r.name), r.name
    # the model-zoo table's own link for the first ST-GCN++ row, letter for letter
    assert zoo.find_row(NAME).url == HOST + PATH
    top1 = {r.name: r.top1 for r in rows}
    assert (
        top1[NAME],
        top1["stgcn_pyskl_ntu120_xset_2d_bm"],
        top1["stgcn_vanilla_ntu60_xview_2d_bm"],
        top1[MM_NAME],
    ) == (89.3, 83.5, 86.5, 86.91)
    # the ST-GCN paper's Table 1 / 3 and the st-gcn README
    assert [top1[n] for n in ORIGINAL_URLS] == [31.6, 81.6, 88.8]
    assert download.expected_sha256_prefix(zoo.find_row("stgcn_original_ntu60_xview_3d_j")) == "9ba67746"


def test_list_prints_every_row(capsys):
    assert zoo_cli.main(["list"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.split()[1] != "pose"]  # pose models:
    assert len(lines) == len(expected_names())  # tests/test_pose_backends.py
    assert lines[0].split() == [NAME, "89.30", HOST + PATH]


def test_unknown_name_lists_close_matches(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKELJAX_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"unknown zoo model 'stgcnpp_ntu60_xsub_3dj'.*stgcnpp_ntu60_xsub_3d_j"):
        download.get("stgcnpp_ntu60_xsub_3dj")
    assert zoo_cli.main(["get", "stgcn_ntu60"]) == 1
    assert "unknown zoo model 'stgcn_ntu60'" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_mirror_keeps_the_path(monkeypatch):
    monkeypatch.delenv("SKELJAX_ZOO_MIRROR", raising=False)
    assert download.mirrored(HOST + PATH) == HOST + PATH
    monkeypatch.setenv("SKELJAX_ZOO_MIRROR", "http://10.0.0.5:8000")
    assert download.mirrored(HOST + PATH) == "http://10.0.0.5:8000" + PATH
    assert download.mirrored(HOST + PATH, "file:///srv/zoo/") == "file:///srv/zoo" + PATH  # --mirror wins
    with pytest.raises(ValueError, match="scheme and host"):
        download.mirrored(HOST + PATH, "10.0.0.5")


# ----------------------------------------------------------------------------------------------------------------
# Downloads from a local server.
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A small real PYSKL ST-GCN++ checkpoint (torch reference model) and its bytes."""
    tmodel = ref.build_pyskl_recognizer("stgcnpp", "nturgb+d", num_classes=60, seed=3)
    path = ref.save_released_checkpoint(tmodel, tmp_path_factory.mktemp("pth") / "j.pth", style="pyskl")
    with open(path, "rb") as f:
        return tmodel, f.read()


@pytest.fixture
def server(monkeypatch, tmp_path):
    s = Server()
    monkeypatch.setenv("SKELJAX_ZOO_MIRROR", s.url)
    monkeypatch.setenv("SKELJAX_CACHE", str(tmp_path / "cache"))
    yield s
    s.close()


def assert_same_weights(model, tmodel):
    """The skeljax model holds the torch model's tensors (those whose layout the two share: biases, BN, A, ...);
    the converter's logit parity itself is tests/test_convert.py's."""
    from skeljax.train import init_from

    mine = init_from.flat_model_state(model)
    theirs = {k: v.numpy() for k, v in tmodel.state_dict().items()}
    assert set(mine) == set(theirs)
    shared = [k for k in theirs if theirs[k].shape == np.shape(mine[k])]
    assert len(shared) > 400
    for k in shared:
        np.testing.assert_array_equal(np.asarray(mine[k]), theirs[k], err_msg=k)


def cache_files(tmp_path) -> list[str]:
    root = tmp_path / "cache"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_get_downloads_verifies_converts_then_is_instant(server, released, tmp_path, capsys):
    tmodel, body = released
    server.files[PATH] = body
    assert zoo_cli.main(["get", NAME]) == 0
    model_dir = capsys.readouterr().out.strip()
    assert model_dir == str(tmp_path / "cache" / NAME / "model")
    with open(tmp_path / "cache" / NAME / "j.pth", "rb") as f:
        assert f.read() == body
    assert not [p for p in cache_files(tmp_path) if ".part" in p]
    _, meta = read_spec(model_dir)
    assert meta["source"] == HOST + PATH and meta["zoo"]["name"] == NAME
    assert_same_weights(skeljax.load_model(model_dir), tmodel)

    assert server.requests == [PATH]
    assert download.get(NAME) == model_dir  # second get: no request, no conversion
    assert zoo.resolve(f"zoo:{NAME}") == model_dir
    assert zoo.resolve(f"zoo:{NAME}", want="pth") == str(tmp_path / "cache" / NAME / "j.pth")
    assert server.requests == [PATH]
    assert zoo.resolve("some/dir") == "some/dir"


def test_recorded_digest_is_checked(server, released, tmp_path, monkeypatch):
    _, body = released
    sha = hashlib.sha256(body).hexdigest()
    config = zoo.find_row(NAME).config  # a real config: `get` stores the row's test settings with the model
    row = zoo.ZooRow(config, "r", 1.0, f"{HOST}/x/stgcn-{sha[:8]}.pth", name="hashed")
    bad = zoo.ZooRow(config, "r", 1.0, f"{HOST}/x/full.pth", name="bad_full", sha256="0" * 64)
    monkeypatch.setattr(zoo.rows, "zoo_rows", lambda: [row, bad])
    server.files[f"/x/stgcn-{sha[:8]}.pth"] = server.files["/x/full.pth"] = body
    assert os.path.isdir(download.get("hashed", quiet=True))  # the name's digest prefix matches
    with pytest.raises(ValueError, match=r"checksum mismatch \(sha256 " + sha):
        download.get("bad_full", quiet=True)
    assert not (tmp_path / "cache" / "bad_full").exists()


def test_wrong_checksum_leaves_nothing(server, released, tmp_path, capsys):
    _, body = released  # a real checkpoint, but not the one whose sha256 starts e7bb9653
    server.files[MM_PATH] = body
    assert zoo_cli.main(["get", MM_NAME, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "expected e7bb9653" in err and MM_PATH in err
    assert cache_files(tmp_path) == []


def test_cut_connection_keeps_nothing_and_a_rerun_downloads_again(server, released, tmp_path):
    _, body = released
    server.files[PATH] = body
    server.cut.add(PATH)
    with pytest.raises(ValueError, match="connection cut"):
        download.get(NAME, quiet=True)
    assert cache_files(tmp_path) == []
    with pytest.raises(ValueError, match="connection cut"):  # nothing half-written was taken for the file
        zoo.resolve(f"zoo:{NAME}", want="pth")
    server.cut.clear()
    assert os.path.isdir(download.get(NAME, quiet=True))
    assert server.requests == [PATH] * 3


def test_mirror_flag_wins_over_the_environment(server, released, monkeypatch, capsys):
    _, body = released
    server.files[PATH] = body
    monkeypatch.setenv("SKELJAX_ZOO_MIRROR", "http://127.0.0.1:9")  # nothing listens there
    assert zoo_cli.main(["get", NAME, "--mirror", server.url, "--quiet"]) == 0
    assert server.requests == [PATH]
    assert zoo_cli.main(["list", "--mirror", server.url]) == 0
    assert server.url + PATH in capsys.readouterr().out


def test_zoo_name_wherever_a_checkpoint_path_is(server, released):
    from skeljax import predict
    from skeljax.train import init_from

    tmodel, body = released
    server.files[PATH] = body
    for model in (
        skeljax.load_pytorch_checkpoint(f"zoo:{NAME}"),
        init_from.load_source_model(f"zoo:{NAME}"),
        predict.load_predictor(f"zoo:{NAME}").model,
    ):
        assert_same_weights(model, tmodel)
    assert server.requests == [PATH]


def test_original_row_downloads_a_legacy_file_and_converts(server, tmp_path, monkeypatch):
    """An original ST-GCN file (pre-zip torch format, bare state dict) behind the row's path becomes a skeljax model
    of the stgcn_original family; the row's URL keeps mmskeleton's hashed name."""
    import dataclasses

    import torch

    from skeljax.testing import torch_reference_original as orig

    net = orig.OriginalSTGCN("ntu-rgb+d", 60)
    path = tmp_path / "st_gcn.pt"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)
    body = path.read_bytes()
    name = "stgcn_original_ntu60_xsub_3d_j"
    row = zoo.find_row(name)
    served = dataclasses.replace(row, sha256=hashlib.sha256(body).hexdigest())  # stands in for the released bytes
    monkeypatch.setattr(zoo.rows, "zoo_rows", lambda: [served])
    server.files["/mmskeleton/models/st-gcn/st_gcn.ntu-xsub-300b57d4.pth"] = body
    model = skeljax.load_model(download.get(name, quiet=True))
    assert model.spec.family == "stgcn_original" and model.spec.num_classes == 60
    np.testing.assert_array_equal(np.asarray(model.head.fc.weight[...]), net.fcn.weight.detach().numpy()[:, :, 0, 0].T)
