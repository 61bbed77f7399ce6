"""odtrack-hf: the ODTrack visual object tracker (AAAI 2024) in Hugging Face transformers form."""

from transformers import AutoConfig, AutoModel

from .configuration_odtrack import PRESETS, ODTrackConfig, odtrack_preset
from .modeling_odtrack import ODTrackModel, ODTrackOutput, ODTrackPreTrainedModel

AutoConfig.register("odtrack", ODTrackConfig, exist_ok=True)
AutoModel.register(ODTrackConfig, ODTrackModel, exist_ok=True)

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ODTrackConfig",
    "ODTrackModel",
    "ODTrackOutput",
    "ODTrackPreTrainedModel",
    "odtrack_preset",
]
