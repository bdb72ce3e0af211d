"""Files one session uploads for its own runs (today: the qubit mapping of the `iqm` target).

A run takes the mapping as a path (`target_options={'mapping_file': PATH}`), so the upload must live on disk.
It is checked first (size, text, CUDA-Q's format), then written under a directory that `tempfile.mkdtemp`
creates readable by this server's user only, under a name the upload does not choose, and deleted when the
session ends (or, for a notebook or test, when the session's settings are garbage collected or the process
exits); directories left by a server that was killed go when the next server stores an upload.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import tempfile
import weakref
from typing import BinaryIO

from ..engine.mapping import MAX_MAPPING_CHARS, parse_mapping
from ..engine.targets import TargetError
from .share import ShareError, upload_text

MAX_MAPPING_BYTES = MAX_MAPPING_CHARS  # checked on the bytes before decoding them
PREFIX = "workbench-session-"  # then the server's pid: a killed server's files are found by the next one
LOCK_NAME = ".lock"  # held (flock) by the live server for as long as the directory is in use


def _remove_orphans() -> None:
    """Delete the upload directories no live server holds: a server stopped by a signal never calls its
    sessions' end callbacks, and the kernel lets go of its lock when it dies.

    The lock, not the pid in the name, tells: a server in another PID namespace sharing /tmp (a container on a
    shared volume, often pid 1 like this one) has a pid that means nothing here, and this server's own
    directories are locked by it (a second lock on the same file is refused, in this process too). A directory
    without a lock file (left by an older workbench, or made where locks are not supported) goes only when the
    pid in its name is not this process and has ended here.
    """
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{PREFIX}*-*")):
        pid = os.path.basename(path)[len(PREFIX):].split("-")[0]
        try:
            with open(os.path.join(path, LOCK_NAME), "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live server holds it
            continue
        except FileNotFoundError:
            if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
                continue
        except OSError:  # another user's directory, one going away, or no locks here: not ours to judge
            continue
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a live process of another user
        return True
    return True


def _locked_directory() -> tuple[str, BinaryIO]:
    """A new upload directory (mode 0700) and the open file whose lock marks it live. It is made under a hidden
    name and renamed once locked, so no other server ever sees it without its lock. Where the file system has no
    locks, the lock file goes and the directory is judged by the pid in its name."""
    staging = tempfile.mkdtemp(prefix=f".{PREFIX}{os.getpid()}-")
    lock = None
    try:
        lock = open(os.path.join(staging, LOCK_NAME), "wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # e.g. ENOLCK on a network /tmp
            os.unlink(lock.name)
        directory = os.path.join(os.path.dirname(staging), os.path.basename(staging)[1:])
        os.rename(staging, directory)
    except BaseException:
        if lock is not None:
            lock.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory, lock


def _release(directory: str, lock) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    lock.close()


class SessionFiles:
    """A session's private upload directory, made on first use and removed by `close()`."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._count = 0
        self._finalizer: weakref.finalize | None = None

    def store_mapping(self, data: bytes | str, filename: str = "the mapping file") -> tuple[str, int]:
        """(path of the stored copy, qubits it describes) for an uploaded iqm mapping file; ShareError if unfit.

        Example:
            >>> files = SessionFiles()
            >>> path, qubits = files.store_mapping(b"Number of nodes: 2\\n0 --> {1}\\n1 --> {0}\\n", "line.txt")
            >>> qubits
            2
            >>> files.close()
        """
        data = upload_text(data, filename, limit=MAX_MAPPING_BYTES, what="a qubit mapping file",
                           fix="upload the device's qubit mapping text file")
        try:
            qubits = parse_mapping(data, filename)
        except TargetError as err:
            raise ShareError(str(err)) from None
        if self._dir is None:
            _remove_orphans()
            self._dir, lock = _locked_directory()
            self._finalizer = weakref.finalize(self, _release, self._dir, lock)
        self._count += 1
        path = os.path.join(self._dir, f"mapping-{self._count}.txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(data)
        return path, qubits

    def close(self) -> None:
        """Delete every file of this session."""
        if self._finalizer is not None:
            self._finalizer()
        self._dir, self._finalizer = None, None
