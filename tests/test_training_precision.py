"""Precision from the hardware: bf16 autocast only where it is native (CUDA, AVX-512-BF16 / AMX CPUs)."""

from __future__ import annotations

import pytest

from sessrec_course.device import cpu_flags, use_bf16
from sessrec_course.training.common import TrainConfig

AVX2_FLAGS = {"fpu", "sse4_2", "avx", "avx2", "fma"}


@pytest.mark.parametrize(("device", "capability", "flags", "expected"), [
    ("cuda", "AVX2", AVX2_FLAGS, True),                       # the GPU has bf16 tensor cores
    ("cpu", "AVX2", AVX2_FLAGS, False),                       # emulated: several times slower
    ("cpu", "AVX512", AVX2_FLAGS | {"avx512f"}, False),       # AVX-512 without its bf16 extension
    ("cpu", "AVX512", AVX2_FLAGS | {"avx512f", "avx512_bf16"}, True),
    ("cpu", "AVX512", AVX2_FLAGS | {"amx_bf16", "amx_tile"}, True),
    ("cpu", "AMX", set(), True),                              # the capability alone says so too
    ("cpu", "DEFAULT", set(), False),
    ("mps", "DEFAULT", set(), False),
])
def test_auto_precision_follows_the_hardware(device, capability, flags, expected):
    assert use_bf16(None, device, capability, flags) is expected
    assert use_bf16("auto", device, capability, flags) is expected


def test_an_explicit_setting_wins_and_a_wrong_one_is_named():
    assert use_bf16(True, "cpu", "AVX2", AVX2_FLAGS) is True
    assert use_bf16(False, "cuda", "AVX2", AVX2_FLAGS) is False
    with pytest.raises(ValueError, match="'fast'"):
        use_bf16("fast", "cpu", "AVX2", AVX2_FLAGS)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()
    assert TrainConfig().bf16 is None  # the default is automatic


def test_this_box_decides_from_its_own_flags():
    torch = pytest.importorskip("torch")
    from sessrec_course.models import ModelConfig, build_model
    from sessrec_course.training.torch_callbacks import Precision
    from sessrec_course.training.torch_trainer import Callback, fit

    native = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    seen = []

    class Spy(Callback):  # the precision the training steps run in, as the Precision callback chose it
        def after_step(self, run):
            with run.autocast():
                seen.append(torch.is_autocast_enabled("cpu"))

    model = build_model(ModelConfig(name="gru", item_cardinality=8, hidden_size=8, max_length=4))
    for setting, expected in ((None, native), (True, True), (False, False)):
        seen.clear()
        fit(model, [torch.tensor([[2, 3, 4]])], TrainConfig(device="cpu", progress=False), [Precision(setting), Spy()])
        assert seen == [expected]  # an AVX2-only CPU trains in fp32
