"""odtrack-hf: the ODTrack visual object tracker (AAAI 2024) in Hugging Face transformers form."""

from transformers import AutoConfig, AutoModel

from .configuration_odtrack import PRESETS, ODTrackConfig, odtrack_preset
from .modeling_odtrack import ODTrackModel, ODTrackOutput, ODTrackPreTrainedModel

AutoConfig.register("odtrack", ODTrackConfig, exist_ok=True)
AutoModel.register(ODTrackConfig, ODTrackModel, exist_ok=True)
# save_pretrained copies the defining modules next to the weights, so a saved folder (or Hub repo)
# loads with trust_remote_code=True where odtrack_hf is not installed
ODTrackConfig.register_for_auto_class()
ODTrackModel.register_for_auto_class("AutoModel")

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "ODTrackConfig",
    "ODTrackModel",
    "ODTrackOutput",
    "ODTrackPreTrainedModel",
    "odtrack_preset",
]
