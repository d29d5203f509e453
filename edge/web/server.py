"""The page's HTTP side: Starlette routes on uvicorn, in one thread beside the loop.

Endpoints (all JSON unless said; README "The page on the device" documents them):

    GET  /                          the page (static/index.html, app.js, style.css from the package)
    GET  /api/status                fps, counts, sink backlogs, disk, bundle identity and age
    GET  /api/scores?after=N        recent frame scores after frame number N, and the threshold
    GET  /api/live.jpg              the newest annotated frame (JPEG; header X-Frame-Seq)
    GET  /live.mjpg                 the same as an MJPEG stream (for VLC, a browser tab)
    GET  /api/alerts?limit&offset   alerts from the event store, newest first, with verdicts
    GET  /api/alerts/ID             one alert
    GET  /api/alerts/ID/raw.png     its snapshot (annotated.png: with heatmap and box)
    POST /api/alerts/ID/review      {"verdict": "false_alarm"|"real_defect", "defect": name, "who": name}
    GET  /api/threshold             threshold in force, calibrated one, rates, calibration scores
    POST /api/threshold             {"threshold": value, "who": name}
    POST /api/bundle/swap           load the run's bundle again and swap it in if it checks out (edge.swap);
                                    202 at once, the outcome in /api/status "swap" and a `bundle` event

Tokens: on a non-loopback address every /api and /live request needs the token; reviews,
threshold changes and bundle swaps need it always. It goes in `Authorization: Bearer TOKEN` (or `?token=` on
GETs, for an <img> or a video player). Missing: 401; wrong: 403; no token configured: 403.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge.web.live import LiveView
from edge.web.observer import Observer
from edge.web.review import AlertNotFound, ReviewStore, StoreOff
from edge.web.sensitivity import ThresholdControl, ThresholdOutOfRange

STATIC = Path(__file__).parent / "static"
MAX_BODY = 4096  # review and threshold requests are a few dozen bytes


@dataclass
class WebContext:
    observer: Observer
    live: LiveView
    reviews: ReviewStore
    threshold: ThresholdControl
    status: Callable[[], dict]
    token: Optional[str]  # None: no token configured (reads on loopback only, no changes)
    token_env: str
    public: bool  # bound beyond loopback: reads need the token too
    live_fps: float = 5.0
    swap: Any = None  # the run's edge.swap.BundleSwap (None: this run cannot swap bundles)


def error(status: int, message: str, **more) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **more}, status_code=status, headers=headers)


def _given_token(request: Request) -> Optional[str]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if request.method == "GET":
        return request.query_params.get("token")
    return None


def refused(ctx: WebContext, request: Request, change: bool) -> Optional[JSONResponse]:
    """The 401/403 for a request without the right token, or None when it may go on."""
    if not (change or ctx.public):
        return None
    if ctx.token is None:
        return error(403, f"changes need a token: start edge run with {ctx.token_env} set (web.token_env)")
    given = _given_token(request)
    if not given:
        return error(401, "this needs the page's token: Authorization: Bearer TOKEN")
    if not hmac.compare_digest(given.encode(), ctx.token.encode()):
        return error(403, "wrong token")
    return None


async def _json_body(request: Request) -> dict:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValueError(f"request body over {MAX_BODY} bytes")
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _who(data: dict, request: Request) -> str:
    name = str(data.get("who") or "operator").strip()[:64] or "operator"
    host = request.client.host if request.client else "?"
    return f"{name} ({host})"


def _alert_links(alert: dict) -> dict:
    base = f"/api/alerts/{alert['id']}"
    alert["links"] = {
        "raw": f"{base}/raw.png" if alert.get("snapshot") else None,
        "annotated": f"{base}/annotated.png" if alert.get("annotated") else None,
        "review": f"{base}/review",
    }
    return alert


def build_app(ctx: WebContext) -> Starlette:
    """The Starlette app over one run's context (tests build it with their own context)."""

    def reader(fn):
        async def endpoint(request: Request):
            return refused(ctx, request, change=False) or await _run(fn, request)

        return endpoint

    def writer(fn):
        async def endpoint(request: Request):
            return refused(ctx, request, change=True) or await _run(fn, request)

        return endpoint

    async def _run(fn, request: Request) -> Response:
        try:
            return await fn(request)
        except StoreOff as exc:
            return error(409, str(exc))
        except AlertNotFound as exc:
            return error(404, f"no alert {exc.args[0]!r} in the event store")

    async def status(_request: Request) -> Response:
        return JSONResponse({**ctx.status(), "live_fps": ctx.live_fps, "token_needed_for_reads": ctx.public})

    async def scores(request: Request) -> Response:
        after = _int(request.query_params.get("after"), 0)
        recent = ctx.observer.recent(after)
        return JSONResponse(
            {
                "threshold": ctx.threshold.value,
                "last": recent[-1][0] if recent else after,
                "scores": [[s, round(t, 3), _finite(v), a] for s, t, v, a in recent],
            }
        )

    async def live_jpg(_request: Request) -> Response:
        frame = await asyncio.to_thread(ctx.live.jpeg)  # drawing and encoding off the event loop
        if frame is None:
            return error(503, "no frame inspected yet", retry_after_s=1)
        return Response(frame[1], media_type="image/jpeg", headers={"X-Frame-Seq": str(frame[0]), **NO_STORE})

    async def live_mjpg(_request: Request) -> Response:
        return StreamingResponse(_mjpeg(ctx), media_type="multipart/x-mixed-replace; boundary=frame")

    async def alerts(request: Request) -> Response:
        limit = min(max(_int(request.query_params.get("limit"), 20), 1), 200)
        offset = max(_int(request.query_params.get("offset"), 0), 0)
        rows, total = await asyncio.to_thread(ctx.reviews.alerts, limit, offset)
        return JSONResponse({"total": total, "offset": offset, "alerts": [_alert_links(r) for r in rows]})

    async def one_alert(request: Request) -> Response:
        row = await asyncio.to_thread(ctx.reviews.alert, request.path_params["id"])
        return JSONResponse(_alert_links(row))

    async def picture(request: Request) -> Response:
        row = await asyncio.to_thread(ctx.reviews.alert, request.path_params["id"])
        kind = request.path_params["kind"]
        path = row.get("snapshot") if kind == "raw" else row.get("annotated") if kind == "annotated" else None
        if not path or not Path(path).is_file():
            return error(404, f"alert {row['id']} has no {kind} snapshot (thinned, or deleted by retention)")
        return FileResponse(path, media_type="image/png")

    async def review(request: Request) -> Response:
        try:
            data = await _json_body(request)
            args = (request.path_params["id"], str(data.get("verdict", "")), data.get("defect"), _who(data, request))
            record = await asyncio.to_thread(ctx.reviews.review, *args)
        except ValueError as exc:
            return error(422, str(exc))
        return JSONResponse(record)

    async def get_threshold(_request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(ctx.threshold.state))

    async def set_threshold(request: Request) -> Response:
        try:
            data = await _json_body(request)
            value = _number(data.get("threshold"))
            entry = await asyncio.to_thread(ctx.threshold.set, value, _who(data, request))
        except ThresholdOutOfRange as exc:
            return error(422, str(exc), range=list(exc.range))
        except ValueError as exc:
            return error(422, str(exc))
        except OSError as exc:
            return error(500, f"cannot record the override in {ctx.threshold.path}: {exc.strerror or exc}")
        return JSONResponse({"applied": entry, **ctx.threshold.state()})

    async def swap_bundle(request: Request) -> Response:
        if ctx.swap is None:
            return error(409, "this run cannot swap bundles")
        try:
            data = await _json_body(request)
        except ValueError as exc:
            return error(422, str(exc))
        ctx.swap.request(f"page: {_who(data, request)}")  # checked and swapped off the loop; never waited on
        return JSONResponse({"requested": True, "last": ctx.swap.last}, status_code=202)

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=NO_STORE)

    routes = [
        Route("/", index),
        Route("/api/status", reader(status)),
        Route("/api/scores", reader(scores)),
        Route("/api/live.jpg", reader(live_jpg)),
        Route("/live.mjpg", reader(live_mjpg)),
        Route("/api/alerts", reader(alerts)),
        Route("/api/alerts/{id}", reader(one_alert)),
        Route("/api/alerts/{id}/{kind}.png", reader(picture)),
        Route("/api/alerts/{id}/review", writer(review), methods=["POST"]),
        Route("/api/threshold", reader(get_threshold)),
        Route("/api/threshold", writer(set_threshold), methods=["POST"]),
        Route("/api/bundle/swap", writer(swap_bundle), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={Exception: _internal})


NO_STORE = {"Cache-Control": "no-store"}


async def _internal(_request: Request, exc: Exception) -> Response:
    return error(500, f"{type(exc).__name__}: {exc}")


async def _mjpeg(ctx: WebContext):
    """multipart/x-mixed-replace parts, one per new frame, at most live_fps a second."""
    last = -1
    while True:
        frame = await asyncio.to_thread(ctx.live.jpeg)
        if frame is not None and frame[0] != last:
            last = frame[0]
            yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(frame[1])
            yield frame[1] + b"\r\n"
        await asyncio.sleep(1.0 / ctx.live_fps)


def _int(text: Optional[str], default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError('give {"threshold": NUMBER}')
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"threshold {value!r} is not a number") from None


def _finite(value: float) -> Optional[float]:
    return float(f"{value:.6g}") if math.isfinite(value) else None
