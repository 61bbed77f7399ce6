"""Readers of tracking datasets in their official folder layouts (docs/official-implementation.md, "Training
clips and losses" and "Evaluation").

Every reader is a [`SequenceSource`]: a random-access collection of [`Sequence`] objects whose
annotations are read from disk when a sequence is accessed, and whose frames stay file paths until
[`Sequence.load_frame`] decodes one.
"""

import collections.abc
import configparser
import io
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from datasets import Image as ImageFeature
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
COCO_MIN_VISIBLE_SIDE = 50  # official COCO "visible": w > 50 and h > 50 pixels

# A frame is a file path, or a `datasets` image dict {"bytes": ..., "path": ...}.
FrameRef = str | dict

# One decoder for paths and `datasets` dicts, so both apply the same EXIF orientation.
_FRAME_DECODER = ImageFeature(mode="RGB")


@dataclass
class Sequence:
    """One annotated video, or one image of an image dataset.

    Attributes:
        name: sequence id, unique within its source; for benchmarks, the official result-file stem.
        frames: one reference per frame: a file path, or a ``datasets`` image dict ``{"bytes", "path"}``
            for sequences read from a Dataset. Frames are not decoded; see `load_frame`.
        boxes: ``(N, 4)`` float64 boxes ``(x, y, w, h)`` in pixels; NaN rows where a frame has no
            annotation (test sets that give only the first box, UAV123 out-of-view frames).
        visible: ``(N,)`` bool, the dataset's official visibility rule.
        object_class: class name where the dataset provides one.
        attributes: further metadata of the sequence, e.g. GOT-10k's ``meta_info.ini`` or TNL2K's
            language description.
    """

    name: str
    frames: collections.abc.Sequence[FrameRef]
    boxes: np.ndarray
    visible: np.ndarray
    object_class: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
        if not len(self.frames) == len(self.boxes) == len(self.visible):
            raise ValueError(
                f"Sequence {self.name!r}: {len(self.frames)} frames, {len(self.boxes)} boxes and "
                f"{len(self.visible)} visibility flags; there must be one of each per frame."
            )

    def __len__(self) -> int:
        return len(self.frames)

    def load_frame(self, index: int) -> Image.Image:
        """Decode frame ``index`` as an RGB PIL image (EXIF orientation applied, as OpenCV does)."""
        frame = self.frames[index]
        if not isinstance(frame, dict):
            frame = {"path": str(frame), "bytes": None}
        return _FRAME_DECODER.decode_example(frame)


class SequenceSource(collections.abc.Sequence):
    """The sequences of one dataset, read lazily: ``source[i]`` builds sequence ``i`` when asked.

    Attributes:
        dataset_name: the dataset's name in the official evaluation code (``"lasot"``, ``"uav"``, ...).
        is_video: ``False`` for image datasets (COCO), whose sequences are single images.
        names: the sequence names, in order.
    """

    dataset_name = ""
    is_video = True
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Sequence:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sequence index {index} out of range for {len(self)} sequences")
        return self._load(index % len(self))

    def _load(self, index: int) -> Sequence:
        raise NotImplementedError


class FileSource(SequenceSource):
    """A dataset in a folder layout; the subclasses read one layout each.

    Attributes:
        layout: the expected folder layout, quoted in errors.
        root: the dataset folder.
    """

    layout = ""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise self.layout_error(f"{self.root} is not a folder")
        self.names = []

    def layout_error(self, problem: str) -> ValueError:
        """A ``ValueError`` that states ``problem`` and the layout this reader expects."""
        layout = self.layout.replace("<root>", str(self.root))
        return ValueError(f"{type(self).__name__}: {problem}; expected {layout}.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, sequences={len(self)})"


# --- file helpers -----------------------------------------------------------------------------------


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: Path, natural: bool = True) -> list[str]:
    """Image files of ``folder``, naturally sorted (or lexicographically when ``natural=False``)."""
    if not folder.is_dir():
        return []
    names = [entry.name for entry in os.scandir(folder) if entry.name.lower().endswith(IMAGE_SUFFIXES)]
    return [str(folder / name) for name in sorted(names, key=natural_key if natural else None)]


