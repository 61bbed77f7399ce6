"""The compute dtype chosen when none is given: on the CPU bf16 autocast where the CPU has native bf16, else
dynamic int8 linear layers where PyTorch has the kernels; elsewhere the model's dtype."""

import numpy as np
import pytest
import torch
from conftest import tiny_config
from tracking_helpers import fixture_clip, save_fixture_tracker, write_video
from transformers import pipeline

from odtrack_hf import ODTrackInferenceSession, ODTrackModel, quantization, session_odtrack
from odtrack_hf.cli import main
from odtrack_hf.onnx_model import ODTrackOnnxModel
from odtrack_hf.session_odtrack import cpu_has_native_bf16, default_inference_dtype


@pytest.fixture(scope="module")
def tracker_dir(tmp_path_factory):
    return save_fixture_tracker(tmp_path_factory.mktemp("tracker"))


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(session_odtrack, "cpu_has_native_bf16", lambda *args: True)


@pytest.fixture
def session_dtypes(monkeypatch):
    """The ``dtype`` every tracking session is opened with, in order."""
    seen, original = [], ODTrackInferenceSession.__init__

    def spy(self, model, processor, **kwargs):
        seen.append(kwargs.get("dtype"))
        original(self, model, processor, **kwargs)

    monkeypatch.setattr(ODTrackInferenceSession, "__init__", spy)
    return seen


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", True),
        ("fpu sse avx2 amx_bf16 amx_tile", True),
        ("fpu sse avx avx2 fma", False),
        ("fpu sse avx2 avx512f avx512bw", False),  # AVX-512 alone emulates bf16
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert cpu_has_native_bf16(str(cpuinfo)) is native
    assert cpu_has_native_bf16(str(tmp_path / "missing")) is False


def test_bf16_or_int8_only_for_a_float32_model_on_the_cpu(monkeypatch):
    model = ODTrackModel(tiny_config()).eval()
    assert default_inference_dtype(model) == torch.float32  # conftest: a CPU with neither
    monkeypatch.setattr(session_odtrack, "int8_linear_supported", lambda: True)
    assert default_inference_dtype(model) == torch.qint8
    assert default_inference_dtype(object.__new__(ODTrackOnnxModel)) == torch.float32  # no PyTorch layers to quantise
    monkeypatch.setattr(session_odtrack, "cpu_has_native_bf16", lambda *args: True)
    assert default_inference_dtype(model) == torch.bfloat16  # faster than int8 where bf16 is native
    assert default_inference_dtype(model, "cuda") == torch.float32
    assert default_inference_dtype(model.to(torch.bfloat16)) == torch.bfloat16
    assert default_inference_dtype(model.to(torch.float16)) == torch.float16


def test_pipeline_default_is_resolved_and_float32_stays_available(tracker_dir, native_bf16, session_dtypes):
    frames, init_box, _ = fixture_clip()
    x, y, w, h = init_box
    tracker = pipeline("object-tracking", model=str(tracker_dir), device="cpu")
    default = tracker(list(frames[:3]), boxes=[x, y, x + w, y + h])
    float32 = tracker(list(frames[:3]), boxes=[x, y, x + w, y + h], dtype=torch.float32)
    assert session_dtypes == [torch.bfloat16, torch.float32]
    assert len(default) == len(float32) == 3


def test_cli_track_default_is_resolved_and_float32_stays_available(
    capsys, tmp_path, tracker_dir, native_bf16, session_dtypes
):
    frames, init_box, _ = fixture_clip()
    video = write_video(tmp_path / "clip.mp4", frames[:3])
    box = ",".join(str(v) for v in init_box)
    for extra in ([], ["--dtype", "float32"]):
        code = main(["track", str(video), "--box", box, "--model", str(tracker_dir), "--results", str(tmp_path / "b.txt"), *extra])
        assert code == 0, capsys.readouterr().err
        assert np.loadtxt(tmp_path / "b.txt", delimiter=",").shape == (3, 4)
    assert session_dtypes == [torch.bfloat16, torch.float32]


@pytest.mark.skipif(not quantization.int8_linear_supported(), reason="no dynamic int8 CPU kernels in this build")
def test_cli_track_without_native_bf16_defaults_to_int8(capsys, tmp_path, tracker_dir, session_dtypes, monkeypatch):
    monkeypatch.setattr(session_odtrack, "int8_linear_supported", lambda: True)
    frames, init_box, _ = fixture_clip()
    video = write_video(tmp_path / "clip.mp4", frames[:3])
    box = ",".join(str(v) for v in init_box)
    for extra, named in (([], "qint8"), (["--dtype", "qint8"], "qint8"), (["--dtype", "float32"], "float32")):
        code = main(["track", str(video), "--box", box, "--model", str(tracker_dir), "--results", str(tmp_path / "b.txt"), *extra])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert f"fps, {named}); boxes in" in out  # the summary names the compute path
        assert np.loadtxt(tmp_path / "b.txt", delimiter=",").shape == (3, 4)
    assert session_dtypes == [torch.qint8, torch.qint8, torch.float32]
