"""Smoke tests of the speed benchmarks (step_profile.py, isa_matmul.py, dense_cores.py,
dropout_bits.py; tiny shapes) and of the profile's bookkeeping (grouping, overlap, shares)."""

import json

import pytest

from conftest import load_benchmark as _load


step_profile = _load("step_profile")
isa_matmul = _load("isa_matmul")

HLO = """HloModule jit_train_step, entry_computation_layout={()->f32[]}

%fused_computation.1 (p0: f32[8,8]) -> f32[8,8] {
  %p0 = f32[8,8]{1,0} parameter(0)
  %zero = f32[] constant(0), metadata={op_name="jit(train_step)/jvp(backbone)/token_embedding/lt"}
  %zeros = f32[8,8]{1,0} broadcast(%zero), dimensions={}, metadata={op_name="jit(train_step)/jvp(backbone)/token_embedding/lt"}
  %max.1 = f32[8,8]{1,0} maximum(%p0, %zeros), metadata={op_name="jit(train_step)/jvp(backbone)/transformer_layer_0/self_attention_layer/softmax/max"}
  ROOT %exponential.1 = f32[8,8]{1,0} exponential(%p0), metadata={op_name="jit(train_step)/jvp(backbone)/transformer_layer_0/self_attention_layer/softmax/exp"}
}

%ynn_computation (a: f32[8,8], b: f32[8,8]) -> f32[8,8] {
  %a = f32[8,8]{1,0} parameter(0)
  %b = f32[8,8]{1,0} parameter(1)
  ROOT %dot.3 = f32[8,8]{1,0} dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

ENTRY %main.9 (x: f32[8,8], ids: s32[8]) -> f32[8,8] {
  %x = f32[8,8]{1,0} parameter(0)
  %ids = s32[8]{0} parameter(1)
  %ynn_fusion = f32[8,8]{1,0} fusion(%x, %x), kind=kCustom, calls=%ynn_computation
  %fusion.1 = f32[8,8]{1,0} fusion(%ynn_fusion), kind=kLoop, calls=%fused_computation.1
  %gather.2 = f32[8,8]{1,0} gather(%x, %ids), offset_dims={1}, metadata={op_name="jit(train_step)/jvp(backbone)/token_embedding/take"}
  %subtract.4 = f32[8,8]{1,0} subtract(%x, %x), metadata={op_name="jit(train_step)/adam_w/sub"}
  %rng.5 = u32[8,8]{1,0} add(%x, %x), metadata={op_name="jit(train_step)/jvp(dropout)/jit(_bernoulli)/jit(_uniform)/add"}
  ROOT %add.6 = f32[8,8]{1,0} add(%fusion.1, %gather.2), metadata={op_name="jit(train_step)/jvp(backbone)/transformer_layer_0/feedforward_layer_norm/add"}
}
"""


def test_parse_hlo_groups_ops_by_what_they_compute():
    """Fusions go by their opcodes, else by the scope of their non-trivial instructions
    (the constant XLA shared from the embedding's scope does not count)."""
    groups = step_profile.parse_hlo(HLO)
    assert groups["ynn_fusion"] == "matmul"
    assert groups["fusion.1"] == "attention"
    assert groups["gather.2"] == "embedding"
    assert groups["subtract.4"] == "optimizer"
    assert groups["rng.5"] == "dropout"
    assert groups["add.6"] == "elementwise"


def test_categorise_tf_kernels():
    cat = step_profile.categorise_tf
    assert cat("model/dense/BiasAdd", "_MklNativeFusedMatMul") == "matmul"
    assert cat("gradient_tape/x/self_attention_layer/einsum/Einsum", "Einsum") == "matmul"
    assert cat("x/self_attention_layer/softmax/Softmax", "Softmax") == "attention"
    assert cat("x/token_embedding/GatherV2", "GatherV2") == "embedding"
    assert cat("StatefulPartitionedCall/adam_w/Sub_3", "Sub") == "optimizer"
    assert cat("x/dropout/random_uniform", "RandomUniform") == "dropout"
    assert cat("x/layer_norm/add", "AddV2") == "elementwise"
    assert cat("x/self_attention_layer_norm/moments/Sum", "Sum") == "elementwise"