def read_boxes(path: Path) -> np.ndarray:
    """``(N, 4)`` float64 boxes from a text file with one ``x, y, w, h`` row per frame, the values
    separated by commas, tabs or spaces; ``NaN`` is allowed."""
    try:
        boxes = np.loadtxt(io.StringIO(path.read_text().replace(",", " ")), dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: not a table of numbers ({error})") from None
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) == 0:
        raise ValueError(f"{path}: expected one 'x,y,w,h' row per frame, got an array of shape {boxes.shape}.")
    return boxes


def read_flags(path: Path, length: int) -> np.ndarray:
    """``length`` per-frame numbers from a label file (one per line, or comma-separated on one line)."""
    values = np.asarray(path.read_text().replace(",", " ").split(), dtype=np.float64)
    if len(values) != length:
        raise ValueError(f"{path}: {len(values)} values for {length} frames; expected one per frame.")
    return values


def has_area(boxes: np.ndarray) -> np.ndarray:
    """``w > 0 and h > 0`` per box; NaN boxes are not visible."""
    return (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def boxes_for_frames(boxes: np.ndarray, num_frames: int, where: Path) -> np.ndarray:
    """One box per frame: an annotation with only the first box (benchmark test sets, videos to track)
    is padded with NaN rows; any other count mismatch is an error."""
    if len(boxes) == num_frames:
        return boxes
    if len(boxes) == 1 and num_frames > 1:
        return np.concatenate([boxes, np.full((num_frames - 1, 4), np.nan)])
    raise ValueError(f"{where}: {len(boxes)} boxes for {num_frames} frames; give one box per frame or only the first.")


def read_split(filename: str) -> list[str]:
    """Entries of a split list shipped in ``odtrack_hf/data/splits`` (``#`` starts a comment line)."""
    text = resources.files(__package__).joinpath("splits", filename).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def subfolders(folder: Path) -> list[str]:
    """Names of the non-hidden sub-folders of ``folder``, naturally sorted."""
    return sorted((e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")), key=natural_key)


# --- folder of sequences (custom and GOT-10k) -------------------------------------------------------


def read_sequence_folder(folder: Path, name: str) -> Sequence:
    """A sequence folder in the GOT-10k layout: frames, ``groundtruth.txt`` and optional labels.

    Visibility is ``w, h > 0`` and, where the files exist, not ``absence.label`` (1 = absent),
    ``cover.label > 0`` (0 = fully covered) and ``visible.txt`` (1 = visible). GOT-10k's
    ``meta_info.ini`` becomes ``attributes`` and its ``object_class`` the class.
    """
    frames = list_frames(folder)
    if not frames:
        raise ValueError(f"{folder}: no frames ({', '.join(IMAGE_SUFFIXES)} files) found.")
    boxes = boxes_for_frames(read_boxes(folder / "groundtruth.txt"), len(frames), folder)
    visible = has_area(boxes)
    if (folder / "absence.label").is_file():
        visible &= read_flags(folder / "absence.label", len(frames)) == 0
    if (folder / "cover.label").is_file():
        visible &= read_flags(folder / "cover.label", len(frames)) > 0
    if (folder / "visible.txt").is_file():
        visible &= read_flags(folder / "visible.txt", len(frames)) == 1
    attributes = {}
    if (folder / "meta_info.ini").is_file():
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(folder / "meta_info.ini")
        attributes = {key: value for section in parser.sections() for key, value in parser[section].items()}
    return Sequence(name, frames, boxes, visible, attributes.get("object_class"), attributes)


class FolderSource(FileSource):
    """A folder with one sub-folder per sequence, the format for your own videos.

    Each sequence folder holds its frames (``.jpg``, ``.jpeg``, ``.png`` or ``.bmp``, in natural order:
    ``2.jpg`` before ``10.jpg``) and ``groundtruth.txt`` with one ``x,y,w,h`` row per frame (or only
    the first row, to track from it), separated by commas, tabs or spaces. Optional per-frame labels
    restrict visibility: ``absence.label`` (1 = absent), ``cover.label`` (0 = fully covered) or
    ``visible.txt`` (1 = visible). A GOT-10k split folder is a valid folder source.
    """

    dataset_name = "folder"
    layout = "<root>/<sequence>/{00000001.jpg, ...} (jpg/png) and <root>/<sequence>/groundtruth.txt"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        self.names = subfolders(self.root)
        if not self.names:
            raise self.layout_error(f"{self.root} has no sequence folders")
        missing = [name for name in self.names if not (self.root / name / "groundtruth.txt").is_file()]
        if missing:
            raise self.layout_error(f"{len(missing)} sequence folders lack groundtruth.txt (e.g. {missing[0]!r})")

    def _load(self, index: int) -> Sequence:
        return read_sequence_folder(self.root / self.names[index], self.names[index])


GOT10K_SPLITS = {
    "train": "got10k_train_split.txt",
    "val": "got10k_val_split.txt",
    "vot_train": "got10k_vot_train_split.txt",
    "vot_val": "got10k_vot_val_split.txt",
}


class GOT10kSource(FileSource):
    """GOT-10k: ``<root>/{train,val,test}/list.txt`` and one folder per sequence with ``00000001.jpg, ...``,
    ``groundtruth.txt``, ``absence.label``, ``cover.label`` and ``meta_info.ini`` (test: first box only).

    Visibility (official): not absent, ``cover > 0`` and ``w, h > 0``.

    Args:
        root: the GOT-10k folder that holds ``train/``, ``val/`` and ``test/``.
        subset: the folder to read: ``"train"``, ``"val"`` or ``"test"``.
        split: for ``subset="train"``, the official partition: ``None`` for all 9,335 sequences
            (``GOT10K_train_full``), ``"vot_train"`` (``GOT10K_vottrain``, ODTrack's training set),
            ``"vot_val"`` (``GOT10K_votval``), ``"train"`` or ``"val"`` (PyTracking's partition). The
            split files index the sorted sequence list, so they need the complete train folder.
    """

    dataset_name = "got10k"
    layout = "<root>/{train,val,test}/list.txt and <root>/<subset>/GOT-10k_Train_000001/{00000001.jpg, groundtruth.txt}"

    def __init__(self, root: str | os.PathLike, subset: str = "train", split: str | None = None):
        super().__init__(root)
        if subset not in ("train", "val", "test"):
            raise ValueError(f"GOT-10k subset must be 'train', 'val' or 'test', got {subset!r}.")
        if split is not None and (subset != "train" or split not in GOT10K_SPLITS):
            raise ValueError(
                f"GOT-10k split {split!r} is not defined for subset {subset!r}; splits of 'train' are "
                f"{', '.join(GOT10K_SPLITS)} (or None for all)."
            )
        self.folder = self.root / subset
        if not self.folder.is_dir():
            raise self.layout_error(f"{self.folder} is missing")
        listing = self.folder / "list.txt"
        # list.txt is the official sequence order; the split files index into it
        names = listing.read_text().split() if listing.is_file() else subfolders(self.folder)
        if not names or not (self.folder / names[0] / "groundtruth.txt").is_file():
            raise self.layout_error(f"no sequence with a groundtruth.txt in {self.folder}")
        if split is not None:
            indices = [int(entry) for entry in read_split(GOT10K_SPLITS[split])]
            if max(indices) >= len(names):
                raise ValueError(
                    f"GOT-10k split {split!r} indexes sequence {max(indices)} but {self.folder} lists only "
                    f"{len(names)}; the official splits need the complete train set (9,335 sequences)."
                )
            names = [names[i] for i in indices]
        self.names = names

    def _load(self, index: int) -> Sequence:
        return read_sequence_folder(self.folder / self.names[index], self.names[index])


# --- LaSOT ------------------------------------------------------------------------------------------


class LaSOTSource(FileSource):
    """LaSOT: ``<root>/<class>/<class>-<n>/img/00000001.jpg, ...`` with ``groundtruth.txt`` (comma),
    ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated line of 0/1).

    Frames are ``img/%08d.jpg`` for 1..N with N the number of boxes (official). Visibility (official):
    not fully occluded, not out of view, and ``w, h > 0``.

    Args:
        root: the LaSOT folder holding the class folders.
        split: ``"train"`` (the official 1,120 training sequences), ``"test"`` (the other sequences
            found: the 280 test videos in a complete copy) or ``None`` (every sequence found).
    """

    dataset_name = "lasot"
    layout = "<root>/<class>/<class>-<n>/img/00000001.jpg and <root>/<class>/<class>-<n>/groundtruth.txt"

    def __init__(self, root: str | os.PathLike, split: str | None = "train"):
        super().__init__(root)
        if split not in ("train", "test", None):
            raise ValueError(f"LaSOT split must be 'train', 'test' or None, got {split!r}.")
        if split == "train":
            names = read_split("lasot_train_split.txt")
            missing = [name for name in names if not self._annotation(name).is_file()]
            if missing:
                raise self.layout_error(
                    f"{len(missing)} of the {len(names)} training sequences are missing (e.g. {missing[0]!r}); "
                    "use split=None to read a partial copy"
                )
        else:
            names = [
                seq
                for cls in subfolders(self.root)
                for seq in subfolders(self.root / cls)
                if seq.startswith(f"{cls}-") and self._annotation(seq).is_file()
            ]
            if split == "test":
                train = set(read_split("lasot_train_split.txt"))
                names = [name for name in names if name not in train]
            if not names:
                raise self.layout_error(f"no {split or 'LaSOT'} sequence found in {self.root}")
        self.names = names

    def _sequence_folder(self, name: str) -> Path:
        return self.root / name.rsplit("-", 1)[0] / name

    def _annotation(self, name: str) -> Path:
        return self._sequence_folder(name) / "groundtruth.txt"

    def _load(self, index: int) -> Sequence:
        name = self.names[index]
        folder = self._sequence_folder(name)
        boxes = read_boxes(folder / "groundtruth.txt")
        frames = [str(folder / "img" / f"{i:08d}.jpg") for i in range(1, len(boxes) + 1)]
        visible = has_area(boxes)
        visible &= read_flags(folder / "full_occlusion.txt", len(boxes)) == 0
        visible &= read_flags(folder / "out_of_view.txt", len(boxes)) == 0
        return Sequence(name, frames, boxes, visible, object_class=name.rsplit("-", 1)[0])


class LaSOTExtSource(LaSOTSource):
    """LaSOT extension (LaSOT_ext, 150 sequences of 15 new classes): the LaSOT layout; every sequence
    found is read."""

    dataset_name = "lasot_extension_subset"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root, split=None)


# --- TrackingNet ------------------------------------------------------------------------------------


class TrackingNetSource(FileSource):
    """TrackingNet: ``<root>/TRAIN_<k>/anno/<video>.txt`` (comma) and ``<root>/TRAIN_<k>/frames/<video>/0.jpg,
    1.jpg, ...`` (in integer order); ``TEST/`` likewise, with the first box only.

    Visibility (official): ``w, h > 0``.

    Args:
        root: the TrackingNet folder holding ``TRAIN_0`` ... ``TRAIN_11`` and ``TEST``.
        split: ``"train"`` or ``"test"``.
        chunks: the ``TRAIN_<k>`` chunks to read (default: every chunk present; the official set is 0-11).
    """

    dataset_name = "trackingnet"
    layout = "<root>/TRAIN_<k>/anno/<video>.txt and <root>/TRAIN_<k>/frames/<video>/0.jpg (TEST/ likewise)"

    def __init__(
        self, root: str | os.PathLike, split: str = "train", chunks: collections.abc.Iterable[int] | None = None
    ):
        super().__init__(root)
        if split == "train":
            if chunks is None:
                folders = [f for f in subfolders(self.root) if re.fullmatch(r"TRAIN_\d+", f)]
            else:
                folders = [f"TRAIN_{k}" for k in chunks]
        elif split == "test":
            folders = ["TEST"]
        else:
            raise ValueError(f"TrackingNet split must be 'train' or 'test', got {split!r}.")
        self._chunk_of: dict[str, str] = {}
        for folder in folders:
            anno = self.root / folder / "anno"
            if not anno.is_dir():
                raise self.layout_error(f"{anno} is missing")
            for video in sorted(p.stem for p in anno.glob("*.txt")):
                self._chunk_of[video] = folder
        if not self._chunk_of:
            raise self.layout_error(f"no {split} annotation found in {self.root}")
        self.names = list(self._chunk_of)

    def _load(self, index: int) -> Sequence:
        name = self.names[index]
        chunk = self.root / self._chunk_of[name]
        frames = list_frames(chunk / "frames" / name)
        if not frames:
            raise self.layout_error(f"no frames in {chunk / 'frames' / name}")
        boxes = boxes_for_frames(read_boxes(chunk / "anno" / f"{name}.txt"), len(frames), chunk / "anno" / name)
        return Sequence(name, frames, boxes, has_area(boxes), attributes={"chunk": chunk.name})


# --- COCO -------------------------------------------------------------------------------------------


class COCOSource(FileSource):
    """COCO instances as one-frame sequences: every annotation with ``iscrowd == 0`` is one sequence,
    named by its annotation id.

    Layout: ``<root>/annotations/instances_<split>.json`` with the images in ``<root>/images/<split>/``
    (the PyTracking layout) or ``<root>/<split>/`` (as the COCO archive unpacks).
    Visibility (official): ``w > 50`` and ``h > 50``; the sampler uses image datasets regardless.

    Args:
        root: the COCO folder.
        split: the image set, e.g. ``"train2017"``.
    """

    dataset_name = "coco"
    is_video = False
    layout = "<root>/annotations/instances_<split>.json and <root>/images/<split>/<image>.jpg (or <root>/<split>/)"

    def __init__(self, root: str | os.PathLike, split: str = "train2017"):
        super().__init__(root)
        annotation_file = self.root / "annotations" / f"instances_{split}.json"
        if not annotation_file.is_file():
            raise self.layout_error(f"{annotation_file} is missing")
        images = self.root / "images" / split
        self.image_folder = images if images.is_dir() else self.root / split
        if not self.image_folder.is_dir():
            raise self.layout_error(f"neither {images} nor {self.image_folder} exists")
        with open(annotation_file) as f:
            coco = json.load(f)
        file_names = {image["id"]: image["file_name"] for image in coco["images"]}
        categories = {category["id"]: category["name"] for category in coco["categories"]}
        annotations = [a for a in coco["annotations"] if not a.get("iscrowd", 0)]
        self.names = [str(a["id"]) for a in annotations]
        self._files = [file_names[a["image_id"]] for a in annotations]
        self._classes = [categories[a["category_id"]] for a in annotations]
        self._boxes = np.asarray([a["bbox"] for a in annotations], dtype=np.float64).reshape(-1, 4)

    def _load(self, index: int) -> Sequence:
        box = self._boxes[index : index + 1]
        visible = (box[:, 2] > COCO_MIN_VISIBLE_SIDE) & (box[:, 3] > COCO_MIN_VISIBLE_SIDE)
        frames = [str(self.image_folder / self._files[index])]
        return Sequence(self.names[index], frames, box, visible, object_class=self._classes[index])


# --- evaluation benchmarks --------------------------------------------------------------------------


class TNL2KSource(FileSource):
    """TNL2K: ``<root>/<sequence>/imgs/*`` (sorted by name, as the official reader) with
    ``groundtruth.txt`` (comma) and ``language.txt`` (kept as the ``language`` attribute).

    ``root`` is the TNL2K test folder. As in the official reader, a root with more than 9 sub-folders
    holds the sequences; otherwise its sub-folders are subsets holding them.
    Visibility: ``w, h > 0``.
    """

    dataset_name = "tnl2k"
    layout = (
        "<root>/<sequence>/imgs/00001.png and <root>/<sequence>/groundtruth.txt (or <root>/<subset>/<sequence>/...)"
    )

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        top = subfolders(self.root)
        if len(top) > 9:
            folders = [self.root / name for name in top]
        else:
            folders = [self.root / subset / name for subset in top for name in subfolders(self.root / subset)]
        self._folders = sorted((f for f in folders if (f / "groundtruth.txt").is_file()), key=lambda f: f.name)
        if not self._folders:
            raise self.layout_error(f"no sequence with a groundtruth.txt in {self.root}")
        self.names = [folder.name for folder in self._folders]

    def _load(self, index: int) -> Sequence:
        folder = self._folders[index]
        frames = list_frames(folder / "imgs", natural=False)
        if not frames:
            raise self.layout_error(f"no frames in {folder / 'imgs'}")
        boxes = boxes_for_frames(read_boxes(folder / "groundtruth.txt"), len(frames), folder)
        language = folder / "language.txt"
        attributes = {"language": language.read_text().strip()} if language.is_file() else {}
        return Sequence(self.names[index], frames, boxes, has_area(boxes), attributes=attributes)


# OTB-2015 sequences whose annotation does not start at the first image of the folder, and those whose
# first frames are omitted (``initOmit``), as in the official sequence table.
OTB_FIRST_FRAME = {"David": 300}
OTB_INIT_OMIT = {"Tiger1": 5}


class OTBSource(FileSource):
    """OTB-2015: ``<root>/<Seq>/img/0001.jpg, ...`` with ``groundtruth_rect.txt`` (comma or whitespace).

    A folder with ``groundtruth_rect.<k>.txt`` files gives one sequence per target, named ``<Seq>_<k>``
    (``Jogging_1``, ``Jogging_2``, ``Skating2_1``, ``Skating2_2``, ``Human4_2``). The frames are the
    folder's sorted images from the first annotated one, one per box: ``David`` starts at image 300,
    and ``Tiger1`` drops its first 5 frames and boxes (official ``initOmit``).
    Visibility: ``w, h > 0``.
    """

    dataset_name = "otb"
    layout = "<root>/<Seq>/img/0001.jpg and <root>/<Seq>/groundtruth_rect.txt"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        self._annotations: list[Path] = []
        for folder in subfolders(self.root):
            for anno in sorted((self.root / folder).glob("groundtruth_rect*.txt"), key=lambda p: natural_key(p.name)):
                target = re.fullmatch(r"groundtruth_rect(?:\.(\d+))?\.txt", anno.name)
                if target:
                    self._annotations.append(anno)
                    self.names.append(folder if target[1] is None else f"{folder}_{target[1]}")
        if not self.names:
            raise self.layout_error(f"no groundtruth_rect.txt in the sub-folders of {self.root}")

    def _load(self, index: int) -> Sequence:
        name, anno = self.names[index], self._annotations[index]
        folder = anno.parent.name
        boxes = read_boxes(anno)
        images = list_frames(anno.parent / "img")
        start = OTB_FIRST_FRAME.get(folder, 1) - 1
        frames = images[start : start + len(boxes)]
        if len(frames) != len(boxes):
            raise self.layout_error(
                f"{anno} has {len(boxes)} boxes but {anno.parent / 'img'} only {len(images)} images"
            )
        omit = OTB_INIT_OMIT.get(folder, 0)
        boxes, frames = boxes[omit:], frames[omit:]
        return Sequence(name, frames, boxes, has_area(boxes))


class NfSSource(FileSource):
    """Need for Speed (30 fps): ``<root>/sequences/<name>/00001.jpg, ...`` and ``<root>/anno/nfs_<name>.txt``
    (tab). Sequences are named ``nfs_<name>`` like the official results; the frames are the first
    images of the folder, one per box. Visibility: ``w, h > 0``.
    """

    dataset_name = "nfs"
    layout = "<root>/sequences/<name>/00001.jpg and <root>/anno/nfs_<name>.txt"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        anno = self.root / "anno"
        self.names = sorted((p.stem for p in anno.glob("nfs_*.txt")), key=natural_key) if anno.is_dir() else []
        if not self.names:
            raise self.layout_error(f"no anno/nfs_<name>.txt in {self.root}")

    def _load(self, index: int) -> Sequence:
        name = self.names[index]
        boxes = read_boxes(self.root / "anno" / f"{name}.txt")
        images = list_frames(self.root / "sequences" / name.removeprefix("nfs_"))
        if len(images) < len(boxes):
            raise self.layout_error(f"{name}: {len(boxes)} boxes but {len(images)} images")
        return Sequence(name, images[: len(boxes)], boxes, has_area(boxes))


class UAV123Source(FileSource):
    """UAV123: ``<root>/data_seq/UAV123/<folder>/000001.jpg, ...`` and ``<root>/anno/UAV123/<name>.txt``
    (comma; NaN rows while the target is out of view).

    Sequences are named ``uav_<name>`` like the official results. Sub-sequences such as ``bird1_2``
    are frame ranges of one folder, listed in ``data/splits/uav123_subsequences.txt``; the others
    start at frame 1 of their own folder. Visibility: ``w, h > 0`` (NaN rows are not visible).
    """

    dataset_name = "uav"
    layout = "<root>/data_seq/UAV123/<seq>/000001.jpg and <root>/anno/UAV123/<seq>.txt"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        anno = self.root / "anno" / "UAV123"
        stems = sorted((p.stem for p in anno.glob("*.txt")), key=natural_key) if anno.is_dir() else []
        if not stems:
            raise self.layout_error(f"no annotation in {anno}")
        self.names = [f"uav_{stem}" for stem in stems]
        self._ranges = {
            name: (folder, int(first), int(last))
            for name, folder, first, last in (line.split() for line in read_split("uav123_subsequences.txt"))
        }

    def _load(self, index: int) -> Sequence:
        name = self.names[index]
        stem = name.removeprefix("uav_")
        boxes = read_boxes(self.root / "anno" / "UAV123" / f"{stem}.txt")
        folder, first, last = self._ranges.get(stem, (stem, 1, len(boxes)))
        if last - first + 1 != len(boxes):
            raise ValueError(f"UAV123 {stem}: {len(boxes)} boxes for frames {first}-{last} of {folder}.")
        frames = [str(self.root / "data_seq" / "UAV123" / folder / f"{i:06d}.jpg") for i in range(first, last + 1)]
        return Sequence(name, frames, boxes, has_area(boxes))


SOURCES: dict[str, type[SequenceSource]] = {
    "folder": FolderSource,
    "got10k": GOT10kSource,
    "lasot": LaSOTSource,
    "lasot_ext": LaSOTExtSource,
    "trackingnet": TrackingNetSource,
    "coco": COCOSource,
    "tnl2k": TNL2KSource,
    "otb": OTBSource,
    "nfs": NfSSource,
    "uav123": UAV123Source,
}

__all__ = [
    "COCOSource",
    "FileSource",
    "FolderSource",
    "GOT10kSource",
    "LaSOTExtSource",
    "LaSOTSource",
    "NfSSource",
    "OTBSource",
    "SOURCES",
    "Sequence",
    "SequenceSource",
    "TNL2KSource",
    "TrackingNetSource",
    "UAV123Source",
    "natural_key",
    "read_boxes",
]
