"""Writing sequences and splits to disk in the GOT-10k layout: atomic, resumable, parallel."""

from __future__ import annotations

import configparser
import io
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .attributes import ATTRIBUTES, ground_truth, measure_statistics, realised_attributes, vocabulary
from .packages import package_split, source_package
from .photos import PHOTO_SOURCES, check_split
from .planning import GenerationConfig, SequencePlan, plan_sequence, sequence_name
from .rendering import render_frames
from .sprites import object_sprites

GENERATOR_VERSION = 1
FPS = 25


def _check_sources(plan: SequencePlan) -> None:
    """Refuse a sequence that uses a photograph of another split (the held-out guarantee); in the wide
    mix, one that uses anything of a package of another split (the package-disjoint guarantee)."""
    if plan.mix == "classic":
        foreign = sorted(s for s in plan.sources if PHOTO_SOURCES[s].split != plan.split)
    else:
        foreign = sorted(s for s in plan.sources if package_split(source_package(s)) != plan.split)
    if foreign:
        raise RuntimeError(f"{plan.name} ({plan.split}) uses photo sources of another split: {foreign}")


def generate_sequence(
    root: str | os.PathLike, split: str, index: int, seed: int = 0, config: GenerationConfig = GenerationConfig()
) -> Path:
    """Write sequence ``index`` of ``split`` under ``<root>/<split>/`` and return its folder.

    A finished folder is left as it is. The files are written into a hidden ``.partial-<name>``
    folder that is renamed when complete, so an interrupted run leaves no half sequence behind.
    """
    name = sequence_name(split, index)
    folder = Path(root) / split / name
    if folder.is_dir():
        return folder
    plan = plan_sequence(split, index, seed, config)
    _check_sources(plan)
    partial = folder.with_name(f".partial-{name}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    frames = []
    for t, (image, truth) in enumerate(render_frames(plan)):
        image.save(partial / f"{t + 1:08d}.jpg", quality=config.jpeg_quality)
        frames.append(truth)
    boxes, absence, cover = ground_truth(frames, plan.width, plan.height)
    (partial / "groundtruth.txt").write_text("".join(f"{x:.2f},{y:.2f},{w:.2f},{h:.2f}\n" for x, y, w, h in boxes))
    (partial / "absence.label").write_text("".join(f"{v}\n" for v in absence))
    (partial / "cover.label").write_text("".join(f"{v}\n" for v in cover))
    stats = measure_statistics(plan, frames)
    attributes = realised_attributes(stats)
    target = plan.layers[plan.target].sprite
    meta = configparser.ConfigParser(interpolation=None)
    meta["METAINFO"] = {
        "object_class": target.category.split(":")[0],
        "motion_class": "fast" if "fast_motion" in attributes else "smooth",
        "resolution": f"({plan.width}, {plan.height})",
        "anno_fps": f"{FPS}Hz",
        "attributes": ",".join(attributes),
        "sources": ",".join(sorted(plan.sources)),
    }
    with io.StringIO() as text:
        meta.write(text)
        (partial / "meta_info.ini").write_text(text.getvalue())
    info = {
        "name": name,
        "split": split,
        "index": index,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "width": plan.width,
        "height": plan.height,
        "num_frames": plan.num_frames,
        "attributes": {attribute: attribute in attributes for attribute in vocabulary(plan.mix)},
        "planned_attributes": sorted(plan.planned),
        "target": {"object": target.name, "category": target.category, "source": target.source},
        "background": {
            "source": plan.background.source,
            "kind": plan.background.kind,
            "camera_motion": plan.background.camera_motion,
        },
        "layers": [{"role": layer.role, "object": layer.sprite.name} for layer in plan.layers],
        "sources": sorted(plan.sources),
        "statistics": stats,
    }
    if plan.mix != "classic":  # classic sequences keep their exact files
        info["mix"] = plan.mix
        info["packages"] = sorted({source_package(source) for source in plan.sources})
    (partial / "attributes.json").write_text(json.dumps(info, indent=1) + "\n")
    os.rename(partial, folder)
    return folder


def _generate_one(job: tuple[str, str, int, int, GenerationConfig]) -> str:
    root, split, index, seed, config = job
    return generate_sequence(root, split, index, seed, config).name


def generate_split(
    root: str | os.PathLike,
    split: str,
    num_sequences: int,
    seed: int = 0,
    config: GenerationConfig = GenerationConfig(),
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write sequences ``0 .. num_sequences - 1`` of ``split`` (skipping finished ones) and
    ``<root>/<split>/list.txt``; returns the sequence names.

    ``progress(done, total)`` is called after each sequence.
    """
    check_split(split)
    if num_sequences < 1:
        raise ValueError(f"num_sequences must be >= 1, got {num_sequences}.")
    folder = Path(root) / split
    folder.mkdir(parents=True, exist_ok=True)
    names = [sequence_name(split, i) for i in range(num_sequences)]
    jobs = [(str(root), split, i, seed, config) for i, name in enumerate(names) if not (folder / name).is_dir()]
    done = num_sequences - len(jobs)
    if workers > 1 and len(jobs) > 1:
        object_sprites(split)  # cut the sprites once; forked workers inherit them
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_generate_one, jobs):
                done += 1
                if progress:
                    progress(done, num_sequences)
    else:
        for job in jobs:
            _generate_one(job)
            done += 1
            if progress:
                progress(done, num_sequences)
    listing = folder / "list.txt"
    listing.with_name(".list.txt.partial").write_text("".join(f"{name}\n" for name in names))
    os.replace(listing.with_name(".list.txt.partial"), listing)
    return names


def attribute_counts(folder: str | os.PathLike, names: list[str]) -> dict[str, int]:
    """How many of the sequences ``names`` in ``folder`` show each attribute."""
    counts = dict.fromkeys(ATTRIBUTES, 0)
    for name in names:
        flags = json.loads((Path(folder) / name / "attributes.json").read_text())["attributes"]
        for attribute, present in flags.items():
            counts[attribute] = counts.get(attribute, 0) + int(present)
    return counts