def test_summarise_counts_overlap_once_and_shares_sum_to_one():
    # two 4 ms matmuls at the same time on two cores, then 2 ms of attention; 10 ms wall
    events = [("matmul", 0.0, 4000.0), ("matmul", 0.0, 4000.0), ("attention", 5000.0, 2000.0)]
    out = step_profile.summarise(events, 0.010, steps=1)
    assert out["ms_per_step"]["matmul"] == pytest.approx(6 * 0.8)  # 10 ms of ops in 6 busy
    assert out["ms_per_step"]["attention"] == pytest.approx(2 * 0.6)
    assert out["ms_per_step"]["host"] == pytest.approx(4.0)
    assert sum(out["share"].values()) == pytest.approx(1.0)
    assert out["overlap"] == pytest.approx(10 / 6)


def test_onednn_verbose_lines_are_read():
    log = ("onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with AVX512BW, AVX512VL, and "
           "AVX512DQ extensions\n"
           "onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx512_core,undef,x,,,"
           "1x2:2x3,0.1\n")
    out = isa_matmul.onednn_findings(log)
    assert out["onednn_isa"].startswith("Intel AVX-512")
    assert out["onednn_primitives"] == {"matmul brg_matmul:avx512_core": 1}


def test_step_profile_tiny_on_both_backends(tmp_path):
    out = tmp_path / "profile.json"
    assert step_profile.main(["--tiny", "--rows", "32", "--steps", "1",
                              "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["backend"] for r in results] == ["jax", "tensorflow"]
    for r in results:
        assert r["op_events"] > 0, r
        assert r["ms_per_step"]["matmul"] > 0, r
        assert all(v >= 0 for v in r["ms_per_step"].values()), r
        assert sum(r["share"].values()) == pytest.approx(1.0, abs=0.01), r
        assert sum(r["ms_per_step"].values()) == pytest.approx(r["wall_ms_per_step"],
                                                               rel=0.01), r


def test_isa_matmul_tiny(tmp_path):
    out = tmp_path / "isa.json"
    assert isa_matmul.main(["--tiny", "--repeats", "2", "--runs", "jax", "tensorflow",
                            "--json", str(out)]) == 0
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    for r in results.values():
        assert all(r[case] > 0 for case in isa_matmul.CASES), r
    xla = results["jax"]["xla"]
    assert xla["hlo_dots"] + xla["ynn_fusions"] + xla["onednn_calls"] > 0, xla


def test_throughput_runs_only_settings_that_e5_throughput_has():
    """`step_profile.py --throughput` names settings e5_throughput knows, the three
    backends first."""
    e5 = _load("e5_throughput")
    assert step_profile.TRIED[:3] == ["baseline", "tensorflow", "torch"]
    assert set(step_profile.TRIED) <= set(e5.VARIANTS), set(step_profile.TRIED) - set(e5.VARIANTS)


def test_dense_cores_times_jax_on_one_core_and_on_all(tmp_path, capsys):
    dense_cores = _load("dense_cores")
    out = tmp_path / "dense.json"
    assert dense_cores.main(["--backends", "jax", "--repeats", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert sorted(r["cores"] for r in results)[0] == 1
    assert all(r["backend"] == "jax" and r["ms"] > 0 and r["gflop_per_s"] > 0 for r in results)
    assert "scaling" in capsys.readouterr().out


def test_dropout_bits_draws_the_same_keep_rate_with_each_generator():
    """The three mask generators the benchmark times keep ~90% of a step's values."""
    import jax.numpy as jnp

    dropout_bits = _load("dropout_bits")
    seed = jnp.array([1, 2], dtype=jnp.uint32)
    n = 12 * (2 * 4 * 16 * 384 + 4 * 12 * 16 * 16)  # every element, scaled by 1/0.9 if kept
    for generator in ("threefry", "philox", "xla_default"):
        kept = float(dropout_bits.masks_step(generator, batch=4, length=16)(seed)) * 0.9 / n
        assert abs(kept - 0.9) < 0.01, (generator, kept)

