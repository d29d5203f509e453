"""A bundle archive dropped into the watched folder (`--watch-bundles DIR`, a drop folder), issue 16.

    DIR/line1-v7.tar.gz + DIR/line1-v7.tar.gz.sha256 (`sha256sum line1-v7.tar.gz > line1-v7.tar.gz.sha256`)
        ──► once the archive's size and time held still for one poll: sha256 checked, unpacked safely
            (edge.bundle_fetch) into the hidden DIR/.line1-v7.unpacking, renamed to DIR/line1-v7/
        ──► the folder watch (edge.swap.FolderWatch) finds a new bundle folder and swaps it in, with
            every check of the hot swap

One file to copy (scp, a USB stick) instead of a folder, and the .sha256 beside it proves the copy
complete and unchanged. An archive without its .sha256 waits for it. A refused archive (wrong hash,
not a bundle, an entry reaching outside its folder, a folder of that name already there) is one line
and a `rejected` bundle event, once, until the archive or its .sha256 changes. Polled from the swap's
thread, never the loop.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Optional

from edge.bundle_fetch import Limits, fetch, remove, unpack
from edge.errors import EdgeError

SUFFIX = ".tar.gz"
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def expected_sha256(sha_file: Path) -> str:
    """The hash in a `sha256sum` line (`<hex>  <name>`) or a file holding only the hex."""
    text = sha_file.read_text(encoding="utf-8", errors="replace").split()
    if not text or not _HEX.fullmatch(text[0]):
        raise EdgeError(f"{sha_file.name} holds no sha256 (64 hex digits); write it with sha256sum")
    return text[0].lower()


class ArchiveDrops:
    """Unpacks checked archives in `folder` into bundle folders beside them (see the module docstring)."""

    def __init__(self, folder: Path, refuse: Callable[[Path, str], None], limits: Optional[Limits] = None):
        self.folder = Path(folder)
        self.refuse = refuse  # (archive, why): the swap's one line and rejected event
        self.limits = limits or Limits()
        self._settling: dict[Path, tuple] = {}
        self._judged: dict[Path, tuple] = {}  # archives done with (unpacked or refused), by signature
        self._judged.update({a: self._signature(a) for a in self._archives()})  # there at start: not new

    def _archives(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.glob(f"*{SUFFIX}") if p.is_file() and not p.name.startswith("."))
        except OSError:
            return []

    @staticmethod
    def _signature(archive: Path) -> tuple:
        sha = Path(f"{archive}.sha256")
        try:
            a, s = archive.stat(), sha.stat() if sha.exists() else None
        except OSError:
            return ()
        return a.st_size, a.st_mtime_ns, (s.st_size, s.st_mtime_ns) if s else None

    def poll(self) -> list[Path]:
        """Unpack each new archive whose files held still since the last poll; the folders made."""
        made = []
        settling = {}
        for archive in self._archives():
            signature = self._signature(archive)
            if not signature or signature[2] is None or self._judged.get(archive) == signature:
                continue  # gone, no .sha256 yet, or done with
            if self._settling.get(archive) != signature:
                settling[archive] = signature  # still being copied, or new: looked at again next poll
                continue
            self._judged[archive] = signature
            folder = self._unpack(archive)
            if folder is not None:
                made.append(folder)
        self._settling = settling
        return made

    def _unpack(self, archive: Path) -> Optional[Path]:
        name = archive.name[: -len(SUFFIX)]
        target = self.folder / name
        work = self.folder / f".{name}.unpacking"
        remove(work)
        try:
            if target.exists():
                raise EdgeError(f"{target} is there already; give the archive another name")
            expected = expected_sha256(Path(f"{archive}.sha256"))
            work.mkdir()
            digest = fetch(archive.resolve().as_uri(), work / "archive", self.limits)  # bounded, hashed
            if digest != expected:
                raise EdgeError(
                    f"{archive.name} has sha256 {digest[:12]}…, its .sha256 says {expected[:12]}…: "
                    "an incomplete or changed copy; copy it again"
                )
            folder = unpack(work / "archive", work / "unpacked", self.limits)
            os.replace(folder, target)
            return target
        except (EdgeError, OSError) as exc:
            self.refuse(archive, str(exc).replace(str(work), archive.name))
            return None
        finally:
            remove(work)
