"""A new bundle into a running `edge run`, without stopping the camera (issue 15).

    trigger ──► swap thread: load + check + build ──► ready ──► the loop takes it between two frames
    SIGHUP: the run's --bundle again (a history folder: its `current`)
    --watch-bundles DIR (swap.watch): a history's `current` naming another version, or a bundle
                                       folder dropped into DIR (taken once its files stop changing),
                                       or NAME.tar.gz + its .sha256 dropped there (edge.bundle_drop)
    an MQTT command (edge.bundle_command): fetched, installed in the history, then as the others
    the page: POST /api/bundle/swap (the token), as SIGHUP

Everything slow happens on this module's own thread while the old bundle goes on inspecting:
reading the bundle and checking its hashes and schema (edge.bundle.load_bundle), opening its
interpreter (which checks the model's input against the bundle's preprocessing), fitting its
geometry (ROI, mask) to the frames this camera gives, comparing its calibration reference view
with them (a bundle calibrated on frames of another shape is refused), a smoke inference on the
reference view (else the last frame) that must give a finite score, the health and drift watches
of the new bundle. The loop only swaps a few references at the top of an iteration
(edge.pipeline.Pipeline._take_swap): it never waits on a swap. A check that fails leaves the old
bundle running and is one line on stderr; either way a `bundle` event (state swapped or rejected,
with old and new id and version) goes through the sinks that take events.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import numpy as np
from pydantic import Field

from edge.bundle import CURRENT, MANIFEST, Bundle, load_bundle, sha256_file
from edge.bundle_drop import ArchiveDrops
from edge.detection import Detector
from edge.detector import make_detector
from edge.errors import EdgeError
from edge.health import HealthReference, small_grey
from edge.health_event import HealthEvent, iso_time
from edge.messages import Log
from edge.runtime import for_runtime
from edge.schema import StrictModel
from edge.sinks.base import problem
from edge.tiling import FrameScorer, GeometryConfig, Tiler
from edge.watch import Watch
from edge.web.sensitivity import CalibrationScores, calibration_scores, load_override, override_path

TRIGGERS = ("SIGHUP", "watch", "page", "mqtt")  # mqtt: "mqtt:<request id>" (edge.bundle_command)


class SwapConfig(StrictModel):
    """`swap:` in the run config: where new bundles come from besides SIGHUP and the page."""

    watch: Optional[Path] = Field(
        None,
        description="a bundle history folder (a new `current` is swapped in) or a folder bundle folders (or "
        "NAME.tar.gz + NAME.tar.gz.sha256) are dropped into (the newest new one is swapped in); null: none",
    )
    poll_seconds: float = Field(2.0, gt=0, le=3600, description="how often the watched folder is looked at")


@dataclass
class Prepared:
    """A new bundle, checked and ready to run: what the loop swaps in (edge.pipeline)."""

    bundle: Bundle
    geometry: GeometryConfig
    tiler: Tiler
    capture_tiler: Tiler  # the capture thread's own (buffers are not shared across threads)
    detector: Detector
    scorer: FrameScorer
    threshold: float  # the bundle's, or an override recorded for its model (edge.web.sensitivity)
    watch: Optional[Watch]
    trigger: str
    smoke_score: float
    scores: Optional[CalibrationScores] = None  # its calibration scores (the page's sensitivity panel)
    old: Optional[Bundle] = None  # set when the loop takes it


def identity(bundle: Optional[Bundle], path: Optional[Path] = None) -> dict:
    """What an event and a log line say of a bundle: id, version, folder."""
    if bundle is None:
        return {"id": None, "version": None, "path": str(path) if path is not None else None}
    return {"id": bundle.id, "version": bundle.version, "path": str(bundle.path)}


def _name(bundle: Bundle) -> str:
    return f"{bundle.id} v{bundle.version}"


def _fingerprint(bundle: Bundle) -> tuple:
    try:
        manifest = sha256_file(bundle.path / MANIFEST)
    except OSError:
        manifest = ""
    return bundle.path.resolve(), manifest


class FolderWatch:
    """What is new in the watched folder: a history whose `current` changed, or a bundle dropped in.

    Only stats and a few-byte read per poll. A dropped folder is offered once its files (names,
    sizes, times) look the same on two polls in a row: a copy still in progress is not checked yet.
    What was there at start is not new.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise EdgeError(f"--watch-bundles {folder}: not a folder; give a bundle history or a folder to drop into")
        self._seen = self._snapshot()
        self._settling: dict[Path, Any] = {}

    def _snapshot(self) -> dict[Path, Any]:
        pointer = self.folder / "current"
        if pointer.is_file():  # a history: its current pointer is the one thing that says "new"
            try:
                return {self.folder: (pointer.read_text(encoding="utf-8").strip(), pointer.stat().st_mtime_ns)}
            except (OSError, ValueError):
                return {}
        found = {}
        try:
            children = [c for c in self.folder.iterdir() if c.is_dir() and not c.name.startswith(".")]
        except OSError:
            return {}
        for child in children:
            if (child / MANIFEST).is_file():
                found[child] = _files_signature(child)
        return found

    def poll(self) -> Optional[Path]:
        """A folder to swap to, or None; each change is offered once."""
        now = self._snapshot()
        changed = {p: sig for p, sig in now.items() if self._seen.get(p) != sig}
        if self.folder in changed:  # a history: `current` is replaced in one rename, no settling needed
            self._seen = now
            return self.folder
        stable = [p for p, sig in changed.items() if self._settling.get(p) == sig]
        self._settling = changed
        if not stable:
            return None
        for p in stable:
            self._seen[p] = now[p]
            self._settling.pop(p, None)
        return max(stable, key=lambda p: (now[p][0], str(p)))  # the newest (latest file time)


