"""Tests for skeljax.io.pth against torch 2.13 as the reference reader/writer."""

import collections
import io
import os
import pickle
import struct
import sys
import warnings
import zipfile

import ml_dtypes
import numpy as np
import pytest
import torch

from skeljax.io.pth import CheckpointFormatError, UnsafePickleError, extract_state_dict, load_pth, save_pth
from skeljax.testing import torch_reference

TORCH_TO_NP = {
    torch.float32: np.float32,
    torch.float16: np.float16,
    torch.float64: np.float64,
    torch.int64: np.int64,
    torch.int32: np.int32,
    torch.int16: np.int16,
    torch.int8: np.int8,
    torch.uint8: np.uint8,
    torch.bool: np.bool_,
    torch.bfloat16: ml_dtypes.bfloat16,
    torch.uint16: np.uint16,
}


def assert_matches_torch(ours, ref, where="obj"):
    """Recursive equality of our NumPy result with what torch.load returned (tensors, containers, scalars)."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, np.ndarray), where
        assert ours.dtype == np.dtype(TORCH_TO_NP[ref.dtype]), where
        assert ours.shape == tuple(ref.shape), where
        if ref.numel():
            assert ours.strides == tuple(s * ref.element_size() for s in ref.stride()), where
        ref_np = ref.detach().view(torch.int16).numpy() if ref.dtype == torch.bfloat16 else ref.detach().numpy()
        ours_cmp = ours.view(np.int16) if ref.dtype == torch.bfloat16 else ours
        np.testing.assert_array_equal(ours_cmp, ref_np, err_msg=where)
    elif isinstance(ref, dict):
        assert type(ours) is type(ref), where
        assert list(ours) == list(ref), where
        for k in ref:
            assert_matches_torch(ours[k], ref[k], f"{where}[{k!r}]")
    elif isinstance(ref, (list, tuple)):
        assert type(ours) is type(ref) and len(ours) == len(ref), where
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_matches_torch(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(ref) and ours == ref, (where, ours, ref)


def mmcv_checkpoint():
    """A checkpoint shaped like mmcv's save_checkpoint output, with the awkward tensor layouts."""
    g = torch.Generator().manual_seed(0)
    # A real module's state_dict: an OrderedDict whose `_metadata` attribute the pickle restores with BUILD.
    sd = torch.nn.ModuleDict({"data_bn": torch.nn.BatchNorm1d(75)}).state_dict(prefix="backbone.")
    assert sd._metadata
    sd["backbone.gcn.0.gcn.conv.weight"] = torch.randn(192, 3, 1, 1, generator=g)
    sd["backbone.gcn.0.gcn.conv.bias"] = torch.randn(192, generator=g)
    sd["backbone.data_bn.running_var"].copy_(torch.rand(75, generator=g) + 0.5)
    sd["backbone.data_bn.num_batches_tracked"].fill_(12345)
    sd["backbone.gcn.0.gcn.A"] = torch.randn(25, 25, 3, generator=g).permute(2, 0, 1)  # non-contiguous
    shared = torch.arange(24, dtype=torch.float32)
    sd["shared.a"] = shared[:12].view(3, 4)  # two overlapping views of one storage, one with an offset
    sd["shared.b"] = shared[6:].view(3, 6)
    sd["half.weight"] = torch.randn(4, 5, generator=g).half()
    sd["empty"] = torch.zeros(0, 3)
    meta = {
        "mmcv_version": "1.3.18",
        "time": "Sat Jun 18 12:00:00 2022",
        "epoch": 16,
        "iter": 250000,
        "seed": -12,
        "big": 2**40,
        "lr": 0.1,
        "flag": True,
        "none": None,
        "CLASSES": ("a", "b"),
        "config": "model = dict(type='RecognizerGCN')\n",
        "raw": b"\x00\xffbytes",
        "tags": {"ntu60", "xsub"},
        "frozen": frozenset({3}),
        "hook_msgs": {"best_score": np.float64(0.91), "best_ckpt": "/w/best_top1_acc_epoch_16.pth", "last": [1, 2]},
    }
    optimizer = {
        "state": {0: {"momentum_buffer": torch.randn(192, 3, 1, 1, generator=g)}},
        "param_groups": [{"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "params": [0]}],
    }
    return {"meta": meta, "state_dict": sd, "optimizer": optimizer}


@pytest.fixture(scope="module")
def ckpt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "epoch_16.pth"
    torch.save(mmcv_checkpoint(), path)
    return path


def rewrite_zip(src, dst, edit):
    """Copy a zip, replacing records: edit(name, data) -> new data, or None to drop the record."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)


def write_zip(path, pkl, storages=()):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", "little")
        for i, data in enumerate(storages):
            zf.writestr(f"archive/data/{i}", data)
        zf.writestr("archive/version", "3\n")


# ------------------------------------------------------------------------------------------------ reading


def test_reads_mmcv_checkpoint_exactly_like_torch(ckpt_file):
    ours = load_pth(ckpt_file)
    ref = torch.load(ckpt_file, map_location="cpu", weights_only=False)
    assert_matches_torch(ours, ref)
    assert ours["state_dict"]._metadata == ref["state_dict"]._metadata
    assert type(ours["meta"]["hook_msgs"]["best_score"]) is np.float64
    sd = ours["state_dict"]
    assert not sd["backbone.gcn.0.gcn.A"].flags.c_contiguous
    nbt = sd["backbone.data_bn.num_batches_tracked"]
    assert nbt.shape == () and nbt.dtype == np.int64 and nbt == 12345
    # Views of one storage stay views, as in torch: element 8 of the storage is a[2, 0] and b[0, 2].
    assert np.shares_memory(sd["shared.a"], sd["shared.b"])
    sd["shared.a"][2, 0] = -1.0
    assert sd["shared.b"][0, 2] == -1.0


def test_reads_legacy_format(tmp_path):
    path = tmp_path / "legacy.pth"
    torch.save(mmcv_checkpoint(), path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    assert_matches_torch(load_pth(path), torch.load(path, weights_only=False))


def test_reads_parameters_v3_tensors_and_torch_values(tmp_path):
    path = tmp_path / "misc.pth"
    obj = {
        "param": torch.nn.Parameter(torch.ones(2, 3)),
        "u16": torch.tensor([1, 60000, 7]).to(torch.uint16),  # saved through _rebuild_tensor_v3 + 'torch uint16'
        "bf16": torch.tensor([1.5, -2.25]).to(torch.bfloat16),
        "int8": torch.tensor([-3, 4], dtype=torch.int8),
        "bool": torch.tensor([True, False]),
        "dtype": torch.float32,
        "size": torch.Size([2, 3]),
    }
    torch.save(obj, path)
    ours = load_pth(path)
    ref = torch.load(path, weights_only=False)
    for key in ("param", "u16", "bf16", "int8", "bool"):
        assert_matches_torch(ours[key], ref[key], key)
    assert ours["dtype"] == np.dtype(np.float32)
    assert ours["size"] == (2, 3)


def _as_numpy1_pickle(data):
    """data.pkl as numpy 1.x wrote it: the same opcodes, with the numpy.core module path."""
    for name in (b"scalar", b"_reconstruct"):
        old = b"numpy._core.multiarray\n" + name + b"\n"
        assert old in data
        data = data.replace(old, b"numpy.core.multiarray\n" + name + b"\n")
    return data


def test_numpy1_module_path_protocol2(tmp_path):
    src, dst = tmp_path / "np2.pth", tmp_path / "np1.pth"
    ckpt = mmcv_checkpoint()
    ckpt["meta"]["hist"] = np.array([[1.5, 2.0]], dtype=np.float32)
    torch.save(ckpt, src)
    rewrite_zip(src, dst, lambda n, d: _as_numpy1_pickle(d) if n.endswith("data.pkl") else d)
    with zipfile.ZipFile(dst) as zf:
        pkl = zf.read("np2/data.pkl")
    assert pkl[:2] == b"\x80\x02" and b"numpy.core.multiarray\nscalar\n" in pkl and b"numpy._core" not in pkl
    with pytest.raises(pickle.UnpicklingError):  # the problem this reader exists for
        torch.load(dst, weights_only=True)
    ours = load_pth(dst)
    assert type(ours["meta"]["hook_msgs"]["best_score"]) is np.float64
    assert ours["meta"]["hook_msgs"]["best_score"] == 0.91
    np.testing.assert_array_equal(ours["meta"]["hist"], ckpt["meta"]["hist"])
    assert ours["meta"]["hist"].dtype == np.float32
    assert_matches_torch(ours["state_dict"], torch.load(src, weights_only=False)["state_dict"])


@pytest.mark.parametrize("zip_format", [True, False])
def test_released_style_fixtures(tmp_path, zip_format):
    # skeljax/testing/torch_reference.py writes files the way PYSKL / MMAction2 0.x did in 2022 (numpy 1.x globals).
    sd = mmcv_checkpoint()["state_dict"]
    for style in torch_reference.CHECKPOINT_STYLES:
        path = tmp_path / f"{style}.pth"
        torch_reference.save_released_checkpoint(sd, path, style=style, numpy1_style=True, zip_format=zip_format)
        ours = load_pth(path)
        if style != "bare":
            assert "numpy.core.multiarray scalar" in torch_reference.pickle_globals(path)
            assert type(ours["meta"]["hook_msgs"]["best_score"]) is np.float64
            assert ours["meta"]["hook_msgs"]["best_score"] == 0.8930
        got = extract_state_dict(ours, path)
        assert list(got) == list(sd)
        for key, t in sd.items():
            assert_matches_torch(got[key], t, key)


def test_hand_written_numpy1_scalar_pickle(tmp_path):
    # {'best_score': numpy.float64(0.91)} in protocol 2 as numpy 1.x emits it: dtype('f8', 0, 1) plus BUILD state.
    payload = struct.pack("<d", 0.91).decode("latin1").encode("utf-8")
    pkl = (
        b"\x80\x02}X\x0a\x00\x00\x00best_score"
        b"cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00f8K\x00K\x01\x87R"
        b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"c_codecs\nencode\nX" + struct.pack("<I", len(payload)) + payload + b"X\x06\x00\x00\x00latin1\x86R"
        b"\x86Rs."
    )
    write_zip(tmp_path / "hand.pth", pkl)
    value = load_pth(tmp_path / "hand.pth")["best_score"]
    assert type(value) is np.float64 and value == 0.91


def test_big_endian_file(tmp_path):
    src, dst = tmp_path / "le.pth", tmp_path / "be.pth"
    sd = collections.OrderedDict(w=torch.randn(3, 4), n=torch.tensor(7), h=torch.randn(5).half())
    torch.save({"state_dict": sd}, src)
    sizes = {"0": 4, "1": 8, "2": 2}

    def to_big(name, data):
        if name.endswith("byteorder"):
            return b"big"
        key = name.rsplit("/", 1)[-1]
        if "/data/" in name:
            return np.frombuffer(data, f"<u{sizes[key]}").byteswap().tobytes()
        return data

    rewrite_zip(src, dst, to_big)
    ref = torch.load(dst, weights_only=True)
    assert torch.equal(ref["state_dict"]["w"], sd["w"])  # the rewrite is a valid big-endian file
    ours = load_pth(dst)
    assert_matches_torch(ours, ref)
    assert all(a.dtype.byteorder in "<=|" for a in ours["state_dict"].values())


def test_trusted_path_matches(ckpt_file):
    ours = load_pth(ckpt_file, trusted=True)
    assert_matches_torch(ours, torch.load(ckpt_file, weights_only=False))
    assert type(ours["state_dict"]) is collections.OrderedDict


def test_trusted_without_torch_is_a_clear_error(ckpt_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"trusted=True\) needs PyTorch") as err:
        load_pth(ckpt_file, trusted=True)
    assert str(ckpt_file) in str(err.value)


# ------------------------------------------------------------------------------------------------ writing


def test_save_pth_reads_back_in_torch_weights_only(tmp_path):
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((4, 3)).astype(np.float32)
    sd = collections.OrderedDict()
    sd["conv.weight"] = rng.standard_normal((8, 3, 9, 1)).astype(np.float32)
    sd["bn.num_batches_tracked"] = np.array(17, dtype=np.int64)
    sd["f16"] = rng.standard_normal(6).astype(np.float16)
    sd["f64"] = rng.standard_normal((2, 2))
    sd["i32"] = np.arange(-3, 3, dtype=np.int32)
    sd["u8"] = np.arange(250, 256, dtype=np.uint8)
    sd["mask"] = np.array([True, False, True])
    sd["i8"] = np.array([-128, 127], dtype=np.int8)
    sd["bf16"] = np.array([1.5, -3.0], dtype=ml_dtypes.bfloat16)
    sd["transposed"] = rng.standard_normal((3, 5)).astype(np.float32).T  # non-contiguous input
    sd["big_endian"] = np.arange(4, dtype=">f4")
    sd["empty"] = np.zeros((0, 3), np.float32)
    sd["tied.a"] = shared
    sd["tied.b"] = shared  # the same array twice: one storage, like tied weights in torch
    meta = {
        "epoch": 3,
        "lr": 0.05,
        "name": "stgcn++",
        "nested": {"x": [1, 2.5, None, True], "t": (1, "a")},
        "score": np.float64(0.75),
        "neg": -(2**40),
        "raw": b"\x00\x01\xfe",
    }
    path = tmp_path / "out.pth"
    save_pth(path, {"state_dict": sd, "meta": meta})

    ref = torch.load(path, map_location="cpu", weights_only=True)
    assert type(ref["state_dict"]) is collections.OrderedDict and list(ref["state_dict"]) == list(sd)
    for key, arr in sd.items():
        t = ref["state_dict"][key]
        assert t.dtype == {np.dtype(v): k for k, v in TORCH_TO_NP.items()}[arr.dtype.newbyteorder("=")], key
        assert tuple(t.shape) == arr.shape, key
        got = t.view(torch.int16).numpy().view(ml_dtypes.bfloat16) if t.dtype == torch.bfloat16 else t.numpy()
        np.testing.assert_array_equal(got, arr, err_msg=key)
    assert ref["state_dict"]["bn.num_batches_tracked"].dim() == 0
    assert ref["state_dict"]["tied.a"].data_ptr() == ref["state_dict"]["tied.b"].data_ptr()
    expected_meta = dict(meta, score=0.75)
    assert ref["meta"] == expected_meta and type(ref["meta"]["score"]) is float

    back = load_pth(path)
    assert list(back["state_dict"]) == list(sd)
    for key, arr in sd.items():
        assert back["state_dict"][key].dtype == arr.dtype.newbyteorder("<") or arr.dtype.itemsize == 1, key
        np.testing.assert_array_equal(back["state_dict"][key], arr, err_msg=key)
    assert back["meta"] == expected_meta


def test_save_pth_layout_is_aligned_and_deterministic(tmp_path):
    obj = {"a": np.arange(3, dtype=np.float32), "b": np.ones((2, 5)), "c": np.array(1)}
    save_pth(tmp_path / "one.pth", obj)
    save_pth(tmp_path / "two.pth", obj)
    assert (tmp_path / "one.pth").read_bytes() == (tmp_path / "two.pth").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.pth") as zf:
        names = zf.namelist()
        assert names[0] == "archive/data.pkl" and "archive/byteorder" in names and "archive/version" in names
        raw = (tmp_path / "one.pth").read_bytes()
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            assert start % 64 == 0, info.filename
            assert raw[start : start + info.file_size] == zf.read(info)


def test_save_pth_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    save_pth(path, {"w": np.zeros(2, np.float32)})
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)  # atomic_file renames into place with os.replace
    with pytest.raises(OSError, match="disk gone"):
        save_pth(path, {"w": np.ones(1000, np.float32)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.pth"]  # no temporary file left behind

    with pytest.raises(TypeError, match=r"object.*obj\['bad'\]"):
        save_pth(tmp_path / "new.pth", {"bad": object()})
    with pytest.raises(TypeError, match="dtype <U1"):
        save_pth(tmp_path / "new.pth", {"bad": np.array(["x"])})
    assert sorted(os.listdir(tmp_path)) == ["model.pth"]


# ------------------------------------------------------------------------------------------------ unsafe input


class _Evil:
    """Pickles as a call of an arbitrary callable (what a malicious checkpoint does)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _unicode(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _evil_payloads(tmp_path):
    """(refused global, pickle bytes) pairs; each would create tmp_path/'pwned' if it were unpickled."""
    marker = tmp_path / "pwned"
    by_hand = [  # GLOBAL opcodes written out, as a hostile file would
        ("builtins.open", b"\x80\x02cbuiltins\nopen\n" + _unicode(str(marker)) + _unicode("w") + b"\x86R."),
        ("os.system", b"\x80\x02cos\nsystem\n" + _unicode(f"touch {marker}") + b"\x85R."),
    ]
    hidden = {"state_dict": {"w": np.zeros(1)}, "meta": {"x": _Evil(open, str(marker), "w")}}  # after a valid entry
    reduced = [
        (f"{open.__module__}.open", hidden),
        (f"{os.system.__module__}.system", [_Evil(os.system, f"touch {marker}")]),
        ("builtins.exec", _Evil(exec, f"open({str(marker)!r}, 'w')")),
    ]
    for protocol in (2, 4):  # protocol 4 names globals with STACK_GLOBAL instead of GLOBAL
        by_hand += [(name, pickle.dumps(obj, protocol=protocol)) for name, obj in reduced]
    return marker, by_hand


def test_payload_would_run_with_plain_pickle(tmp_path):
    marker, payloads = _evil_payloads(tmp_path)
    pickle.loads(payloads[0][1])  # control: the hand-written payload is live
    assert marker.exists()


def test_malicious_pickle_in_zip_is_refused_and_never_called(tmp_path):
    marker, payloads = _evil_payloads(tmp_path)
    for i, (name, pkl) in enumerate(payloads):
        path = tmp_path / f"evil_{i}.pth"
        write_zip(path, pkl)
        with pytest.raises(UnsafePickleError) as err:
            load_pth(path)
        assert str(err.value) == (
            f"refusing to unpickle '{name}' from {path}: not an allowed checkpoint type; "
            "pass trusted=True only for files you trust"
        )
        assert isinstance(err.value, ValueError)
        assert not marker.exists()


def test_malicious_bare_and_legacy_pickles_are_refused(tmp_path):
    marker, payloads = _evil_payloads(tmp_path)
    bare = tmp_path / "bare.pth"
    bare.write_bytes(payloads[1][1])
    with pytest.raises(UnsafePickleError, match=r"'os\.system' from .*bare\.pth"):
        load_pth(bare)
    legacy = tmp_path / "legacy.pth"
    header = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    legacy.write_bytes(header + payloads[0][1])
    with pytest.raises(UnsafePickleError, match=r"'builtins\.open' from .*legacy\.pth"):
        load_pth(legacy)
    assert not marker.exists()


def test_pickle_cannot_tamper_with_shared_objects(tmp_path, ckpt_file):
    # BUILD on an allow-listed global (a storage marker, a torch dtype) would change later loads: refused.
    globs = (b"ctorch\nFloatStorage\n", b"ctorch\nfloat32\n", b"ctorch._utils\n_rebuild_tensor_v2\n")
    for glob in globs + (b"ccollections\nOrderedDict\n", b"cnumpy\nndarray\n"):
        path = tmp_path / "tamper.pth"
        write_zip(path, b"\x80\x02" + glob + b"}X\x05\x00\x00\x00dtypeK\x01sb.")
        with pytest.raises(CheckpointFormatError, match="sets the state"):
            load_pth(path)
    assert_matches_torch(load_pth(ckpt_file), torch.load(ckpt_file, weights_only=False))


class _StorageRef:
    def __init__(self, dtype_storage, key, numel, location="cpu"):
        self.pid = ("storage", dtype_storage, key, location, numel)


class _TensorPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _StorageRef) else None


def _tensor_pickle(storage, offset, size, stride):
    t = _Evil(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, collections.OrderedDict())
    buf = io.BytesIO()
    _TensorPickler(buf, protocol=2).dump({"t": t})
    return buf.getvalue()


def test_out_of_bounds_tensor_views_are_refused(tmp_path):
    path = tmp_path / "oob.pth"
    four_floats = np.arange(4, dtype=np.float32).tobytes()
    ok = _tensor_pickle(_StorageRef(torch.FloatStorage, "0", 4, "cuda:0"), 0, (2, 2), (2, 1))  # a GPU-saved tensor
    write_zip(path, ok, [four_floats])
    np.testing.assert_array_equal(load_pth(path)["t"], [[0, 1], [2, 3]])  # control: the crafted file is valid
    np.testing.assert_array_equal(torch.load(path, map_location="cpu", weights_only=True)["t"], [[0, 1], [2, 3]])
    bad_cases = [
        ((_StorageRef(torch.FloatStorage, "0", 4), 1, (2, 2), (2, 1)), "reaches element 4"),
        ((_StorageRef(torch.FloatStorage, "0", 4), 0, (2, 2), (1000, 1)), "reaches element 1001"),
        ((_StorageRef(torch.FloatStorage, "0", 4), -1, (1,), (1,)), "bad tensor geometry"),
        ((_StorageRef(torch.FloatStorage, "0", 8), 0, (8,), (1,)), "has 16 bytes, expected 32"),
        ((_StorageRef(torch.FloatStorage, "1", 1), 0, (1,), (1,)), "missing storage record"),
    ]
    for args, message in bad_cases:
        write_zip(path, _tensor_pickle(*args), [four_floats])
        with pytest.raises(CheckpointFormatError, match=message) as err:
            load_pth(path)
        assert str(path) in str(err.value)


# ------------------------------------------------------------------------------------------------ corrupt input


def test_corrupt_and_foreign_files(tmp_path, ckpt_file):
    raw = ckpt_file.read_bytes()
    rng = np.random.default_rng(1)
    cases = {
        "truncated.pth": (raw[: len(raw) // 2], "corrupt or truncated zip"),
        "empty.pth": (b"", "empty file"),
        "random.pth": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a PyTorch checkpoint"),
        "notes.txt": (b"model = dict(type='RecognizerGCN')\n", "not a PyTorch checkpoint"),
        "plain_pickle.pkl": (pickle.dumps({"a": 1}, protocol=2), "plain pickle"),
        "top_level_list.pth": (None, "top level is list"),
        "bad_byteorder.pth": (None, "unknown byteorder"),
        "no_data_pkl.zip": (None, "without <dir>/data.pkl"),
        "cut_pickle.pth": (None, "corrupt pickle"),
        "scripted.pt": (None, "TorchScript archive"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        if name == "top_level_list.pth":
            torch.save([torch.zeros(1)], path)
        elif name == "bad_byteorder.pth":
            rewrite_zip(ckpt_file, path, lambda n, d: b"middle" if n.endswith("byteorder") else d)
        elif name == "no_data_pkl.zip":
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("readme.txt", "hello")
        elif name == "scripted.pt":
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; such files still exist
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
        elif name == "cut_pickle.pth":
            rewrite_zip(ckpt_file, path, lambda n, d: d[: len(d) // 2] if n.endswith("data.pkl") else d)
        else:
            path.write_bytes(data)
        with pytest.raises(CheckpointFormatError, match=message) as err:
            load_pth(path)
        assert str(path) in str(err.value), name


def test_legacy_truncated_storage(tmp_path):
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.arange(100.0)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointFormatError, match="truncated legacy storage"):
        load_pth(path)


def test_legacy_tar_format_is_named(tmp_path):
    import tarfile

    path = tmp_path / "old.pth"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("pickle")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(CheckpointFormatError, match="tar .* not supported; re-save it with torch >= 1.6"):
        load_pth(path)


# ------------------------------------------------------------------------------------------------ state dicts


def test_extract_state_dict(ckpt_file):
    ckpt = load_pth(ckpt_file)
    sd = extract_state_dict(ckpt, ckpt_file)
    assert list(sd) == list(ckpt["state_dict"]) and sd["half.weight"] is ckpt["state_dict"]["half.weight"]
    ddp = collections.OrderedDict((f"module.{k}", v) for k, v in ckpt["state_dict"].items())
    assert list(extract_state_dict(ddp, "bare.pth")) == list(sd)  # bare state dict, DDP prefix removed
    assert list(extract_state_dict({"state_dict": ddp, "meta": {}}, "x.pth")) == list(sd)

    with pytest.raises(CheckpointFormatError, match=r"x\.pth: no tensors found"):
        extract_state_dict({"state_dict": {}}, "x.pth")
    with pytest.raises(CheckpointFormatError, match=r"y\.pth: .*not named tensors: 'meta' \(dict\)"):
        extract_state_dict({"meta": {}, "w": np.zeros(1)}, "y.pth")
    with pytest.raises(CheckpointFormatError, match="collides"):
        extract_state_dict({"module.w": np.zeros(1), "w": np.ones(1)}, "z.pth")
    with pytest.raises(CheckpointFormatError, match="list, not a dict"):
        extract_state_dict([np.zeros(1)], "l.pth")
