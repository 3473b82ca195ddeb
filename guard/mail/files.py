"""Local mail: .eml files, directories of them (recursive), Maildirs and mbox files.

Sources only say where each message is (`MessageRef`); reading the bytes is `read()`, so that
worker processes read their own messages instead of receiving them through a pipe. Nothing here ever
writes to the user's files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAILDIR_SUBDIRS = ("cur", "new")
MESSAGE_SUFFIXES = (".eml", ".msg.txt")
MBOX_SUFFIXES = (".mbox", ".mbx")
_MBOX_SNIFF = 5  # b"From "


class SourceError(Exception):
    """A path cannot be read as mail; str(exc) is a one-line reason."""


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where one message lives: a whole file, or a byte range of an mbox."""

    path: str
    source: str  # what reports show: the path, or `path#n` inside an mbox
    id: str
    offset: int = 0
    length: int = -1  # -1: the whole file

    def read(self) -> bytes:
        if self.length < 0:
            data = read_file(self.path)
            assert data is not None
            return data
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.length)
        return _unescape_mboxrd(_drop_from_line(data))


def read_file(path: str, limit: int = -1) -> bytes | None:
    """A whole file's bytes, or None if it holds more than `limit` bytes (when limit >= 0).

    Through the descriptor alone (open, fstat, read, close): Python's buffered open adds an
    ioctl, two lseeks, another fstat and a second read, and the size check was a stat of its
    own, for every message a worker reads."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if 0 <= limit < size:
            return None
        data = os.read(fd, size + 1)  # one byte more: a file that grew since the fstat says so
        if len(data) == size:
            return data
        parts = [data]  # shorter (a read cut short) or longer (growing): read to the end
        while data:
            data = os.read(fd, max(size, 65536))
            parts.append(data)
        return b"".join(parts)
    finally:
        os.close(fd)


def _drop_from_line(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data[end + 1 :] if data.startswith(b"From ") and end != -1 else data


_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)


def _unescape_mboxrd(data: bytes) -> bytes:
    return _QUOTED_FROM.sub(rb"\1", data)


def is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new"))


def is_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(_MBOX_SNIFF) == b"From "
    except OSError:
        return False


def mbox_refs(path: Path, display: str) -> Iterator[MessageRef]:
    """Split an mbox at `From ` lines that start a message (file start or after a blank line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{display}: cannot read: {exc.strerror}") from None
    starts = [0] if data.startswith(b"From ") else []
    pos = 0
    while True:
        pos = data.find(b"\n\nFrom ", pos)
        if pos == -1:
            break
        starts.append(pos + 2)
        pos += 2
    if not starts:
        raise SourceError(f"{display}: not an mbox (no 'From ' line)")
    for n, start in enumerate(starts, 1):
        end = starts[n] if n < len(starts) else len(data)
        yield MessageRef(str(path), f"{display}#{n}", str(n), start, end - start)


def maildir_refs(path: Path, display: str) -> Iterator[MessageRef]:
    for sub in MAILDIR_SUBDIRS:
        # os.scandir and plain strings: a directory entry says whether it is a regular file
        # without a stat call, and a Path per message cost more than the rest of the listing.
        folder = str(path / sub)
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=_entry_name)
        except OSError as exc:
            raise SourceError(f"{display}/{sub}: cannot read: {exc.strerror}") from None
        shown = f"{display}/{sub}/"
        for entry in entries:
            name = entry.name
            if not name.startswith(".") and _is_file(entry):
                yield MessageRef(entry.path, shown + name, name.split(":", 1)[0])


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _is_file(entry: os.DirEntry[str]) -> bool:
    """Path.is_file of the entry: a regular file, or a link to one."""
    try:
        return entry.is_file()
    except OSError:
        return False


def directory_refs(
    path: Path, display: str, _seen: set[tuple[int, int]] | None = None
) -> Iterator[MessageRef]:
    """Walk a directory: Maildirs, mbox files and .eml files, in a stable order."""
    seen: set[tuple[int, int]] = set() if _seen is None else _seen
    try:
        st = path.stat()
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"{display}: cannot read: {exc.strerror}") from None
    if (st.st_dev, st.st_ino) in seen:
        return  # a symlink back to a directory already walked: no loop, no duplicates
    seen.add((st.st_dev, st.st_ino))
    if is_maildir(path):
        yield from maildir_refs(path, display)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        child = Path(entry.path)
        shown = f"{display.rstrip('/')}/{entry.name}"
        if entry.is_dir():
            yield from directory_refs(child, shown, seen)
        elif entry.name.lower().endswith(MESSAGE_SUFFIXES):
            yield MessageRef(str(child), shown, entry.name)
        elif entry.name.lower().endswith(MBOX_SUFFIXES) or (
            "." not in entry.name and is_mbox(child)
        ):
            yield from mbox_refs(child, shown)


def message_refs(target: str) -> Iterator[MessageRef]:
    """Every message under a path given on the command line (type auto-detected)."""
    path = Path(target)
    if not path.exists():
        raise SourceError(f"{target}: no such file or directory")
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise SourceError(f"{target}: permission denied")
        yield from directory_refs(path, target)
        return
    if not os.access(path, os.R_OK):
        raise SourceError(f"{target}: permission denied")
    if is_mbox(path):
        yield from mbox_refs(path, target)
    else:
        yield MessageRef(str(path), target, path.name)
