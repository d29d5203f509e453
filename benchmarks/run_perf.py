"""Performance suite: the default autoencoder, four exports, `edge bench` on each, Keras baseline,
and benchmarks/results/performance.md.

    .venv/bin/python benchmarks/run_perf.py                # full run (about 10-15 min on 2 cores)
    .venv/bin/python benchmarks/run_perf.py --quick        # smoke run: fewer frames, one repeat
    .venv/bin/python benchmarks/run_perf.py --report-only  # rewrite the markdown from out/perf/*.json

Steps (work files under out/perf/, which git ignores):
 1. training frames: 300 frames of the conveyor video (intel-iot-devkit sample-videos, CC BY 4.0)
    and 56 synthetic good surfaces;
 2. the default autoencoder (train/autoencoder.py defaults: 128x128 grey, filters 32,64, latent
    64), trained for a few epochs: speed does not depend on training, alert rates do a little;
 3. export/run.py: float32, float16, dynamic-range and full-int8 .tflite of that one model;
 4. a bundle per export with a hand-set threshold: scores of 120 video frames and of the synthetic
    frames computed by edge's own detector on the exported model (calibrate what you deploy), set
    so about 1% of video frames and no synthetic frame alert;
 5. `edge bench` in a subprocess per bundle (the edge process alone: its peak RSS, no TensorFlow);
 6. the tutorials' way in a subprocess: Keras model.predict per frame (and model(x) per frame);
 7. reference models for the Raspberry Pi estimate: MobileNet V1 and V2 (Keras applications,
    random weights) as full-int8 .tflite, invoke time here vs published Pi 4 figures;
 8. the same int8 and float32 model exported with a free batch dimension (the export before
    `convert_keras(fixed_batch=True)` became the default), benchmarked the same way, for the
    fixed-batch comparison;
 9. model input prepared in the capture thread (`edge run`'s way) against on the inference loop:
    int8, 1 thread, interleaved with interpreter-alone runs so each ratio pairs like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VIDEO = (
    Path(os.environ.get("EDGE_DATASETS", ROOT.parent / "shared" / "datasets"))
    / "conveyor-video"
    / "bottle-detection.mp4"
)
WORK = ROOT / "out" / "perf"
RESULTS = ROOT / "benchmarks" / "results"
QUANTS = ("float32", "float16", "dynamic", "int8")
EDGE = [sys.executable, "-m", "edge_cli"]

from benchmarks.pi_reference import PI4_PUBLISHED_MS  # noqa: E402  (ROOT is on sys.path now)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def quiet(_msg: str) -> None:
    pass


# -- 1-4: model, exports, bundles -------------------------------------------------------------------


def training_frames(n: int = 300) -> Path:
    import cv2

    folder = WORK / "frames"
    if folder.is_dir() and len(list(folder.glob("synthetic_*.png"))) >= 56:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(VIDEO))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    step = max(1, total // n)
    i = saved = 0
    while saved < n:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            cv2.imwrite(str(folder / f"frame_{i:05d}.png"), frame)
            saved += 1
        i += 1
    cap.release()
    # Good synthetic surfaces too (other seeds than the benchmark's frames), so the benchmark's
    # synthetic frames score like parts the model knows and alert only on the blob.
    from edge.bench import synthetic_frames

    for w, h in ((640, 480), (1280, 720)):
        for seed in range(100, 104):
            for j, frame in enumerate(synthetic_frames(w, h, count=8, seed=seed)[:7]):
                cv2.imwrite(str(folder / f"synthetic_{w}x{h}_{seed}_{j}.png"), frame)
    log(f"{saved} training frames from {VIDEO.name} and 56 synthetic good frames in {folder}")
    return folder


def train_default(frames: Path, epochs: int) -> Path:
    run = WORK / "run"
    if (run / "model.keras").is_file():
        log(f"reusing {run}")
        return run
    from train.autoencoder import train_autoencoder

    log(f"training the default autoencoder for {epochs} epochs on {frames} …")
    t = time.perf_counter()
    out = train_autoencoder(frames, run, color="grey", epochs=epochs, patience=0, threads=2, progress=False, log=quiet)
    log(f"trained in {time.perf_counter() - t:.0f} s")
    return out


def export_all(run: Path) -> dict[str, Path]:
    from edge.model import TFLiteModel
    from export.run import export_run

    models = {}
    for q in QUANTS:
        target = run / "export" / f"model_{q}.tflite"
        if target.is_file() and TFLiteModel(target).fixed_batch != 1:
            target.unlink()  # exported before the fixed batch became the default: export again
        if not target.is_file():
            log(f"exporting {q} …")
            export_run(run, q, check_parity=False, log=quiet)
        models[q] = target
    return models


def export_free_batch(run: Path, models: dict[str, Path]) -> dict[str, Path]:
    """int8 and float32 exports of the same Keras model with a free batch dimension (the old default)."""
    from edge.bundle import read_card, write_card
    from edge.imaging import list_images, read_image
    from edge.preprocess import Preprocessor
    from export.convert import convert_keras
    from train.tfenv import import_tensorflow, native_output_captured

    out = {}
    for q in ("int8", "float32"):
        target = run / "export" / f"model_{q}_free.tflite"
        out[f"{q}_free"] = target
        if target.is_file():
            continue
        import_tensorflow()
        import keras

        log(f"exporting {q} with a free batch dimension …")
        card = read_card(models[q])
        model = keras.models.load_model(run / "model.keras", compile=False)
        files = list_images(WORK / "frames")[::3]
        rep = Preprocessor(card.preprocessing).prepare_batch([read_image(f) for f in files])
        with native_output_captured():
            target.write_bytes(convert_keras(model, q, rep, fixed_batch=False))
        write_card(target, card)
    return out


def video_sample(n: int = 120, last: int | None = None) -> list[np.ndarray]:
    """n frames spread over the clip (or over its first `last` frames)."""
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if last is None else last
    frames = []
    for idx in np.linspace(0, total - 1, n).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
        ok, frame = cap.read()
        if ok:
            frames.append(frame)
    cap.release()
    return frames


def make_bundles(models: dict[str, Path], sizes: list[tuple[int, int]], frames: int = 300) -> dict[str, dict]:
    """A bundle per export; the threshold from edge's own scores of the exported model."""
    from benchmarks.helpers import quick_bundle
    from edge.bench import synthetic_frames
    from edge.bundle import read_card
    from edge.detector import AutoencoderDetector
    from edge.model import TFLiteModel
    from edge.preprocess import Preprocessor

    video = video_sample()
    synthetic = [f for w, h in sizes for f in synthetic_frames(w, h)]
    out = {}
    for q, path in models.items():
        card = read_card(path)
        pre = Preprocessor(card.preprocessing)
        detector = AutoencoderDetector(TFLiteModel(path, num_threads=2), card.score)

        def scores(frames: list[np.ndarray], pre=pre, detector=detector) -> np.ndarray:
            batch = pre.prepare_batch(frames)
            return np.concatenate([detector.detect(batch[i : i + 16]).scores for i in range(0, len(batch), 16)])

        sv, ss = scores(video), scores(synthetic)
        # About 1% of the video over it; the synthetic runs measure the no-alert path (alert cost
        # comes from the video run), so it also sits above every synthetic frame.
        threshold = float(max(np.percentile(sv, 99), ss.max() * 1.05))
        bundle = quick_bundle(
            path,
            WORK / "bundles" / q,
            threshold,
            method="benchmark: p99 of 120 video frames, above every synthetic frame",
        )
        alerting = float((sv > threshold).mean())
        out[q] = {"bundle": str(bundle.path), "threshold": threshold, "video_alert_fraction": round(alerting, 4)}
        log(f"bundle {q}: threshold {threshold:.5g} ({alerting:.1%} of sampled video frames over it)")
        if q == "int8":
            # The alert path on purpose: one frame in ten over the threshold, among the frames the
            # pipeline run will read (the start of the clip; the --frames of one run).
            head = scores(video_sample(100, last=frames))
            low = float(np.percentile(head, 90))
            b = quick_bundle(
                path,
                WORK / "bundles" / "int8_alerts",
                low,
                method=f"benchmark: p90 of the first {frames} video frames (alert path)",
            )
            out["int8_alerts"] = {
                "bundle": str(b.path),
                "threshold": low,
                "video_alert_fraction": round(float((head > low).mean()), 4),
            }
    return out


