"""odtrack-hf: the ODTrack visual object tracker (AAAI 2024) in Hugging Face transformers form."""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_odtrack import PRESETS, ODTrackConfig, odtrack_preset
from .image_processing_odtrack import ODTrackImageProcessor
from .model_loading import DEFAULT_MODEL_DIR, model_folder
from .modeling_odtrack import ODTrackModel, ODTrackOutput, ODTrackPreTrainedModel, ODTrackTemplateCache
from .pipeline_odtrack import ObjectTrackingPipeline
from .processing_odtrack import ODTrackProcessor
from .session_odtrack import ODTrackInferenceSession, ODTrackTrackingOutput, TemplateMemoryPolicy

AutoConfig.register("odtrack", ODTrackConfig, exist_ok=True)
AutoModel.register(ODTrackConfig, ODTrackModel, exist_ok=True)
# save_pretrained copies the defining modules next to the weights, so a saved folder (or Hub repo)
# loads with trust_remote_code=True where odtrack_hf is not installed
ODTrackConfig.register_for_auto_class()
ODTrackModel.register_for_auto_class("AutoModel")
AutoImageProcessor.register(ODTrackConfig, image_processor_classes={"torchvision": ODTrackImageProcessor}, exist_ok=True)
AutoProcessor.register(ODTrackConfig, ODTrackProcessor, exist_ok=True)
ODTrackImageProcessor.register_for_auto_class()
ODTrackProcessor.register_for_auto_class()

PIPELINE_REGISTRY.register_pipeline(
    "object-tracking",
    pipeline_class=ObjectTrackingPipeline,
    pt_model=AutoModel,
    default={"model": (str(DEFAULT_MODEL_DIR), None)},
    type="video",
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL_DIR",
    "PRESETS",
    "ODTrackConfig",
    "ODTrackImageProcessor",
    "ODTrackInferenceSession",
    "ODTrackModel",
    "ODTrackOutput",
    "ODTrackPreTrainedModel",
    "ODTrackTemplateCache",
    "ODTrackProcessor",
    "ODTrackTrackingOutput",
    "ObjectTrackingPipeline",
    "TemplateMemoryPolicy",
    "model_folder",
    "odtrack_preset",
]
