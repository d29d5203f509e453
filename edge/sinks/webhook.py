"""HTTP webhook: POST each alert as JSON, through the durable outbox.

2xx = delivered (the entry is deleted). 400, 413 and 422 mean the receiver will never take this
payload: it is moved to the outbox's dead table and logged. Anything else (connection refused,
timeout, 5xx, 401/403 while a token is being fixed, 429) is retried with exponential backoff.
Each request carries `Idempotency-Key: <alert id>` so a receiver can drop a repeat. A review (an
operator's verdict on an earlier alert) is POSTed to the same URL with `"type": "review"` and the
`alert_id` it is about; its key is the review's own `id` (one per verdict given).
"""

from __future__ import annotations

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

    def __init__(self, url: str, timeout_s: float = 5.0, headers: Optional[Mapping[str, str]] = None):
        # user:pass@ in the URL goes as HTTP basic auth; what messages show has no credentials.
        self.url, basic_auth = url_and_basic_auth(url)
        self.shown = redact_url(url)
        self.timeout_s = timeout_s
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
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in REJECT_STATUSES:
                raise Rejected(f"HTTP {exc.code} {exc.reason} from {self.shown}") from None
            raise ConnectionError(f"HTTP {exc.code} {exc.reason} from {self.shown}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ConnectionError(self._too_slow()) from None
            raise ConnectionError(f"{self.shown}: {exc.reason}") from None
        except TimeoutError:  # the answer did not come in time (the connection itself was made)
            raise ConnectionError(self._too_slow()) from None

    def _too_slow(self) -> str:
        # Said plainly: a receiver that always answers after the timeout is never acknowledged, so the
        # ordered outbox re-sends its first alert and the rest wait (benchmarks/results/faults_alerts.md).
        return (
            f"{self.shown}: no answer within {self.timeout_s:g} s; if the receiver is slower than that, "
            "raise sinks.webhook.timeout_s (until then alerts wait in the outbox)"
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
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        close_timeout_s: float = 5.0,
        outbox_name: str = "outbox-webhook.db",
    ):
        super().__init__(
            WebhookTransport(url, timeout_s, headers),
            Path(state_dir) / outbox_name,
            max_entries=max_entries,
            backoff_s=backoff_s,
            backoff_max_s=backoff_max_s,
            close_timeout_s=close_timeout_s,
        )
