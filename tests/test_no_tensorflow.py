"""The device never imports TensorFlow: every module of `edge/` must import with it made unimportable.

And `edge/` stands alone: none of its modules imports the desktop packages or the CLI.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

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
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                # the page's server needs the `web` extra; a device installed with only `edge` lacks it
                if exc.name not in ("starlette", "uvicorn"):
                    raise
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
        from edge_cli.app import main
        sys.argv = ["edge", "--help"]
        main()
        """
    )
    assert result.returncode == 0, result.stderr
    for command in ("run", "demo", "calibrate", "train", "export"):
        assert command in result.stdout


def test_the_device_package_imports_no_desktop_package_nor_the_cli():
    """Static: every import statement in edge/, at any depth (lazy imports in functions too)."""
    outside = ("train", "export", "calibration", "edge_cli", "benchmarks", "scripts")
    edge_dir = Path(__file__).resolve().parents[1] / "edge"
    offenders = []
    for path in sorted(edge_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in outside]
    assert len(list(edge_dir.rglob("*.py"))) >= 10
    assert not offenders, offenders
