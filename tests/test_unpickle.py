"""skeljax.io.unpickle.BuildCheckingUnpickler: the one use of CPython's private pure-Python unpickler.

The `.pth` reader refuses a pickle that sets the state of an object it did not make (BUILD on a shared object could
change how later files load). Only `pickle._Unpickler` lets a subclass step into BUILD, through its `dispatch` table.
These tests check that private contract directly, so a Python that changes it fails here, by name, rather than by
quietly letting BUILD through.
"""

from __future__ import annotations

import collections
import io
import pickle

import pytest

from skeljax.io.unpickle import BuildCheckingUnpickler, PickleContentError

CONTRACT = "CPython's private pickle._Unpickler changed; adapt skeljax.io.unpickle.BuildCheckingUnpickler"


class Settable:
    """A class with a __setstate__, to see whether BUILD reached it."""

    def __setstate__(self, state):
        self.state = state


class Recording(BuildCheckingUnpickler):
    """Accepts BUILD on OrderedDicts only and records every (target, state) it was asked about."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.asked: list[tuple[object, object]] = []

    def find_class(self, module, name):
        if (module, name) == (__name__, "Settable"):
            return Settable
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} not allowed here")

    def check_build(self, target, state):
        self.asked.append((target, state))
        if not isinstance(target, collections.OrderedDict):
            raise PickleContentError(f"refused BUILD on {type(target).__name__}")


def build_pickle(obj_class: str, state: bytes) -> bytes:
    """Protocol 2: GLOBAL obj_class, EMPTY_TUPLE, REDUCE (call it), `state` pushed, BUILD, STOP."""
    module, name = obj_class.rsplit(".", 1)
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R" + state + b"b."


def test_the_private_unpickler_is_there_with_the_parts_skeljax_uses():
    base = getattr(pickle, "_Unpickler", None)
    assert base is not None, CONTRACT + ": pickle._Unpickler is gone"
    assert isinstance(getattr(base, "dispatch", None), dict), CONTRACT + ": no class-level dispatch table"
    assert pickle.BUILD[0] in base.dispatch, CONTRACT + ": BUILD is not dispatched through the table"
    assert callable(getattr(base, "load_build", None)), CONTRACT + ": no load_build"
    assert issubclass(BuildCheckingUnpickler, base)
    # the subclass's own table: the base's is untouched, so other unpicklers keep the plain BUILD
    assert BuildCheckingUnpickler.dispatch is not base.dispatch
    assert base.dispatch[pickle.BUILD[0]] is base.load_build
    assert BuildCheckingUnpickler.dispatch[pickle.BUILD[0]] is not base.load_build


def test_build_goes_through_check_build_with_target_and_state():
    data = build_pickle("collections.OrderedDict", b"}X\x01\x00\x00\x00aK\x01s")  # state {'a': 1}
    u = Recording(data)
    obj = u.load()
    assert len(u.asked) == 1, CONTRACT + ": BUILD did not reach check_build"
    target, state = u.asked[0]
    assert target is obj and state == {"a": 1}, CONTRACT + ": check_build got the wrong stack entries"
    assert obj.a == 1  # the accepted state was applied (OrderedDict instances take attributes)


def test_a_refused_build_stops_before_the_state_is_set():
    data = build_pickle(f"{__name__}.Settable", b"X\x03\x00\x00\x00bad")
    u = Recording(data)
    with pytest.raises(PickleContentError, match="refused BUILD on Settable"):
        u.load()
    target, state = u.asked[0]
    assert isinstance(target, Settable) and state == "bad"
    assert not hasattr(target, "state"), "__setstate__ ran although check_build refused"
    # the same pickle through the plain pure-Python unpickler does set the state: the refusal is ours
    plain = pickle._Unpickler(io.BytesIO(data))
    plain.find_class = lambda module, name: Settable
    assert plain.load().state == "bad"


def test_the_base_class_refuses_every_build():
    data = build_pickle("collections.OrderedDict", b"}X\x01\x00\x00\x00aK\x01s")

    class NoCheck(BuildCheckingUnpickler):
        def find_class(self, module, name):
            return collections.OrderedDict

    with pytest.raises(PickleContentError, match="sets the state of a OrderedDict"):
        NoCheck(io.BytesIO(data)).load()


def test_pickles_without_build_load_as_usual():
    data = pickle.dumps({"x": [1, 2.5, "s", (None, True)]}, protocol=2)
    u = Recording(data)
    assert u.load() == {"x": [1, 2.5, "s", (None, True)]} and u.asked == []
