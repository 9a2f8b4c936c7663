"""Failures of the machine a command runs on, not of the code: a full disk, a folder that cannot be written, a
damaged or locked metadata store. `mtl` turns each into one line that names the resource and says what to do
(exit 2); the atomic push means nothing half-written is ever served."""

from __future__ import annotations

import errno
import os
import re
import tempfile

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)
_PATH_IN_TEXT = re.compile(r"(/[^\s:;,'\"()]+)")


def environment_problem(error: BaseException, *, output_dir: str, metadata_path: str,
                        serving_dir: str | None = None) -> str | None:
    """One line for an environment failure anywhere in ``error``'s chain (its causes and contexts), or None when it
    is not one (then it is a bug, and keeps its traceback)."""
    for cause in _chain(error):
        text = str(cause)
        path = getattr(cause, "filename", None) or _first_path(text) or output_dir
        if isinstance(cause, OSError) and cause.errno in _NO_SPACE or "No space left on device" in text:
            full = _fullest([output_dir, serving_dir, tempfile.gettempdir(), getattr(cause, "filename", None),
                             _first_path(text)], fallback=getattr(cause, "filename", None) or output_dir)
            return (f"{full}: no space left on its device; free space there (or pass --output-dir / --serving-dir "
                    "on another disk) and run again: nothing was pushed, the served model is as it was")
        if isinstance(cause, OSError) and cause.errno in _NOT_ALLOWED or re.search(
                r"Permission denied|Read-only file system", text):
            return (f"{path}: not writable ({_reason(cause, text)}); make it writable, or pass another --output-dir "
                    "/ --serving-dir: nothing was pushed")
        damaged = re.search(r"file is not a database|database disk image is malformed|unable to open database", text)
        if damaged:
            return (f"{metadata_path}: the metadata store is damaged or unreadable ({damaged.group(0)}); move it "
                    "aside (its recorded runs go with it) or pass another --output-dir, and run again")
        if "database is locked" in text or "Concurrent writes aborted" in text:
            return (f"{metadata_path}: the metadata store is locked by another process; wait for it or stop it, and "
                    "run again")
    return None


def _fullest(candidates: list[str | None], fallback: str) -> str:
    """Of the folders (or files) named, the first on a filesystem that is (nearly) full; else ``fallback``."""
    for candidate in filter(None, candidates):
        folder = candidate
        while not os.path.exists(folder) and folder != os.path.dirname(folder):
            folder = os.path.dirname(folder)
        if folder == os.path.dirname(folder):  # only the root exists: not a path on this machine
            continue
        stats = os.statvfs(folder)
        if stats.f_bavail * stats.f_frsize < max(64 << 20, 0.01 * stats.f_blocks * stats.f_frsize):
            return candidate
    return fallback


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _first_path(text: str) -> str | None:
    match = _PATH_IN_TEXT.search(text)
    return match.group(1) if match else None


def _reason(cause: BaseException, text: str) -> str:
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return "read-only file system" if "Read-only" in text else "permission denied"