# -- 5: edge bench ----------------------------------------------------------------------------------


def run_edge_bench(name: str, bundle: str, args: list[str], timeout: int = 3600) -> dict:
    out = WORK / f"bench_{name}.json"
    cmd = [*EDGE, "bench", bundle, *args, "--json", str(out), "-q"]
    shown = "edge bench " + " ".join([os.path.relpath(bundle, ROOT), *args, "--json", os.path.relpath(out, ROOT), "-q"])
    log(f"$ {shown}")
    t = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"edge bench failed ({result.returncode}):\n{result.stderr[-3000:]}")
    data = json.loads(out.read_text())
    data["command"] = shown
    data["wall_s"] = round(time.perf_counter() - t, 1)
    out.write_text(json.dumps(data, indent=2) + "\n")
    log(f"  done in {data['wall_s']:.0f} s")
    return data


# -- 9: where the model input is prepared ---------------------------------------------------------

PREPARE_AB = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from edge.bench import SourceSpec, bench_invoke, bench_pipeline
    from edge.bundle import load_bundle
    bundle_path, video = sys.argv[1], sys.argv[2]
    frames, repeat, out = int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
    bundle = load_bundle(bundle_path)
    specs = {
        "synthetic 640x480": SourceSpec(size=(640, 480)),
        f"video {Path(video).name}": SourceSpec(video=Path(video)),
    }
    result = {}
    for label, spec in specs.items():
        runs = result[label] = {"invoke": [], "loop": [], "capture": [], "load_before": list(os.getloadavg())}
        for r in range(repeat):
            # Interleaved: interpreter alone, then each way, so a change of load hits all three.
            runs["invoke"].append(bench_invoke(bundle.model_path, 1, frames))
            for where in ("loop", "capture"):
                p = bench_pipeline(bundle, spec, 1, frames, out / f"{where}-{r}", prepare_in_capture=where == "capture")
                runs[where].append(p)
    print(json.dumps(result))
    """
)


def prepare_ab(bundle: str, frames: int, repeat: int) -> dict:
    log(f"model input prepared on the loop vs in the capture thread: int8, 1 thread, {frames} frames x {repeat} …")
    result = subprocess.run(
        [sys.executable, "-c", PREPARE_AB, bundle, str(VIDEO), str(frames), str(repeat), str(WORK / "prepare_ab")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"prepare A/B failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    (WORK / "prepare_ab.json").write_text(json.dumps(data, indent=2) + "\n")
    for label, runs in data.items():
        ratios = [c["fps"] / i["fps"] for i, c in zip(runs["invoke"], runs["capture"], strict=True)]
        log(f"  {label}: capture/invoke {', '.join(f'{x:.2f}' for x in ratios)}")
    return data


# -- 6: Keras baseline (subprocess) ---------------------------------------------------------------

KERAS_BASELINE = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from train.tfenv import import_tensorflow
    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from edge.bench import peak_rss_mb, synthetic_frames
    from edge.preprocess import Preprocessing, Preprocessor, to_unit_float

    model_path, frames_n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model = keras.models.load_model(model_path, compile=False)
    h, w, c = model.input_shape[1:]
    pre = Preprocessor(Preprocessing(width=w, height=h, color="grey" if c == 1 else "rgb"))
    frames = synthetic_frames(640, 480)

    def per_frame(fn):
        rates = []
        for _ in range(repeat):
            for f in frames[:3]:
                fn(to_unit_float(pre.prepare(f)[None]))
            t = time.perf_counter()
            for i in range(frames_n):
                x = to_unit_float(pre.prepare(frames[i % len(frames)])[None])
                rec = np.asarray(fn(x))
                float(np.mean((x - rec) ** 2))
            rates.append(frames_n / (time.perf_counter() - t))
        return rates

    predict = per_frame(lambda x: model.predict(x, verbose=0))
    call = per_frame(lambda x: model(x, training=False))
    print(json.dumps({
        "predict_fps_repeats": [round(r, 2) for r in predict],
        "call_fps_repeats": [round(r, 2) for r in call],
        "predict_fps": round(float(np.median(predict)), 2),
        "call_fps": round(float(np.median(call)), 2),
        "peak_rss_mb": peak_rss_mb(),
        "tensorflow": tf.__version__, "keras": keras.__version__,
    }))
    """
)


