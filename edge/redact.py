"""Keep secrets out of everything shown or stored: log lines, errors, alerts' `source`, descriptions.

An operator still needs to tell which camera or receiver a line is about, so the scheme, host, port
and path stay; what is hidden:

* the userinfo of a URL: `rtsp://admin:hunter2@10.0.0.7/s1` → `rtsp://***@10.0.0.7/s1`
  (the user name too: it is half of the credential);
* the value of every query or fragment parameter whose name says it is a secret:
  `http://cam/video?user=admin&pwd=x&ch=1` → `http://cam/video?user=***&pwd=***&ch=1`.

A parameter name is a secret when one of its words (split at `_`, `-`, `.` and camelCase, lower
case) is in SECRET_WORDS, or the whole name is: `token`, `api_key`, `X-Amz-Signature`,
`accessToken`, `PWD` are; `channel`, `keyframe`, `subtype` are not.

`redact_url` takes one URL; `redact_text` any text that may contain URLs (an error from OpenCV,
urllib or paho that echoes the address). Both return their input unchanged when there is nothing
to hide, and neither raises. `url_and_basic_auth` turns a webhook URL's userinfo into the HTTP
basic auth header it stands for. `printable` writes out control characters (a file name with
ESC sequences in it) before text reaches a terminal.

This module imports nothing of edge/, so every module can use it.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"

# Words that make a query parameter a secret (see the module docstring for how a name is split).
SECRET_WORDS = frozenset(
    {
        # who: a camera's or receiver's login
        "user",
        "username",
        "usr",
        "login",
        # passwords
        "pass",
        "passwd",
        "password",
        "pwd",
        "pw",
        # tokens and keys
        "token",
        "accesstoken",
        "apikey",
        "key",
        "secret",
        "auth",
        "authorization",
        "bearer",
        "jwt",
        "credential",
        "credentials",
        "session",
        "sessionid",
        "sid",
        # signed URLs
        "sig",
        "signature",
    }
)

# scheme://userinfo@ : the userinfo runs to the last "@" before the path, query, fragment or a space.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s@]*(?:@[^/?#\s@]*)*)@")
# ?name=value, &name=value, ;name=value, #name=value: a value ends at the next separator, space or
# quote; punctuation that ends a sentence ("...?token=abc: refused") is left outside it.
_PARAMETER = re.compile(
    r"(?P<lead>[?&;#])(?P<name>[^=&;#?\s'\"<>]+)=(?P<value>[^&;#\s'\"<>]*?)(?=[.,:)\]]*(?:[&;#\s'\"<>]|$))"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[_\-.\s\[\]]+")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter called `name` holds a secret (SECRET_WORDS)."""
    name = unquote(name)
    words = [w.lower() for w in _WORD_SPLIT.split(_CAMEL.sub("_", name)) if w]
    joined = "".join(words)
    return joined in SECRET_WORDS or any(w in SECRET_WORDS for w in words)


def _mask_parameter(match: re.Match) -> str:
    if not match["value"] or not is_secret_name(match["name"]):
        return match[0]
    return f"{match['lead']}{match['name']}={MASK}"


def redact_text(text: str) -> str:
    """`text` with the userinfo of every URL in it and every secret-looking parameter value masked."""
    if not isinstance(text, str):
        text = str(text)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _PARAMETER.sub(_mask_parameter, text)


def redact_url(url: str) -> str:
    """`url` without credentials: userinfo → `***@`, secret-looking parameter values → `***`."""
    return redact_text(url)


def url_and_basic_auth(url: str) -> tuple[str, dict[str, str]]:
    """`url` without its userinfo, and the HTTP basic auth header that userinfo stands for.

    urllib would take `user:pass@` for part of the host name; a webhook URL with one sends it as
    `Authorization: Basic …` instead. No userinfo: the URL unchanged and no header.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


# C0 controls (but tab and newline), DEL, C1 controls and the bidirectional overrides: a file name
# holding "\x1b[2J" clears the operator's terminal, and one with U+202E shows its text reversed.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, one_line: bool = False) -> str:
    """`text` with control characters written out (ESC → `\\x1b`), safe to print on a terminal.

    Tab and newline are kept unless `one_line` (a table cell, a name).
    """
    return (_CONTROL_IN_LINE if one_line else _CONTROL).sub(_escaped, str(text))
