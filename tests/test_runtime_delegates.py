"""LiteRT delegates with the delegates that can exist here (edge/runtime.py).

No Edge TPU or GPU delegate library is installed on this machine, which is exactly the case a user
meets first: a missing library is one line and a non-zero exit; with `delegate_fallback: cpu` the
run goes on on the CPU and says so. A file that is not a library stands for a delegate that fails
to load. An Edge-TPU-compiled model cannot be made here (edgetpu_compiler is x86 Debian only and
not installed): the int8 model with edgetpu_compiler's custom-op name appended (a flatbuffer ignores
trailing bytes) stands for one; it is how edge.runtime recognises a compiled model.
"""

from __future__ import annotations

import json
import shutil

import pytest
from cli_helpers import run_edge_in_process

from edge.runtime import EDGETPU_OP

pytest.importorskip("tensorflow")


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def delegate_bundles(int8_model, synthetic_mvtec, tmp_path_factory):
    """(bundle, bundle keeping a 'compiled' Edge TPU model beside its CPU model, folder of test images)."""
    from calibration.calibrate import calibrate

    base = tmp_path_factory.mktemp("delegates")
    compiled = base / "model_int8_edgetpu.tflite"
    compiled.write_bytes(int8_model.read_bytes() + EDGETPU_OP)
    plain = calibrate(int8_model, synthetic_mvtec, out=base / "bundle", progress=False, log=_quiet)
    with_tpu = calibrate(
        int8_model,
        synthetic_mvtec,
        out=base / "bundle_tpu",
        progress=False,
        log=_quiet,
        variants={"edgetpu": compiled},
    )
    return plain.path, with_tpu.path, mixed_images(synthetic_mvtec, base / "mixed")


def mixed_images(mvtec, folder):
    """The test split's good and defective images in one folder: a run alerts on some of them only."""
    folder.mkdir()
    for kind in ("good", "defect"):
        for image in sorted((mvtec / "test" / kind).glob("*.png")):
            shutil.copyfile(image, folder / f"{kind}_{image.name}")
    return folder


def _run(bundle, images, tmp_path, *flags):
    return run_edge_in_process("run", "--bundle", bundle, "--images", images, "--out", tmp_path / "out", *flags)


def _alerted(stdout: str) -> list[str]:
    return sorted(json.loads(line)["source"] for line in stdout.splitlines() if line.startswith("{"))


def test_missing_delegate_library_is_one_line_and_a_non_zero_exit(delegate_bundles, tmp_path):
    bundle, _, images = delegate_bundles
    r = _run(bundle, images, tmp_path, "--delegate", "gpu")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "libtensorflowlite_gpu_delegate.so" in lines[0] and "could not load" in lines[0]
    assert "--delegate-fallback cpu" in lines[0]  # what to do about it
    assert not (tmp_path / "out").exists()  # nothing started


def test_delegate_that_fails_with_fallback_runs_on_the_cpu_and_says_so(delegate_bundles, tmp_path):
    bundle, _, images = delegate_bundles
    not_a_library = tmp_path / "libbroken_delegate.so"
    not_a_library.write_text("this is not a shared library\n")
    cpu = _run(bundle, images, tmp_path / "cpu")
    fallback = _run(bundle, images, tmp_path / "fb", "--delegate", str(not_a_library), "--delegate-fallback", "cpu")
    assert fallback.returncode == 0, fallback.stderr
    assert "Traceback" not in fallback.stderr and "Exception ignored" not in fallback.stderr
    assert f"delegate library {not_a_library} could not load" in fallback.stderr
    assert "running on the CPU instead (delegate_fallback: cpu)" in fallback.stderr
    assert "on the CPU (CPU fallback" in fallback.stderr  # the start line says what runs
    assert _alerted(fallback.stdout) == _alerted(cpu.stdout) != []


def test_fallback_from_the_config_file(delegate_bundles, tmp_path):
    bundle, _, images = delegate_bundles
    config = tmp_path / "edge.yaml"
    config.write_text(f"bundle: {bundle}\ndelegate: edgetpu\ndelegate_fallback: cpu\nsource:\n  images: {images}\n")
    r = run_edge_in_process("run", "--config", config, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "not compiled for the Edge TPU" in r.stderr and "running on the CPU instead" in r.stderr


def test_bundle_keeps_the_compiled_model_beside_the_cpu_model_both_hashed(delegate_bundles, tmp_path):
    from edge.bundle import load_bundle

    _, with_tpu, images = delegate_bundles
    manifest = load_bundle(with_tpu).manifest
    assert manifest.model.variants == {"edgetpu": "model_int8_edgetpu.tflite"}
    assert "model_int8_edgetpu.tflite" in manifest.files and manifest.model.file == "model_int8.tflite"
    assert manifest.threshold.runtime.endswith("on the CPU")  # calibrated on the CPU model here
    # --delegate edgetpu picks the compiled model; its library is missing here: one line naming it
    r = _run(with_tpu, images, tmp_path, "--delegate", "edgetpu")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "libedgetpu.so.1" in r.stderr and "libedgetpu1-std" in r.stderr
    # with the fallback it runs the CPU model kept beside it, not the compiled one
    r = _run(with_tpu, images, tmp_path / "fb", "--delegate", "edgetpu", "--delegate-fallback", "cpu")
    assert r.returncode == 0, r.stderr
    assert "model model_int8.tflite on ai-edge-litert on the CPU (CPU fallback: delegate edgetpu" in r.stderr
    # a changed compiled model is refused like a changed CPU model
    tampered = tmp_path / "tampered"
    shutil.copytree(with_tpu, tampered)
    with open(tampered / "model_int8_edgetpu.tflite", "ab") as f:
        f.write(b"\0")
    r = _run(tampered, images, tmp_path / "t")
    assert r.returncode != 0 and "model_int8_edgetpu.tflite was changed after calibration" in r.stderr


def test_compiled_model_without_the_delegate_is_one_line(delegate_bundles, int8_model, tmp_path):
    from edge.bundle import MANIFEST, sha256_file

    _, with_tpu, images = delegate_bundles
    only_compiled = tmp_path / "only_compiled"
    shutil.copytree(with_tpu, only_compiled)
    shutil.copyfile(only_compiled / "model_int8_edgetpu.tflite", only_compiled / "model_int8.tflite")
    raw = json.loads((only_compiled / MANIFEST).read_text())
    raw["model"]["sha256"] = sha256_file(only_compiled / "model_int8.tflite")
    (only_compiled / MANIFEST).write_text(json.dumps(raw))
    r = _run(only_compiled, images, tmp_path)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "compiled for the Edge TPU" in r.stderr and "--delegate edgetpu" in r.stderr
    # and calibrating a compiled model on a machine without the Edge TPU says the same
    compiled = only_compiled / "model_int8_edgetpu.tflite"
    shutil.copyfile(int8_model.with_suffix(".json"), compiled.with_suffix(".json"))
    r = run_edge_in_process("calibrate", compiled, "--normal", images, "--out", tmp_path / "b")
    assert r.returncode != 0 and "compiled for the Edge TPU" in r.stderr


def test_unknown_delegate_name_is_a_config_error(delegate_bundles, tmp_path):
    bundle, _, images = delegate_bundles
    r = _run(bundle, images, tmp_path, "--delegate", "tpu")
    assert r.returncode != 0
    assert r.stderr.strip() == (
        "error: --delegate: unknown delegate 'tpu': give edgetpu, gpu or the path of a delegate library (.so)"
    )
