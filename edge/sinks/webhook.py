"""HTTP webhook: POST each alert as JSON, through the durable outbox.

2xx = delivered (the entry is deleted). 400, 413 and 422 mean the receiver will never take this
payload: it is moved to the outbox's dead table and logged. Anything else (connection refused,
timeout, 5xx, 401/403 while a token is being fixed, 429) is retried with exponential backoff.
Each request carries `Idempotency-Key: <alert id>` so a receiver can drop a repeat.
A receiver slower than `timeout_s` would otherwise never be acknowledged (the ordered outbox would
re-send its first alert for ever): each request that gets no answer in time doubles the wait for
the next, up to `timeout_max_s`, and the wait comes back down once answers are quick again. A review (an
operator's verdict on an earlier alert) is POSTed to the same URL with `"type": "review"` and the
`alert_id` it is about; its key is the review's own `id` (one per verdict given).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Optional

from edge.redact import redact_url, url_and_basic_auth
from edge.sinks.outbox import Entry, QueuedSink, Rejected

REJECT_STATUSES = frozenset({400, 413, 422})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a redirect of a POST as a GET without the body and call it delivered.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookTransport:
    name = "webhook"

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        headers: Optional[Mapping[str, str]] = None,
        timeout_max_s: Optional[float] = None,
    ):
        # user:pass@ in the URL goes as HTTP basic auth; what messages show has no credentials.
        self.url, basic_auth = url_and_basic_auth(url)
        self.shown = redact_url(url)
        self.timeout_s = timeout_s  # the configured wait for an answer
        self.timeout_max_s = max(timeout_max_s if timeout_max_s is not None else timeout_s, timeout_s)
        self.wait_s = timeout_s  # the wait in force: grows while the receiver is slower than it
        self.headers = {"Content-Type": "application/json", "User-Agent": "edge-inspect", **basic_auth}
        self.headers.update(headers or {})  # an Authorization header of the config wins
        # Proxies from the environment would surprise a plant network; talk to the URL directly.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def send(self, entry: Entry) -> None:
        request = urllib.request.Request(
            self.url,
            data=entry.payload.encode("utf-8"),
            headers={**self.headers, "Idempotency-Key": entry.alert_id},
            method="POST",
        )
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self.wait_s) as response:
                response.read()
            self._answered_in(time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in REJECT_STATUSES:
                raise Rejected(f"HTTP {exc.code} {exc.reason} from {self.shown}") from None
            raise ConnectionError(f"HTTP {exc.code} {exc.reason} from {self.shown}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):  # no connection at all: a longer wait for answers would not help
                raise ConnectionError(f"{self.shown}: no connection within {self.wait_s:g} s") from None
            raise ConnectionError(f"{self.shown}: {exc.reason}") from None
        except TimeoutError:  # the answer did not come in time (the connection itself was made)
            raise ConnectionError(self._wait_longer()) from None

    def _answered_in(self, seconds: float) -> None:
        # Back down towards timeout_s once answers come well within the wait, never below twice the
        # answer just seen: a receiver that is slow at times keeps a wait that fits it.
        if self.wait_s > self.timeout_s and seconds < self.wait_s / 4:
            self.wait_s = max(self.timeout_s, self.wait_s / 2, 2 * seconds)

    def _wait_longer(self) -> str:
        """No answer in time: double the wait for the next attempt (up to timeout_max_s); the message.

        A receiver that always answers after the wait would never be acknowledged, so the ordered
        outbox would re-send its first alert for ever."""
        waited = self.wait_s
        self.wait_s = min(waited * 2, self.timeout_max_s)
        if self.wait_s > waited:
            return (
                f"{self.shown}: no answer within {waited:g} s; waiting up to {self.wait_s:g} s for the next attempt "
                f"(sinks.webhook.timeout_s {self.timeout_s:g}, timeout_max_s {self.timeout_max_s:g})"
            )
        return (
            f"{self.shown}: no answer within {waited:g} s, the longest wait allowed; if the receiver is slower "
            "than that, raise sinks.webhook.timeout_max_s (until then alerts wait in the outbox)"
        )

    def close(self) -> None:
        pass


class WebhookSink(QueuedSink):
    def __init__(
        self,
        url: str,
        state_dir: str | Path,
        timeout_s: float = 5.0,
        headers: Optional[Mapping[str, str]] = None,
        max_entries: int = 10000,
        timeout_max_s: Optional[float] = None,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        close_timeout_s: float = 5.0,
        outbox_name: str = "outbox-webhook.db",
    ):
        super().__init__(
            WebhookTransport(url, timeout_s, headers, timeout_max_s),
            Path(state_dir) / outbox_name,
            max_entries=max_entries,
            backoff_s=backoff_s,
            backoff_max_s=backoff_max_s,
            close_timeout_s=close_timeout_s,
        )
