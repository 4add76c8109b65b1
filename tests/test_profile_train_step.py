"""scripts/profile_train_step.py: thunks are attributed to the pass and operation XLA's metadata names."""

import collections
import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "profile_train_step.py")

HLO = """HloModule jit_train_step

%fused_computation.1 (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %m = f32[4]{0} multiply(%p, %p), metadata={op_name="inner"}
}

%fused_computation.2 (p.1: f32[4,4]) -> f32[4,4] {
  %p.1 = f32[4,4]{1,0} parameter(0)
  ROOT %d = f32[4,4]{1,0} dot(%p.1, %p.1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_computation.3 (p.2: f32[], p.3: f32[4,4], p.4: f32[4,4]) -> f32[4] {
  %p.3 = f32[4,4]{1,0} parameter(1)
  %p.4 = f32[4,4]{1,0} parameter(2)
  %mul.1 = f32[4,4]{1,0} multiply(%p.3, %p.4)
  %p.2 = f32[] parameter(0)
  ROOT %r = f32[4]{0} reduce(%mul.1, %p.2), dimensions={0}, to_apply=%region_0
}

ENTRY %main (a: f32[4]) -> f32[4] {
  %a = f32[4]{0} parameter(0)
  %ynn_fusion.3 = f32[4]{0} fusion(%a), kind=kCustom, calls=%fused_computation.2, metadata={op_name="jit(train_step)/jvp()/dot_general"}
  %ynn_fusion.4 = f32[4]{0} fusion(%a), kind=kCustom, calls=%fused_computation.3, metadata={op_name="jit(train_step)/transpose(jvp())/reduce_sum"}
  %dot.5 = f32[4]{0} dot(%a, %a), metadata={op_name="jit(train_step)/transpose(jvp())/dot_general"}
  %add_bitcast_fusion.2 = f32[4]{0} fusion(%a), metadata={op_name="jit(train_step)/transpose(jvp())/add_any"}
  %mul_fusion = f32[4]{0} fusion(%a), metadata={op_name="jit(train_step)/mul[x=1]"}
  ROOT %relu_fusion = f32[4]{0} fusion(%a), metadata={op_name="jit(train_step)/jvp()/max"}
}
"""


def _load():
    spec = importlib.util.spec_from_file_location("profile_train_step", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_thunks_are_attributed_to_their_pass_and_operation(capsys):
    prof = _load()
    names = prof.op_names(HLO)
    assert names["add_bitcast_fusion.2"] == "jit(train_step)/transpose(jvp())/add_any"
    assert "m" not in names  # instructions of fused computations are not thunks
    # a library fusion is a product only when it holds a dot: YNNPACK also runs the step's reductions
    products = prof.product_thunks(HLO)
    assert products == {"ynn_fusion.3", "dot.5"}
    assert prof.category("ynn_fusion.3", names["ynn_fusion.3"], products) == ("forward", "matrix products")
    assert prof.category("ynn_fusion.4", names["ynn_fusion.4"], products) == ("backward", "reduce_sum")
    assert prof.category("add_bitcast_fusion.2", names["add_bitcast_fusion.2"], products) == ("backward", "add_any")
    assert prof.category("mul_fusion", names["mul_fusion"], products) == ("update and norms", "mul")
    times = collections.Counter({"ynn_fusion.3": 500.0, "add_bitcast_fusion.2": 300.0, "mul_fusion": 100.0})
    times["relu_fusion"] = 100.0
    prof.report(times, names, products, steps=2, top=3)
    out = capsys.readouterr().out
    assert out.startswith("thunk time per step: 0 ms (4 thunks)")
    assert "  50.0%  forward, matrix products" in out and "  30.0%  backward, other" in out
    assert "  10.0%  forward, other" in out and "  10.0%  update and norms, other" in out
    assert "  30.0%          backward  add_any" in out
