"""Dataset readers on tiny fixture folders in each official layout."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odtrack_hf.data import (
    SOURCES,
    COCOSource,
    FolderSource,
    GOT10kSource,
    LaSOTExtSource,
    LaSOTSource,
    NfSSource,
    OTBSource,
    TNL2KSource,
    TrackingNetSource,
    UAV123Source,
)
from odtrack_hf.data.sources import read_split

# --- fixture writers --------------------------------------------------------------------------------


def write_images(folder: Path, names: list[str]) -> None:
    """16x16 frames whose red channel is 10 * their index in ``names``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        Image.new("RGB", (16, 16), (10 * index, 0, 0)).save(folder / name)


def touch_frames(folder: Path, names: list[str]) -> None:
    """Empty frame files: readers never decode frames, so names are all they need."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def box_rows(count: int, separator: str = ",") -> str:
    """Rows ``i, 2i, 5, 6`` so that each row identifies its frame."""
    return "\n".join(separator.join(map(str, (i, 2 * i, 5, 6))) for i in range(count)) + "\n"


def expected_boxes(count: int) -> np.ndarray:
    return np.array([[i, 2 * i, 5, 6] for i in range(count)], dtype=np.float64)


# --- custom folder ----------------------------------------------------------------------------------


def test_folder_source_natural_order_separators_and_labels(tmp_path):
    write_images(tmp_path / "walk", ["1.png", "2.png", "10.png"])
    write_text(tmp_path / "walk" / "groundtruth.txt", "0,0,5,6\n1\t2\t5\t6\n2 4 0 6\n")
    write_text(tmp_path / "walk" / "absence.label", "0\n1\n0\n")
    write_images(tmp_path / "run", ["a.jpg", "b.jpg"])
    write_text(tmp_path / "run" / "groundtruth.txt", box_rows(2))
    write_text(tmp_path / "run" / "visible.txt", "0\n1\n")

    source = FolderSource(tmp_path)
    assert source.names == ["run", "walk"]
    walk = source[1]
    assert [Path(frame).name for frame in walk.frames] == ["1.png", "2.png", "10.png"]
    np.testing.assert_array_equal(walk.boxes, [[0, 0, 5, 6], [1, 2, 5, 6], [2, 4, 0, 6]])
    # frame 1 is absent, frame 2 has zero width
    assert walk.visible.tolist() == [True, False, False]
    assert source[0].visible.tolist() == [False, True]
    assert np.asarray(walk.load_frame(2))[0, 0].tolist() == [20, 0, 0]  # 10.png is the third frame
    assert [sequence.name for sequence in source] == ["run", "walk"]


def test_folder_source_first_box_only_is_padded(tmp_path):
    touch_frames(tmp_path / "video", ["0001.jpg", "0002.jpg", "0003.jpg"])
    write_text(tmp_path / "video" / "groundtruth.txt", "10,20,30,40\n")
    sequence = FolderSource(tmp_path)[0]
    np.testing.assert_array_equal(sequence.boxes[0], [10, 20, 30, 40])
    assert np.isnan(sequence.boxes[1:]).all()
    assert sequence.visible.tolist() == [True, False, False]


def test_folder_source_errors(tmp_path):
    with pytest.raises(ValueError, match=r"not a folder; expected .*groundtruth.txt"):
        FolderSource(tmp_path / "missing")
    with pytest.raises(ValueError, match="no sequence folders"):
        FolderSource(tmp_path)
    touch_frames(tmp_path / "video", ["1.jpg", "2.jpg", "3.jpg"])
    write_text(tmp_path / "video" / "groundtruth.txt", box_rows(2))
    with pytest.raises(ValueError, match="2 boxes for 3 frames"):
        FolderSource(tmp_path)[0]
    write_text(tmp_path / "video" / "groundtruth.txt", "1,2,3\n")
    with pytest.raises(ValueError, match="x,y,w,h"):
        FolderSource(tmp_path)[0]
    touch_frames(tmp_path / "other", ["1.jpg"])
    with pytest.raises(ValueError, match="lack groundtruth.txt"):
        FolderSource(tmp_path)


# --- GOT-10k ----------------------------------------------------------------------------------------


def got10k_train(root: Path, count: int) -> list[str]:
    """A train folder whose list.txt names ``count`` sequences; no sequence folder is written."""
    names = [f"GOT-10k_Train_{i + 1:06d}" for i in range(count)]
    write_text(root / "train" / "list.txt", "\n".join(names) + "\n")
    return names


def got10k_sequence(folder: Path, count: int) -> None:
    touch_frames(folder, [f"{i + 1:08d}.jpg" for i in range(count)])
    write_text(folder / "groundtruth.txt", box_rows(count))
    write_text(folder / "absence.label", "0\n0\n1\n0\n")
    write_text(folder / "cover.label", "8\n0\n8\n3\n")
    meta = "[METAINFO]\nurl: https://x/y?a=1%\nobject_class: ichneumon\nmotion_class: walking\n"
    write_text(folder / "meta_info.ini", meta)  # '%' must not be read as interpolation


def test_got10k_split_files_index_list_txt(tmp_path):
    names = got10k_train(tmp_path, 9335)
    vot_train = [int(i) for i in read_split("got10k_vot_train_split.txt")]
    vot_val = [int(i) for i in read_split("got10k_vot_val_split.txt")]
    assert (len(vot_train), len(vot_val)) == (7086, 1249)
    assert not set(vot_train) & set(vot_val)
    got10k_sequence(tmp_path / "train" / names[0], 4)  # the layout check opens the first listed sequence
    got10k_sequence(tmp_path / "train" / names[3784], 4)

    source = GOT10kSource(tmp_path, split="vot_train")
    assert len(source) == 7086
    assert source.names[:3] == ["GOT-10k_Train_003785", "GOT-10k_Train_008999", "GOT-10k_Train_001632"]
    assert GOT10kSource(tmp_path, split="vot_val").names[0] == "GOT-10k_Train_001350"
    assert len(GOT10kSource(tmp_path)) == 9335

    sequence = source[0]
    np.testing.assert_array_equal(sequence.boxes, expected_boxes(4))
    # frame 1 fully covered, frame 2 absent
    assert sequence.visible.tolist() == [True, False, False, True]
    assert sequence.object_class == "ichneumon"
    assert sequence.attributes["motion_class"] == "walking"
    assert Path(sequence.frames[3]).name == "00000004.jpg"


def test_got10k_split_needs_the_complete_train_folder(tmp_path):
    names = got10k_train(tmp_path, 3)
    got10k_sequence(tmp_path / "train" / names[0], 4)
    with pytest.raises(ValueError, match="complete train set"):
        GOT10kSource(tmp_path, split="vot_train")
    with pytest.raises(ValueError, match="not defined for subset 'val'"):
        GOT10kSource(tmp_path, subset="val", split="train")


def test_got10k_test_subset_without_list_and_labels(tmp_path):
    folder = tmp_path / "test" / "GOT-10k_Test_000001"
    touch_frames(folder, ["00000001.jpg", "00000002.jpg"])
    write_text(folder / "groundtruth.txt", "1,2,3,4\n")
    source = GOT10kSource(tmp_path, subset="test")
    assert source.names == ["GOT-10k_Test_000001"]
    assert source[0].visible.tolist() == [True, False]
    with pytest.raises(ValueError, match=r"val is missing; expected .*list.txt"):
        GOT10kSource(tmp_path, subset="val")


# --- LaSOT ------------------------------------------------------------------------------------------


def lasot_sequence(root: Path, name: str, count: int = 4) -> None:
    folder = root / name.rsplit("-", 1)[0] / name
    touch_frames(folder / "img", [f"{i + 1:08d}.jpg" for i in range(count)])
    write_text(folder / "groundtruth.txt", box_rows(count))
    write_text(folder / "full_occlusion.txt", "0,1,0,0")
    write_text(folder / "out_of_view.txt", "0,0,1,0")


def test_lasot_visibility_classes_and_splits(tmp_path):
    lasot_sequence(tmp_path, "airplane-1")  # a test sequence
    lasot_sequence(tmp_path, "airplane-10")  # a training sequence
    lasot_sequence(tmp_path, "bear-1")  # a training sequence
    assert len(read_split("lasot_train_split.txt")) == 1120

    everything = LaSOTSource(tmp_path, split=None)
    assert everything.names == ["airplane-1", "airplane-10", "bear-1"]
    assert LaSOTSource(tmp_path, split="test").names == ["airplane-1"]
    sequence = everything[1]
    assert sequence.object_class == "airplane"
    assert sequence.frames[0].endswith("airplane/airplane-10/img/00000001.jpg")
    np.testing.assert_array_equal(sequence.boxes, expected_boxes(4))
    assert sequence.visible.tolist() == [True, False, False, True]
    with pytest.raises(ValueError, match="training sequences are missing.*split=None"):
        LaSOTSource(tmp_path, split="train")


def test_lasot_ext_reads_every_sequence(tmp_path):
    lasot_sequence(tmp_path, "atv-1")
    source = LaSOTExtSource(tmp_path)
    assert source.names == ["atv-1"] and source.dataset_name == "lasot_extension_subset"


# --- TrackingNet ------------------------------------------------------------------------------------


def test_trackingnet_chunks_integer_frame_order_and_test(tmp_path):
    for chunk, video in [("TRAIN_0", "vidA_0"), ("TRAIN_1", "vidB_0")]:
        touch_frames(tmp_path / chunk / "frames" / video, [f"{i}.jpg" for i in range(11)])
        write_text(tmp_path / chunk / "anno" / f"{video}.txt", box_rows(11))
    touch_frames(tmp_path / "TEST" / "frames" / "vidC_0", ["0.jpg", "1.jpg"])
    write_text(tmp_path / "TEST" / "anno" / "vidC_0.txt", "1,1,0,4\n")

    assert TrackingNetSource(tmp_path).names == ["vidA_0", "vidB_0"]
    source = TrackingNetSource(tmp_path, chunks=[1])
    sequence = source[0]
    assert sequence.name == "vidB_0" and sequence.attributes["chunk"] == "TRAIN_1"
    assert [Path(f).name for f in sequence.frames[-3:]] == ["8.jpg", "9.jpg", "10.jpg"]
    np.testing.assert_array_equal(sequence.boxes, expected_boxes(11))
    test = TrackingNetSource(tmp_path, split="test")[0]
    assert test.visible.tolist() == [False, False]  # zero width, then unannotated
    with pytest.raises(ValueError, match=r"TRAIN_7/anno is missing; expected .*frames"):
        TrackingNetSource(tmp_path, chunks=[7])


# --- COCO -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_folder", ["images/train2017", "train2017"])
def test_coco_annotations_are_one_frame_sequences(tmp_path, image_folder):
    touch_frames(tmp_path / image_folder, ["000000000001.jpg"])
    coco = {
        "images": [{"id": 1, "file_name": "000000000001.jpg"}],
        "categories": [{"id": 3, "name": "car"}, {"id": 5, "name": "dog"}],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [1, 2, 60, 80], "iscrowd": 0},
            {"id": 12, "image_id": 1, "category_id": 5, "bbox": [1, 2, 300, 300], "iscrowd": 1},
            {"id": 13, "image_id": 1, "category_id": 5, "bbox": [5, 5, 50, 90], "iscrowd": 0},
        ],
    }
    write_text(tmp_path / "annotations" / "instances_train2017.json", json.dumps(coco))
    source = COCOSource(tmp_path)
    assert not source.is_video
    assert source.names == ["11", "13"]
    car, dog = source[0], source[1]
    assert car.frames == [str(tmp_path / image_folder / "000000000001.jpg")]
    np.testing.assert_array_equal(car.boxes, [[1, 2, 60, 80]])
    assert (car.object_class, dog.object_class) == ("car", "dog")
    assert car.visible.tolist() == [True] and dog.visible.tolist() == [False]  # w must exceed 50


def test_coco_missing_annotations(tmp_path):
    with pytest.raises(ValueError, match=r"instances_val2017.json is missing; expected"):
        COCOSource(tmp_path, split="val2017")


# --- benchmarks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("two_level", [False, True])
def test_tnl2k_one_and_two_level_layouts(tmp_path, two_level):
    names = [f"seq{i:02d}" for i in range(10 if not two_level else 2)]
    for name in names:
        folder = tmp_path / ("subset" if two_level else "") / name
        touch_frames(folder / "imgs", ["img10.png", "img9.png"])
        write_text(folder / "groundtruth.txt", box_rows(2))
    write_text(tmp_path / ("subset" if two_level else "") / "seq00" / "language.txt", "the red car\n")
    source = TNL2KSource(tmp_path)
    assert source.names == names
    sequence = source[0]
    assert [Path(f).name for f in sequence.frames] == ["img10.png", "img9.png"]  # lexicographic, as official
    assert sequence.attributes["language"] == "the red car"


def test_otb_targets_start_frames_and_init_omit(tmp_path):
    touch_frames(tmp_path / "Jogging" / "img", [f"{i:04d}.jpg" for i in range(1, 4)])
    write_text(tmp_path / "Jogging" / "groundtruth_rect.1.txt", box_rows(3))
    write_text(tmp_path / "Jogging" / "groundtruth_rect.2.txt", box_rows(3, "\t"))
    touch_frames(tmp_path / "David" / "img", [f"{i:04d}.jpg" for i in range(1, 303)])
    write_text(tmp_path / "David" / "groundtruth_rect.txt", box_rows(3))
    touch_frames(tmp_path / "Tiger1" / "img", [f"{i:04d}.jpg" for i in range(1, 9)])
    write_text(tmp_path / "Tiger1" / "groundtruth_rect.txt", box_rows(8))
    touch_frames(tmp_path / "Football1" / "img", [f"{i:04d}.jpg" for i in range(1, 6)])
    write_text(tmp_path / "Football1" / "groundtruth_rect.txt", box_rows(3, " "))

    source = OTBSource(tmp_path)
    assert source.names == ["David", "Football1", "Jogging_1", "Jogging_2", "Tiger1"]
    david, football, _, jogging2, tiger = (source[i] for i in range(5))
    assert [Path(f).name for f in david.frames] == ["0300.jpg", "0301.jpg", "0302.jpg"]
    assert [Path(f).name for f in football.frames] == ["0001.jpg", "0002.jpg", "0003.jpg"]
    np.testing.assert_array_equal(jogging2.boxes, expected_boxes(3))
    assert Path(tiger.frames[0]).name == "0006.jpg"
    np.testing.assert_array_equal(tiger.boxes, expected_boxes(8)[5:])


def test_nfs_names_and_tab_annotations(tmp_path):
    touch_frames(tmp_path / "sequences" / "Gymnastics", [f"{i:05d}.jpg" for i in range(1, 5)])
    write_text(tmp_path / "anno" / "nfs_Gymnastics.txt", box_rows(3, "\t"))
    sequence = NfSSource(tmp_path)[0]
    assert sequence.name == "nfs_Gymnastics"
    assert [Path(f).name for f in sequence.frames] == ["00001.jpg", "00002.jpg", "00003.jpg"]
    np.testing.assert_array_equal(sequence.boxes, expected_boxes(3))


def test_uav123_subsequence_ranges_and_nan_rows(tmp_path):
    write_text(tmp_path / "anno" / "UAV123" / "bird1_2.txt", box_rows(1477 - 775 + 1))
    write_text(tmp_path / "anno" / "UAV123" / "bike1.txt", "1,2,3,4\nNaN,NaN,NaN,NaN\n")
    source = UAV123Source(tmp_path)
    assert source.names == ["uav_bike1", "uav_bird1_2"]
    bike, bird = source[0], source[1]
    assert bike.frames[1].endswith("data_seq/UAV123/bike1/000002.jpg")
    assert bike.visible.tolist() == [True, False]
    assert bird.frames[0].endswith("data_seq/UAV123/bird1/000775.jpg")
    assert bird.frames[-1].endswith("data_seq/UAV123/bird1/001477.jpg")
    write_text(tmp_path / "anno" / "UAV123" / "bird1_2.txt", box_rows(5))
    with pytest.raises(ValueError, match="5 boxes for frames 775-1477"):
        UAV123Source(tmp_path)[1]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_reader_rejects_a_missing_or_empty_root(tmp_path, name):
    with pytest.raises(ValueError, match=r"not a folder; expected \S*missing/"):
        SOURCES[name](tmp_path / "missing")
    with pytest.raises(ValueError, match="; expected "):
        SOURCES[name](tmp_path)
