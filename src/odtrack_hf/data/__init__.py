"""Tracking datasets: readers of the official folder layouts and Hugging Face ``datasets`` export."""

from .hf_datasets import TRACKING_FEATURES, DatasetSource, export_parquet, sequences_to_dataset
from .sources import (
    SOURCES,
    COCOSource,
    FileSource,
    FolderSource,
    GOT10kSource,
    LaSOTExtSource,
    LaSOTSource,
    NfSSource,
    OTBSource,
    Sequence,
    SequenceSource,
    TNL2KSource,
    TrackingNetSource,
    UAV123Source,
)

__all__ = [
    "SOURCES",
    "TRACKING_FEATURES",
    "COCOSource",
    "DatasetSource",
    "FileSource",
    "FolderSource",
    "GOT10kSource",
    "LaSOTExtSource",
    "LaSOTSource",
    "NfSSource",
    "OTBSource",
    "Sequence",
    "SequenceSource",
    "TNL2KSource",
    "TrackingNetSource",
    "UAV123Source",
    "export_parquet",
    "sequences_to_dataset",
]
