"""A bundle archive from a URL: fetched with bounds, its sha256 checked, unpacked safely (issue 16).

    fetch(url, dest, limits)  ──► the archive file, its sha256 computed while it streams in
    unpack(archive, folder)   ──► the bundle folder inside (bundle.json at the archive's top, or in
                                  its one top folder); members checked before anything is written

The archive is a gzip-compressed tar (`tar czf NAME.tar.gz -C BUNDLE_DIR .`, or of the bundle folder
itself). URLs: http://, https:// (user:password@ in the URL is sent as basic auth, never shown) and
file://. Everything here raises EdgeError with one line whose URL is redacted (edge.redact): a
command's result and the log are read by people who must not see a password or a token.

Why these bounds: a station's card is small and shared with the event store, and an archive is
untrusted until its hash matched, so its size is bounded while it is read (not after), and its
unpacked size, member count and member kinds (regular files and folders only: no links, devices,
absolute names or `..`) before a byte is written.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Optional
from urllib.parse import urlsplit
from urllib.request import url2pathname

from edge.bundle import MANIFEST
from edge.errors import EdgeError
from edge.redact import redact_text, redact_url, url_and_basic_auth

SCHEMES = ("http", "https", "file")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 << 20  # the archive as downloaded
    max_unpacked_bytes: int = 1 << 30  # the sum of its files' sizes
    max_members: int = 10000
    timeout_s: float = 60.0  # the whole download; also each read's socket timeout


def url_problem(url: str) -> Optional[str]:
    """What is wrong with a bundle URL (scheme, host), or None; never echoes the URL (a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "url is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or "://" not in url:
        shown = f"{scheme}://" if scheme else "no scheme"
        return f"url must start with http://, https:// or file://, not {shown}"
    if any(c.isspace() for c in url):
        return "url has a space in it; write it as %20"
    if scheme != "file" and not parts.hostname:
        return "url names no host"
    if scheme == "file" and not parts.path:
        return "url names no file"
    return None


def fetch(url: str, dest: Path, limits: Limits) -> str:
    """Copy the archive at `url` into the file `dest`; its sha256 (hex). Bounded in size and time."""
    problem = url_problem(url)
    if problem is not None:
        raise EdgeError(problem)
    shown = redact_url(url)
    deadline = time.monotonic() + limits.timeout_s
    try:
        with _open(url, limits) as stream, open(dest, "wb") as out:
            return _copy(stream, out, limits, deadline, shown)
    except urllib.error.HTTPError as exc:
        raise EdgeError(f"{shown} answered HTTP {exc.code} {exc.reason}: no archive there") from None
    except urllib.error.URLError as exc:
        raise EdgeError(f"cannot reach {shown}: {redact_text(str(exc.reason))}") from None
    except TimeoutError:
        raise EdgeError(f"{shown}: no data within {limits.timeout_s:g} s") from None
    except OSError as exc:  # a file:// that is not there, a reset connection, a full disk
        raise EdgeError(f"cannot read {shown}: {redact_text(exc.strerror or str(exc))}") from None


def _open(url: str, limits: Limits) -> BinaryIO:
    if urlsplit(url).scheme.lower() == "file":
        return open(url2pathname(urlsplit(url).path), "rb")
    plain, headers = url_and_basic_auth(url)  # user:password@ → an Authorization header
    request = urllib.request.Request(plain, headers={"User-Agent": "edge-inspect", **headers})
    opener = urllib.request.build_opener(_KeepCredentialsHome)
    response = opener.open(request, timeout=limits.timeout_s)
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limits.max_bytes:
        response.close()
        raise EdgeError(f"{redact_url(url)} is {int(length)} bytes, over the limit of {limits.max_bytes} bytes")
    return response


class _KeepCredentialsHome(urllib.request.HTTPRedirectHandler):
    """Follows a redirect, but sends the URL's credentials only to the host they were given for
    (urllib would carry the Authorization header to wherever a redirect points)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def _copy(stream: BinaryIO, out: BinaryIO, limits: Limits, deadline: float, shown: str) -> str:
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return digest.hexdigest()
        size += len(chunk)
        if size > limits.max_bytes:
            raise EdgeError(f"{shown} is over the limit of {limits.max_bytes} bytes; not read further")
        if time.monotonic() > deadline:
            raise EdgeError(f"{shown}: not read within {limits.timeout_s:g} s")
        digest.update(chunk)
        out.write(chunk)


def unpack(archive: Path, folder: Path, limits: Limits) -> Path:
    """Unpack the .tar.gz `archive` into the new folder `folder`; the bundle folder in it."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = _checked(tar, limits)
            folder.mkdir(parents=True)
            # The "data" filter (Python 3.11.4+) refuses what _checked refused, once more, at write time.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(folder, members=members, **extra)  # noqa: S202 - members checked above
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise EdgeError(f"the archive could not be unpacked ({type(exc).__name__}: {exc}); send a .tar.gz") from None
    return bundle_folder(folder)


def _checked(tar: tarfile.TarFile, limits: Limits) -> list[tarfile.TarInfo]:
    members, total = [], 0
    for member in tar:
        if len(members) >= limits.max_members:
            raise EdgeError(f"the archive holds more than {limits.max_members} entries; a bundle has a few")
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or "\\" in member.name:
            raise EdgeError(f"the archive entry {member.name!r} points outside its folder; refused")
        if not (member.isfile() or member.isdir()):
            raise EdgeError(f"the archive entry {member.name!r} is a link or a special file; a bundle has none")
        total += member.size
        if total > limits.max_unpacked_bytes:
            raise EdgeError(f"the archive unpacks to over {limits.max_unpacked_bytes} bytes; refused")
        members.append(member)
    return members


def bundle_folder(folder: Path) -> Path:
    """`folder` if bundle.json is at its top, else its one subfolder holding bundle.json."""
    if (folder / MANIFEST).is_file():
        return folder
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir() and (children[0] / MANIFEST).is_file():
        return children[0]
    raise EdgeError(f"the archive is not a bundle: no {MANIFEST} at its top or in its one folder")


def remove(path: Path) -> None:
    """Remove a file or folder left by a fetch; nothing if it is not there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
