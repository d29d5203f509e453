"""`edge run --web HOST:PORT`: a page on the device beside the running inspection.

    loop ──publish()──► Observer (latest frame, recent scores; never waits)
                            │ read by the server's threads when a page asks
    server.py (Starlette on uvicorn, one thread) ── live.py (annotated JPEG, capped rate)
                                                 ── review.py (verdicts: events.db + review folder)
                                                 ── sensitivity.py (threshold override beside the bundle)
                                                 ── status.py (fps, drops, backlogs, disk, bundle)

Only server.py and service.py import the `web` extra (starlette, uvicorn); the rest is the
device core's numpy/OpenCV/stdlib, so edge/app.py can read a threshold override without them.
"""
