"""Resident memory over a very long generated video: the default bounded template memory vs the official one.

A tiny model (random weights) tracks one object through a generated video of ``--frames`` frames
(a textured square drifting over noise, made on the fly so the video itself takes no memory). Each
policy runs in its own process, so the two don't share an allocator; the resident set size (RSS) and
the number of stored templates are sampled every ``--every`` frames.

- ``default``: ``max_templates=DEFAULT_MAX_TEMPLATES`` (64): the stored templates stay <= 64, so RSS must
  stay flat.
- ``official``: the official memory (``max_templates=None``): about ``(1 - 1/(2n))`` of all frames
  stay stored as uint8 crops; the official code keeps every frame's crop as a float32 tensor.

    python benchmarks/long_video_memory.py --frames 14000 --every 1000

With ``--video FILE`` it instead runs ``odtrack track FILE --box ...`` (default settings, the shipped
model, plus any ``--track-arg``) as a subprocess on a real video, samples that process's RSS every
``--interval`` seconds and reads the frame count back from the results file. ``--frames N`` first copies
the first N frames' packets to a temporary file (no re-encoding), for machines too slow for the whole
video. Big Buck Bunny (14,315 frames, 1280x720) ships in moviepy's source archive:

    pip download moviepy --no-deps --no-binary :all: -d /tmp/moviepy && tar -xzf /tmp/moviepy/moviepy-*.tar.gz -C /tmp/moviepy
    python benchmarks/long_video_memory.py --video "$(find /tmp/moviepy -name bbb.mp4)" --box 560,300,160,120
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from odtrack_hf import ODTrackConfig, ODTrackInferenceSession, ODTrackModel, ODTrackProcessor
from odtrack_hf.session_odtrack import DEFAULT_MAX_TEMPLATES

POLICIES = {"default": DEFAULT_MAX_TEMPLATES, "official": None}


def generated_frames(count: int, size: int, seed: int = 0):
    """``count`` frames ``(size, size, 3)`` uint8: a textured 16-px square on a slow circle over fixed noise."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    square = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for index in range(count):
        frame = background.copy()
        angle = 2 * np.pi * index / 500
        x = int(size / 2 - 8 + size / 4 * np.cos(angle))
        y = int(size / 2 - 8 + size / 4 * np.sin(angle))
        frame[y : y + 16, x : x + 16] = square
        yield frame


def worker(policy: str, frames: int, every: int, size: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = ODTrackConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, patch_size=16, template_size=32,
        search_size=64, head_channels=16, ce_layers=[], ce_keep_ratios=[],
    )  # fmt: skip
    model = ODTrackModel(config).eval()
    processor = ODTrackProcessor(template_size=32, search_size=64)
    session = ODTrackInferenceSession(model, processor, max_templates=POLICIES[policy])
    process, start = psutil.Process(), time.perf_counter()
    box = [size / 2 - 8, size / 2 - 8, 16, 16]
    for index, output in enumerate(session.propagate(generated_frames(frames, size), boxes=[box])):
        if index % every == 0 or index == frames - 1:
            sample = {
                "frame": index,
                "rss_mb": process.memory_info().rss / 2**20,
                "stored_templates": len(session.stored_templates(output.object_ids[0])),
                "seconds": time.perf_counter() - start,
            }
            print(json.dumps(sample), flush=True)


def first_frames(video: Path, count: int, folder: Path) -> Path:
    """The first ``count`` video packets of ``video`` in a new file (stream copy, no re-encoding)."""
    import av

    path = folder / f"first{count}{video.suffix}"
    with av.open(str(video)) as source, av.open(str(path), mode="w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for index, packet in enumerate(source.demux(source.streams.video[0])):
            if packet.dts is None or index >= count:
                continue
            packet.stream = stream
            target.mux(packet)
    return path


def soak(video: Path, box: str, frames: int | None, interval: float, track_args: list[str]) -> None:
    """``odtrack track`` on a real video, its RSS sampled every ``interval`` seconds."""
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if frames:
            video = first_frames(video, frames, folder)
        results = folder / "boxes.txt"
        command = [sys.executable, "-m", "odtrack_hf.cli", "track", str(video), "--box", box, "--results",
                   str(results), *track_args]  # fmt: skip
        print(" ".join(command[1:]), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watched, samples = psutil.Process(process.pid), []
        while process.poll() is None:
            try:
                samples.append((time.perf_counter() - start, watched.memory_info().rss / 2**20))
            except psutil.NoSuchProcess:
                break
            time.sleep(interval)
        out, err = process.communicate()
        if process.returncode:
            sys.exit(f"odtrack track failed ({process.returncode}): {err.strip()}")
        count = len(results.read_text().splitlines())
    elapsed = time.perf_counter() - start
    print(out.strip())
    print(f"{count} frames in {elapsed:.0f} s; RSS in MiB at each tenth of the run:")
    for tenth in range(11):
        at, rss = samples[min(len(samples) - 1, tenth * (len(samples) - 1) // 10)]
        print(f"  {at:7.0f} s  (~frame {int(count * at / elapsed):6d})  {rss:8.1f}")
    warm = samples[len(samples) // 10]  # after a tenth of the run: model loaded, first buffers allocated
    peak = max(rss for _, rss in samples[len(samples) // 10 :])
    print(f"RSS growth after warm-up (from {warm[1]:.1f} MiB at {warm[0]:.0f} s): {samples[-1][1] - warm[1]:+.1f} MiB "
          f"at the end, {peak - warm[1]:+.1f} MiB at the peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=14000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels")
    parser.add_argument("--worker", choices=list(POLICIES), help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help="run odtrack track on this video instead (see above)")
    parser.add_argument("--box", default="560,300,160,120", help="--video: first box X,Y,W,H")
    parser.add_argument("--interval", type=float, default=2.0, help="--video: seconds between RSS samples")
    parser.add_argument("--track-arg", action="append", default=[], help="--video: extra argument of odtrack track")
    args = parser.parse_args()
    if args.video:
        soak(args.video, args.box, args.frames if "--frames" in sys.argv else None, args.interval, args.track_arg)
        return
    if args.worker:
        worker(args.worker, args.frames, args.every, args.size)
        return

    print(f"{args.frames} generated frames of {args.size}x{args.size}, tiny model (32-px templates, 64-px search), "
          f"1 thread per policy process, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for policy, max_templates in POLICIES.items():
        command = [sys.executable, __file__, "--worker", policy, "--frames", str(args.frames), "--every", str(args.every),
                   "--size", str(args.size)]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        samples = [json.loads(line) for line in output.splitlines()]
        print(f"\n{policy} (max_templates={max_templates}):")
        print("   frame   RSS MiB  stored templates  elapsed s")
        for s in samples:
            print(f"  {s['frame']:6d}  {s['rss_mb']:8.1f}  {s['stored_templates']:16d}  {s['seconds']:9.1f}")
        warm = next(s for s in samples if s["frame"] >= min(2000, args.frames // 4))
        growth = samples[-1]["rss_mb"] - warm["rss_mb"]
        print(f"  RSS growth from frame {warm['frame']} to {samples[-1]['frame']}: {growth:+.1f} MiB "
              f"({growth / max(samples[-1]['frame'] - warm['frame'], 1) * 1000:+.2f} MiB per 1000 frames)")


if __name__ == "__main__":
    main()
