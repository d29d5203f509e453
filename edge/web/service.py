"""The page's server as a service of a run: checked and bound before the run starts, served from one
thread while it runs, stopped with it (edge/app.py calls these three).

    prepare_web(config)  address, token, the `web` extra, the socket bound: every problem one line
    WebService.start()   the page's context over the pipeline, uvicorn in a daemon thread
    WebService.close()   asks uvicorn to stop, waits briefly; the loop never waits on it meanwhile
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import threading
from pathlib import Path
from typing import Any, Optional

from edge.errors import EdgeError
from edge.messages import Log
from edge.schema import is_loopback
from edge.web.config import WebConfig


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or an EdgeError that says why not and what to do."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise EdgeError(
            f"--web {where}: cannot resolve {host!r} ({exc.strerror}); give an address of this machine"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EdgeError(f"--web {where}: port {port} is in use; pick another port (or stop what uses it)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise EdgeError(
                f"--web {where}: {host} is not an address of this machine; use 127.0.0.1 or one it has"
            ) from None
        raise EdgeError(f"--web {where}: cannot listen there ({exc.strerror or exc})") from None
    return sock


def _token(web: WebConfig, host: str) -> Optional[str]:
    token = os.environ.get(web.token_env) or None
    if token is None and not is_loopback(host):
        raise EdgeError(
            f"--web {web.listen}: the page would be reachable from the network; set {web.token_env} to a secret "
            "token (web.token_env) or listen on 127.0.0.1"
        )
    return token


def prepare_web(web: WebConfig) -> Optional["WebService"]:
    """The service for `web.listen`, its socket already bound; None when the page is off."""
    if web.address is None:
        return None
    host, port = web.address
    token = _token(web, host)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise EdgeError("--web needs the web extra: pip install 'edge-inspect[web]'") from None
    return WebService(web, _bind(host, port), token, public=not is_loopback(host))


class WebService:
    def __init__(self, web: WebConfig, sock: socket.socket, token: Optional[str], public: bool):
        self.web, self.sock, self.token, self.public = web, sock, token, public
        self.server: Any = None
        self.thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def start(self, pipeline: Any, built: Any, source: Any, out: Path, log: Log) -> None:
        """Serve the page over this run: the observer goes on the pipeline, uvicorn in its own thread."""
        import uvicorn

        from edge.web.server import build_app

        context = build_context(self, pipeline, built, source, out)
        pipeline.observer = context.observer
        config = uvicorn.Config(
            build_app(context),
            log_config=None,  # uvicorn leaves the process's logging alone
            log_level="warning",
            access_log=False,  # request lines could carry ?token=
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="edge-web", daemon=True)
        self.thread.start()
        rule = "token needed for everything" if self.public else "reviews and threshold changes need the token"
        if self.token is None:
            rule = f"view only: set {self.web.token_env} to review alerts and move the threshold"
        log(f"web page on {self.url} ({rule})")

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def close(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(3.0)
        self.sock.close()


def build_context(service: WebService, pipeline: Any, built: Any, source: Any, out: Path):
    """Everything the page reads and changes, over one run's pipeline and sinks."""
    from edge.web.live import LiveView
    from edge.web.observer import Observer
    from edge.web.review import ReviewStore
    from edge.web.sensitivity import ThresholdControl, override_path
    from edge.web.server import WebContext
    from edge.web.status import StatusReport

    web = service.web
    observer = Observer(trace=web.trace, live_fps=web.live_fps)
    sqlite = next((s for s in built.group if getattr(s, "name", "") == "sqlite"), None)
    send = built.dispatcher.submit_review if built.dispatcher is not None else None
    reviews = ReviewStore(getattr(sqlite, "path", None), out / web.review_dir, out / "reviews.jsonl", send)
    control = ThresholdControl(
        pipeline.bundle,
        override_path(pipeline.bundle, web.override),
        lambda: pipeline.threshold.value,
        lambda value: set_live_threshold(pipeline, value),
    )
    status = StatusReport(
        observer,
        pipeline.metrics,
        pipeline.bundle,
        out,
        lambda: pipeline.threshold.value,
        lambda: source.name,
        lambda: (list(built.group), built.dispatcher),
    )
    live = LiveView(observer, pipeline.tiler, pipeline.label)
    swap = getattr(pipeline, "swap", None)
    if swap is not None:
        status.swap = swap
        swap.listeners.append(lambda new: follow_swap(new, control, status, live, web.override))
    return WebContext(
        observer, live, reviews, control, status, service.token, web.token_env, service.public, web.live_fps, swap
    )


def follow_swap(new: Any, control: Any, status: Any, live: Any, override: Optional[Path]) -> None:
    """After a bundle swap (edge.swap, on the loop: references only): the threshold control, the status
    and the live view speak of the new bundle."""
    from edge.web.sensitivity import override_path

    control.bundle, control.path, control.scores = new.bundle, override_path(new.bundle, override), new.scores
    status.follow(new.bundle)
    live.follow(new.tiler, new.detector.label)


def set_live_threshold(pipeline: Any, value: float) -> None:
    """The loop reads the holder on its next frame (edge.decide.LiveThreshold); metrics show it too."""
    pipeline.threshold.set(value)
    pipeline.metrics.threshold = value