def keras_baseline(run: Path, frames: int, repeat: int) -> dict:
    log(f"Keras baseline: model.predict per 640x480 frame, {frames} frames x {repeat} …")
    result = subprocess.run(
        [sys.executable, "-c", KERAS_BASELINE, str(run / "model.keras"), str(frames), str(repeat)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"Keras baseline failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    (WORK / "keras_baseline.json").write_text(json.dumps(data, indent=2) + "\n")
    log(f"  predict {data['predict_fps']} fps, call {data['call_fps']} fps")
    return data


# -- 7: reference models for the Raspberry Pi estimate ----------------------------------------------


def reference_models() -> dict[str, Path]:
    out = {}
    for name in PI4_PUBLISHED_MS:
        path = WORK / "reference" / f"{name}_int8.tflite"
        out[name] = path
        if path.is_file():
            continue
        import keras

        from export.convert import convert_keras
        from train.tfenv import native_output_captured

        log(f"exporting reference {name} (224x224x3, random weights) as full int8 …")
        build = keras.applications.MobileNet if name == "mobilenet_v1" else keras.applications.MobileNetV2
        model = build(input_shape=(224, 224, 3), weights=None, classes=1000)
        rep = np.random.default_rng(0).integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
        with native_output_captured():
            flat = convert_keras(model, "int8", rep)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(flat)
    return out


INVOKE_ONLY = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from edge.bench import bench_invoke
    path, threads, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    runs = [bench_invoke(path, threads, n) for _ in range(repeat)]
    runs.sort(key=lambda r: r["ms"]["p50"])
    print(json.dumps(runs[(len(runs) - 1) // 2]))
    """
)


def reference_invoke(models: dict[str, Path], threads: list[int], repeat: int) -> dict:
    out: dict = {}
    for name, path in models.items():
        out[name] = {}
        for t in threads:
            result = subprocess.run(
                [sys.executable, "-c", INVOKE_ONLY, str(path), str(t), "50", str(repeat)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=1800,
            )
            if result.returncode != 0:
                raise SystemExit(f"reference invoke failed:\n{result.stderr[-3000:]}")
            out[name][str(t)] = json.loads(result.stdout.strip().splitlines()[-1])
            log(f"reference {name}, {t} thread(s): p50 {out[name][str(t)]['ms']['p50']:.2f} ms")
    (WORK / "reference.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


# -- preprocessing: the old order (resize, then grey) against the new (grey, then resize) -------------


def preprocess_compare(repeat: int = 3, calls: int = 300) -> dict:
    import cv2

    from edge.bench import synthetic_frames
    from edge.preprocess import Preprocessing, Preprocessor

    pre = Preprocessor(Preprocessing(width=128, height=128, color="grey"))
    out = {}
    for w, h in ((640, 360), (640, 480), (1280, 720)):
        frame = synthetic_frames(w, h, count=1)[0]

        def old(frame=frame):
            return cv2.cvtColor(cv2.resize(frame, (128, 128), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)

        def new(frame=frame):
            return pre.prepare(frame)

        res = {}
        for name, fn in (("resize_then_grey_ms", old), ("grey_then_resize_ms", new)):
            runs = []
            for _ in range(repeat):
                for _ in range(10):
                    fn()
                t = time.process_time()
                for _ in range(calls):
                    fn()
                runs.append(1000 * (time.process_time() - t) / calls)
            res[name] = round(float(np.median(runs)), 3)
        out[f"{w}x{h}"] = res
    (WORK / "preprocess.json").write_text(json.dumps(out, indent=2) + "\n")
    log(f"preprocess CPU ms, old -> new: {out}")
    return out


# -- the suite ----------------------------------------------------------------------------------------


def run_suite(args) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    if not VIDEO.is_file():
        raise SystemExit(f"{VIDEO} not found: the performance suite measures on the real conveyor video")
    frames = training_frames()
    run = train_default(frames, args.epochs)
    models = export_all(run)
    models.update(export_free_batch(run, models))
    bundles = make_bundles(models, [(640, 480), (1280, 720)], args.frames)
    (WORK / "bundles.json").write_text(json.dumps(bundles, indent=2) + "\n")

    n, r = (str(args.frames), str(args.repeat))
    only = set(args.only.split(",")) if args.only else None

    def edge_bench(name: str, bundle: str, bench_args: list[str]) -> None:
        if only is None or name in only:
            run_edge_bench(name, bundle, bench_args)

    common = [
        "--video",
        os.path.relpath(VIDEO, ROOT),
        "--size",
        "640x480",
        "--size",
        "1280x720",
        "--threads",
        "1,2,4",
        "--frames",
        n,
        "--repeat",
        r,
        "--tiles",
        "4",
    ]
    edge_bench("int8", bundles["int8"]["bundle"], [*common, "--profile"])
    edge_bench("float32", bundles["float32"]["bundle"], common)
    edge_bench("float16", bundles["float16"]["bundle"], common)
    # Dynamic-range: with a free batch its transposed convolutions ran on TFLite's hybrid kernels
    # (~170 ms per invoke: 10 frames were enough); with the fixed batch XNNPACK takes the whole graph.
    edge_bench("dynamic", bundles["dynamic"]["bundle"], common)
    # A camera at 30 fps in latest-frame mode: what the line sees (drops, capture-to-decision latency).
    edge_bench(
        "int8_camera30",
        bundles["int8"]["bundle"],
        ["--size", "640x480", "--rate", "30", "--threads", "1,2", "--frames", n, "--repeat", r, "--tiles", "0"],
    )
    # The alert path: ~10% of video frames alert (snapshots, events file, SQLite on the loop).
    edge_bench(
        "int8_alerts",
        bundles["int8_alerts"]["bundle"],
        ["--video", os.path.relpath(VIDEO, ROOT), "--threads", "1", "--frames", n, "--repeat", r, "--tiles", "0"],
    )
    # Tiling (edge.tiling): 1280x720 cut into 256x256 tiles, all tiles of a frame in one invoke.
    edge_bench(
        "int8_tiled",
        bundles["int8"]["bundle"],
        [
            "--size",
            "1280x720",
            "--tile",
            "256x256",
            "--threads",
            "1",
            "--frames",
            str(max(30, args.frames // 5)),
            "--repeat",
            r,
            "--tiles",
            "28",
        ],
    )
    # The old export, free batch dimension: the fixed-batch comparison.
    edge_bench("int8_free", bundles["int8_free"]["bundle"], common)
    edge_bench("float32_free", bundles["float32_free"]["bundle"], common)
    if only is None or "prepare" in only:
        prepare_ab(bundles["int8"]["bundle"], args.frames, args.repeat)
    if only is None or "keras" in only:
        keras_baseline(run, max(30, args.frames // 3), args.repeat)
    if only is None or "reference" in only:
        reference_invoke(reference_models(), [1, 2], args.repeat)
    if only is None or "preprocess" in only:
        preprocess_compare()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300, help="frames per pipeline run (default 300)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats per measurement, medians reported (default 3)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the default autoencoder (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 frames, 1 repeat")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the markdown from out/perf/*.json")
    parser.add_argument(
        "--only", help="comma-separated runs to redo (e.g. int8_alerts,keras); the others' JSON is kept"
    )
    args = parser.parse_args()
    if args.quick:
        args.frames, args.repeat = 60, 1
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if not args.report_only:
        if not args.only:
            WORK.mkdir(parents=True, exist_ok=True)
            (WORK / "started.txt").write_text(started + "\n")
        run_suite(args)
    from benchmarks.perf_report import write_report

    invocation = (
        "benchmarks/run_perf.py"
        + (" --quick" if args.quick else "")
        + (
            ""
            if args.quick or (args.frames, args.repeat) == (300, 3)
            else f" --frames {args.frames} --repeat {args.repeat}"
        )
    )
    path = write_report(WORK, RESULTS, invocation, None)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