def _files_signature(folder: Path) -> tuple:
    entries = []
    newest = 0
    for path in sorted(folder.rglob("*")):
        try:
            st = path.stat()
        except OSError:
            continue
        newest = max(newest, st.st_mtime_ns)
        entries.append((str(path.relative_to(folder)), st.st_size, st.st_mtime_ns))
    return newest, tuple(entries)


class BundleSwap:
    """Prepares a new bundle off the loop and hands it to the loop (`ready`, `take`, `adopted`).

    `request()` may be called from a signal handler, the page's thread or the folder watch: it only
    queues the request and wakes this object's thread.
    """

    def __init__(
        self,
        pipeline: Any,
        bundle_path: Optional[Path],
        config: SwapConfig,
        *,
        health: Any,
        drift: Any,
        geometry: Optional[GeometryConfig],
        override: Optional[Path],
        threads: Optional[int],
        log: Log,
    ):
        self.pipeline = pipeline
        self.bundle_path = bundle_path
        self.config = config
        self.health, self.drift, self.geometry = health, drift, geometry
        self.override, self.threads, self.log = override, threads, log
        self.folder = FolderWatch(config.watch) if config.watch is not None else None
        # A drop folder (not a history) also takes NAME.tar.gz + NAME.tar.gz.sha256: checked and unpacked
        # into NAME/ there (edge.bundle_drop), which the folder watch then finds as any bundle folder.
        drop = self.folder is not None and not (self.folder.folder / CURRENT).is_file()
        self.drops = ArchiveDrops(self.folder.folder, lambda a, why: self.refuse("watch", a, why)) if drop else None
        self.ready: Optional[Prepared] = None
        self.last: Optional[dict] = None  # the last outcome, for the page's status
        self.swaps = 0
        self.rejected = 0
        self.listeners: list[Callable[[Prepared], None]] = []  # told on the loop after a swap (the page)
        # Told of every outcome (self.last: state, trigger, old, new, reason), on the loop or this
        # object's thread: quick callbacks only (edge.bundle_command waits for its own trigger's).
        self.outcomes: list[Callable[[dict], None]] = []
        self._requests: deque[tuple[str, Optional[Path]]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- the other threads' side ----------------------------------------------------------------

    def request(self, trigger: str, path: Optional[Path] = None) -> None:
        """Ask for a swap to `path` (default: the run's --bundle); returns at once."""
        self._requests.append((trigger, path))
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="edge-swap", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.poll_seconds if self.folder is not None else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.folder is not None:
                try:
                    if self.drops is not None:
                        self.drops.poll()
                    found = self.folder.poll()
                except OSError as exc:  # a folder removed while it was read: looked at again next time
                    problem(f"--watch-bundles {self.folder.folder}: {exc}", key="swap-watch", every_s=60)
                    found = None
                if found is not None:
                    self._requests.append(("watch", found))
            while self._requests and not self._stop.is_set():
                trigger, path = self._requests.popleft()
                self._wait_taken()
                self._attempt(trigger, path if path is not None else self.bundle_path)

    def _wait_taken(self) -> None:
        # The next one is compared with the bundle running: wait until the loop took the last one.
        while self.ready is not None and not self._stop.is_set():
            time.sleep(0.05)

    def _attempt(self, trigger: str, path: Optional[Path]) -> None:
        old = self.pipeline.bundle
        new: Optional[Bundle] = None
        try:
            if path is None:
                raise EdgeError("the run has no bundle path to load again")
            # schema and hashes; the threshold in force on the run's runtime (an ONNX model's own)
            new = for_runtime(load_bundle(path), getattr(self.pipeline, "runtime", None))
            if _fingerprint(new) == _fingerprint(old):
                self.log(f"bundle swap ({trigger}): {new.path} is the bundle running ({_name(old)}); nothing to swap")
                return
            self.ready = self.prepare(new, trigger)
        except EdgeError as exc:
            self._reject(trigger, path, old, new, str(exc))
        except Exception as exc:  # noqa: BLE001 - an interpreter or a model that breaks: the old one runs on
            self._reject(trigger, path, old, new, f"{type(exc).__name__}: {exc}")

    # -- the checks (this object's thread) ------------------------------------------------------

    def prepare(self, bundle: Bundle, trigger: str) -> Prepared:
        """Everything the loop needs to run `bundle`, each check passed; EdgeError says which failed."""
        from edge.pipeline import resolve_geometry  # edge.pipeline holds this object: import at use

        geometry, mask_base = resolve_geometry(bundle, self.geometry, None)
        tiler = Tiler(bundle.manifest.preprocessing, geometry, base=mask_base)
        # On the run's runtime (LiteRT, a delegate, ONNX Runtime); checks the model's input against the preprocessing.
        detector = make_detector(bundle, self.threads, getattr(self.pipeline, "runtime", None), self.log)
        scorer = FrameScorer(detector, tiler)
        frame = self._smoke_frame(bundle, geometry)
        tiler.layout(frame.shape[:2])  # ROI inside the frame, mask at frame or ROI size
        score = scorer.score(frame).score
        if not np.isfinite(score):
            raise EdgeError(f"the smoke inference gave a score of {score}: the model does not run on these frames")
        health = self.health
        if getattr(bundle.manifest, "signal", None) is not None:  # a signal window is no picture (as edge.app)
            health = health.model_copy(update={"enabled": False})
        watch = Watch.for_bundle(bundle, health, self.drift, self.pipeline.threshold, self.log)
        return Prepared(
            bundle=bundle,
            geometry=geometry,
            tiler=tiler,
            capture_tiler=tiler.twin(),
            detector=detector,
            scorer=scorer,
            threshold=self._threshold(bundle),
            watch=watch,
            trigger=trigger,
            smoke_score=float(score),
            scores=calibration_scores(bundle),
        )

    def _smoke_frame(self, bundle: Bundle, geometry: GeometryConfig) -> np.ndarray:
        """The bundle's reference view at the camera's frame size, else the last frame; the reference
        view's shape is checked against the camera's frames first."""
        last: Optional[np.ndarray] = getattr(self.pipeline, "last_image", None)
        reference = HealthReference.load(bundle.path)
        view = reference.frame if reference is not None else None
        if view is None:
            if last is None:
                raise EdgeError("no frame seen yet and the bundle has no reference view to test it on; try again")
            return last
        view = np.clip(view, 0, 255).astype(np.uint8)
        if last is None:  # no frame yet (a camera still opening): the small view, as the camera's colours
            roi = geometry.roi if geometry.roi is not None else bundle.manifest.preprocessing.roi
            if roi is not None or geometry.mask is not None:
                raise EdgeError(
                    "no frame seen yet to fit the bundle's region of interest and mask to; ask again once the "
                    "camera gives frames"
                )
            return cv2.cvtColor(view, cv2.COLOR_GRAY2BGR)
        seen = small_grey(last, reference.width).shape
        if seen != view.shape:
            h, w = last.shape[:2]
            raise EdgeError(
                f"the bundle was calibrated on frames of another shape: its reference view is {view.shape[1]}x"
                f"{view.shape[0]}, this camera's {w}x{h} frames give {seen[1]}x{seen[0]}; calibrate on this camera"
            )
        view = cv2.resize(view, (last.shape[1], last.shape[0]), interpolation=cv2.INTER_LINEAR)
        return cv2.cvtColor(view, cv2.COLOR_GRAY2BGR) if last.ndim == 3 else view

    def _threshold(self, bundle: Bundle) -> float:
        """An override the page recorded for this bundle's model holds for it, as at the start of a run."""
        record = load_override(bundle, override_path(bundle, self.override))
        return float(record["threshold"]) if record is not None else bundle.threshold

    # -- outcomes -------------------------------------------------------------------------------

    def take(self) -> Prepared:
        """The loop's side: the prepared bundle, once (edge.pipeline checks `ready` first)."""
        prepared, self.ready = self.ready, None
        prepared.old = self.pipeline.bundle
        return prepared

    def adopted(self, new: Prepared) -> None:
        """After the loop swapped: one line, the event, the page told (on the loop: all quick)."""
        self.swaps += 1
        old = new.old
        self.log(
            f"bundle swapped ({new.trigger}): {_name(old)} -> {_name(new.bundle)} ({new.bundle.path}), "
            f"threshold {new.threshold:.6g}"
        )
        self._event("swapped", new.trigger, old, identity(new.bundle), None)
        for listener in self.listeners:
            try:
                listener(new)
            except Exception as exc:  # noqa: BLE001 - the page's view of it must not stop the loop
                self.log(f"after the bundle swap: {type(exc).__name__}: {exc}")

    def refuse(self, trigger: str, path: Optional[Path], why: str) -> None:
        """A new bundle refused before it reached this object (a bundle command's download or archive):
        the same line, event and outcome as a failed check here."""
        self._reject(trigger, path, self.pipeline.bundle, None, why)

    def _reject(self, trigger: str, path: Optional[Path], old: Bundle, new: Optional[Bundle], why: str) -> None:
        self.rejected += 1
        self.log(f"bundle swap ({trigger}) rejected: {why}; still running {_name(old)}")
        self._event("rejected", trigger, old, identity(new, path), why)

    def _event(self, state: str, trigger: str, old: Bundle, new: dict, why: Optional[str]) -> None:
        now = time.time()
        detail = {"trigger": trigger, "old": identity(old), "new": new}
        if why is not None:
            detail["reason"] = why
        self.last = {"state": state, "time": iso_time(now), **detail}
        advice = (
            "alerts from now on carry the new bundle's id and version"
            if state == "swapped"
            else "the old bundle runs on: fix the new bundle (see reason) and try again"
        )
        source = getattr(getattr(self.pipeline.metrics, "source", None), "name", "")
        event = HealthEvent(
            kind="bundle",
            state=state,
            previous=_name(old),
            since=iso_time(now),
            detail=detail,
            advice=advice,
            source=source or "",
            inspection=getattr(self.pipeline, "inspection", None),  # several cameras: whose bundle
        )
        self.pipeline.dispatcher.submit_event(event)
        for told in self.outcomes:
            try:
                told(self.last)
            except Exception as exc:  # noqa: BLE001 - a listener must not stop the loop or the swap thread
                self.log(f"after the bundle {state}: {type(exc).__name__}: {exc}")


def swap_for_run(config: Any, pipeline: Any, log: Log) -> BundleSwap:
    """The swap service of an `edge run` (edge/app.py), from its RunConfig; a watched folder that is
    not there is one line before anything opens."""
    return BundleSwap(
        pipeline,
        config.bundle,
        config.swap,
        health=config.health,
        drift=config.drift,
        geometry=config.geometry if config.geometry.model_fields_set else None,
        override=config.web.override,
        threads=config.threads,
        log=log,
    )
