"""`kemo.machine`: the CPU model and ISA flags printed beside speed figures."""

from kemo.machine import FLAGS, cpu_info, describe_cpu

ZEN4 = """processor\t: 0
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni
processor\t: 1
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni
"""


def test_model_and_flags_from_cpuinfo():
    info = cpu_info(ZEN4)
    assert info["model"] == "AMD EPYC 9R14 96-Core Processor"
    assert info["flags"] == ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
    assert info["cores"] >= 1
    line = describe_cpu(info)
    assert line.startswith("AMD EPYC 9R14") and "avx512_bf16" in line


def test_this_machine_and_an_unknown_one():
    here = cpu_info()
    assert here["model"] and set(here["flags"]) <= set(FLAGS)
    bare = cpu_info("")
    assert bare["flags"] == [] and bare["model"]
    assert "none of" in describe_cpu(bare)
