"""Test environment: an empty, offline Hugging Face home, set before transformers is imported."""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="odtrack-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from odtrack_hf import ODTrackConfig  # noqa: E402


@pytest.fixture(autouse=True)
def float32_by_default(monkeypatch):
    """The pipeline and ``odtrack track`` pick bf16 on CPUs with native bf16 and int8 linear layers on other
    CPUs; the suite's golden numbers are float32, so in-process tests see a CPU with neither
    (tests/test_default_dtype.py checks the choice)."""
    monkeypatch.setattr("odtrack_hf.session_odtrack.cpu_has_native_bf16", lambda *args: False)
    monkeypatch.setattr("odtrack_hf.session_odtrack.int8_linear_supported", lambda: False)


def tiny_config(**overrides) -> ODTrackConfig:
    """A few-hundred-kilobyte ODTrack with candidate elimination, for fast tests."""
    values = dict(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        template_size=32,
        search_size=64,
        pretrain_image_size=64,
        head_channels=16,
        ce_layers=[1, 2],
        ce_keep_ratios=[0.7, 0.7],
    )
    values.update(overrides)
    return ODTrackConfig(**values)


@pytest.fixture
def tiny_inputs():
    """Search crops (2, 3, 64, 64) and three templates (2, 3, 3, 32, 32)."""
    generator = torch.Generator().manual_seed(0)
    return (
        torch.randn(2, 3, 64, 64, generator=generator),
        torch.randn(2, 3, 3, 32, 32, generator=generator),
    )
