"""The device never imports TensorFlow: every module of `edge/` must import with it made unimportable."""

import subprocess
import sys
import textwrap

BLOCK_TF = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow.") or name in ("keras", "tf_keras"):
                raise ImportError(f"{name} is blocked: the device runtime must not import it")
            return None

    sys.meta_path.insert(0, _NoTensorFlow())
    """
)


def run_without_tensorflow(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TF + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_every_edge_module_imports_without_tensorflow():
    result = run_without_tensorflow(
        """
        import importlib, pkgutil
        import edge
        names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if m.name != "edge.__main__"]
        for name in names:
            importlib.import_module(name)
        assert "tensorflow" not in sys.modules
        from edge.model import interpreter_backend
        print(len(names), interpreter_backend()[0])
        """
    )
    assert result.returncode == 0, result.stderr
    count, backend = result.stdout.split()
    assert int(count) >= 10
    assert backend in ("ai-edge-litert", "tflite-runtime")


def test_cli_help_lists_commands_without_tensorflow():
    result = run_without_tensorflow(
        """
        from edge.cli import main
        sys.argv = ["edge", "--help"]
        main()
        """
    )
    assert result.returncode == 0, result.stderr
    for command in ("run", "demo", "calibrate", "train", "export"):
        assert command in result.stdout
