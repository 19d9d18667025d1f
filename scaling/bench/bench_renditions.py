"""Photo renditions: the full set from one upload against one libvips thumbnail of the same file.

    python scaling/bench/bench_renditions.py          (or: make bench BENCH_ARGS=renditions)

Makes a 12 MP and a 24 MP JPEG (good/flower.jpg enlarged with libvips, Q=90) in a temp dir, then reports:
- the median time of `process_photo` (WebP + JPEG at 1080, 640, 320 and a 150 square, BlurHash, dominant colour)
  against the median of one `pyvips.Image.thumbnail(path, 1080)` saved as WebP with the same settings as the
  1080 WebP rendition (the ratio; target <= 1.8), and against the same thumbnail saved as JPEG, for reference;
- photos per minute for the full set on one thread (a child process with VIPS_CONCURRENCY=1);
- peak memory (VmHWM) of a fresh child process that processes the 24 MP photo once (target <= 150 MB).

libvips' operation cache is off while timing, so every run decodes and encodes for real. The figures are
printed and written under "## Renditions" in scaling/RESULTS.md (other sections are kept).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT.parent / "shared" / "testdata" / "images" / "good" / "flower.jpg"
RUNS = 9
SINGLE_THREAD_RUNS = 5
SIZES_MP = (12, 24)
HEAVY_FILTER = "ludwig"  # tone, colour matrix, overlay and vignette: the most work of any look

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def make_photo(directory: Path, megapixels: int) -> Path:
    import pyvips

    source = pyvips.Image.new_from_file(str(SOURCE))
    scale = (megapixels * 1_000_000 / (source.width * source.height)) ** 0.5
    path = directory / f"photo_{megapixels}mp.jpg"
    source.resize(scale, kernel="lanczos3").jpegsave(str(path), Q=90)
    return path


def median_seconds(runs: int = RUNS, **works) -> dict[str, float]:
    """The median time of each work; the works take turns in every round, so a burst of load on a shared
    machine falls on all of them rather than on one."""
    for work in works.values():
        work()  # warm-up: libraries loaded, thread pool started
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(runs):
        for name, work in works.items():
            started = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def child(mode: str, path: str) -> dict:
    """Runs in a fresh interpreter: `single` times the set on one thread; `memory` reports the high-water RSS."""
    import pyvips

    from app.media.pipeline import process_photo

    data = Path(path).read_bytes()
    if mode == "single":
        pyvips.cache_set_max(0)
        return median_seconds(SINGLE_THREAD_RUNS, seconds=lambda: process_photo(data))
    before = _vm_hwm_mb()
    process_photo(data)
    return {"baseline_mb": before, "peak_mb": _vm_hwm_mb()}


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_child(mode: str, path: Path, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(path: Path) -> dict:
    import pyvips

    from app.media.pipeline import ENCODINGS, process_photo

    pyvips.cache_set_max(0)
    data = path.read_bytes()
    _, webp_options, _ = ENCODINGS["webp"]
    _, jpeg_options, _ = ENCODINGS["jpeg"]
    medians = median_seconds(
        thumb_webp=lambda: pyvips.Image.thumbnail(str(path), 1080).webpsave_buffer(**webp_options),
        thumb_jpeg=lambda: pyvips.Image.thumbnail(str(path), 1080).jpegsave_buffer(**jpeg_options),
        full=lambda: process_photo(data),
        heavy=lambda: process_photo(data, filter_name=HEAVY_FILTER),
    )
    single = run_child("single", path, VIPS_CONCURRENCY="1")["seconds"]
    return {**medians, "single": single, "bytes": len(data)}


def machine() -> str:
    import pi_heif
    import pyvips

    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} cores, {memory_kb / 1024 / 1024:.0f} GiB RAM, {platform.platform()}; "
        f"Python {platform.python_version()}, libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} "
        f"(pyvips {pyvips.__version__}), pi-heif {pi_heif.__version__}"
    )


def report(results: dict[int, dict], memory: dict, command: str) -> str:
    lines = [
        "## Renditions",
        "",
        f"`{command}` on {datetime.date.today().isoformat()}; {machine()}.",
        "",
        "Source: good/flower.jpg enlarged with libvips to each size, saved as JPEG Q=90. Medians of "
        f"{RUNS} runs (one-thread figure: {SINGLE_THREAD_RUNS} runs), libvips operation cache off. The set is "
        "WebP + JPEG at 1080, 640, 320 and a 150 square (attention crop), plus BlurHash and dominant colour; "
        "one thumbnail is `pyvips.Image.thumbnail(path, 1080)` saved as WebP (same settings as the 1080 WebP), "
        "or as JPEG for reference.",
        "",
        "| photo | one thumbnail → WebP | → JPEG | full set (normal) | ratio vs WebP thumb (target ≤ 1.8) | "
        f"ratio vs JPEG thumb | full set ({HEAVY_FILTER}) | ratio | photos/min, 1 thread |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for megapixels, r in results.items():
        lines.append(
            f"| {megapixels} MP ({r['bytes'] / 1e6:.1f} MB) | {r['thumb_webp'] * 1000:.0f} ms | "
            f"{r['thumb_jpeg'] * 1000:.0f} ms | {r['full'] * 1000:.0f} ms | {r['full'] / r['thumb_webp']:.2f}× | "
            f"{r['full'] / r['thumb_jpeg']:.2f}× | {r['heavy'] * 1000:.0f} ms | {r['heavy'] / r['thumb_webp']:.2f}× | "
            f"{60 / r['single']:.0f} |"
        )
    lines += [
        "",
        f"Peak memory processing the 24 MP photo once in a fresh process: VmHWM {memory['peak_mb']:.0f} MB "
        f"(target ≤ 150 MB; {memory['baseline_mb']:.0f} MB of it is the interpreter with pyvips and the app "
        "imported, before the photo).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from scaling.bench.results import write_section

    with tempfile.TemporaryDirectory(prefix="pinhole-renditions-") as scratch:
        paths = {megapixels: make_photo(Path(scratch), megapixels) for megapixels in SIZES_MP}
        results = {}
        for megapixels, path in paths.items():
            results[megapixels] = measure(path)
            r = results[megapixels]
            print(
                f"{megapixels} MP: thumbnail→webp {r['thumb_webp'] * 1000:.0f} ms, "
                f"→jpeg {r['thumb_jpeg'] * 1000:.0f} ms; "
                f"full set {r['full'] * 1000:.0f} ms (ratio {r['full'] / r['thumb_webp']:.2f}x webp thumb, "
                f"{r['full'] / r['thumb_jpeg']:.2f}x jpeg thumb); with {HEAVY_FILTER} {r['heavy'] * 1000:.0f} ms "
                f"({r['heavy'] / r['thumb_webp']:.2f}x); one thread {60 / r['single']:.0f} photos/min",
                flush=True,
            )
        memory = run_child("memory", paths[24])
        print(f"24 MP peak memory (VmHWM): {memory['peak_mb']:.0f} MB (after imports: {memory['baseline_mb']:.0f} MB)")
    written = write_section("## Renditions", report(results, memory, "make bench BENCH_ARGS=renditions"))
    print(f"written to {written.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
    else:
        main()
