"""An agent's files: its data directory, the lock on it, and configuration it reads (D10).

What an agent keeps (its store, its private signing keys) is its owner's
alone (the vendor's and its customers', or the individual's), whatever the
umask of whoever starts it:

* the data directory is made ``0700`` and every file the agent creates in it
  ``0600``, with explicit modes, not through the umask;
* the directory is locked (``fcntl.flock`` on a lock file in it) for as long
  as an agent serves it: two agents on one store would each believe it holds
  the relationship, and the second one to start fails with one line;
* a configuration file (a catalogue, an issuer document, a sharing policy)
  that another user can write, or that belongs to someone else, is refused:
  whoever can write it decides whom the agent trusts and what it shares or
  asks for.

Every refusal is a :class:`DataDirError` whose message is one line saying what
is wrong and what to do, for the command line to print as it is.
"""

from __future__ import annotations

import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "LOCK_FILE",
    "DataDirError",
    "DataDirLock",
    "check_config_file",
    "lock_data_dir",
    "prepare_data_dir",
    "private_file",
    "write_private_atomically",
]

#: The data directory's mode: the agent's user alone.
DIR_MODE = 0o700
#: Every file the agent creates in it.
FILE_MODE = 0o600
#: The lock file inside the data directory, unless the agent names its own.
LOCK_FILE = "agent.lock"


class DataDirError(Exception):
    """The data directory, a file in it, or a configuration file cannot be used;
    the message is one line for the operator."""


def _trusted_owner(uid: int) -> bool:
    # The agent's own user, or root (packages installed system-wide).
    return uid in (os.geteuid(), 0)


def check_config_file(path: Path) -> None:
    """Refuse a configuration file that others may write (D10).

    The file must belong to the agent's user (or root) and be writable by
    neither its group nor others; nor may its directory let others replace
    it (writable by group or others without the sticky bit).

    Raises:
        DataDirError: it may be written by someone else, or cannot be examined.
    """
    try:
        info = path.stat()
        folder = path.resolve().parent.stat()
    except OSError as error:
        raise DataDirError(f"cannot read {path}: {error.strerror or error}") from error
    if not _trusted_owner(info.st_uid):
        raise DataDirError(
            f"refusing {path}: it is owned by uid {info.st_uid}, not by you; "
            "copy it and use your copy"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise DataDirError(
            f"refusing {path}: it is writable by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run chmod go-w on it"
        )
    if folder.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not folder.st_mode & stat.S_ISVTX:
        raise DataDirError(
            f"refusing {path}: others can replace it in its directory (mode "
            f"{stat.S_IMODE(folder.st_mode):04o}); move it to a directory only you can write"
        )


def prepare_data_dir(path: Path) -> None:
    """Create ``path`` (and its parents) or take it over: a directory of the
    agent's user, mode ``0700``.

    Raises:
        DataDirError: it is not a directory, belongs to someone else, or cannot
            be created.
    """
    try:
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        info = path.stat()
        if not stat.S_ISDIR(info.st_mode):
            raise DataDirError(f"the data directory {path} is not a directory")
        if info.st_uid != os.geteuid():
            raise DataDirError(
                f"the data directory {path} belongs to uid {info.st_uid}, not to you; "
                "choose another --data-dir"
            )
        # mkdir's mode passes through the umask, and an existing directory keeps
        # whatever it had: take away every permission of others, and give the
        # owner nothing the owner took away (a directory made read-only stays so).
        os.chmod(path, DIR_MODE if created else stat.S_IMODE(info.st_mode) & DIR_MODE)
        if not os.access(path, os.W_OK | os.X_OK):
            raise DataDirError(
                f"the data directory {path} is read-only; make it writable (chmod u+w) "
                "or choose another --data-dir"
            )
    except OSError as error:
        raise DataDirError(
            f"cannot use the data directory {path}: {error.strerror or error}"
        ) from error


def private_file(path: Path) -> None:
    """Create ``path`` empty if it is missing, and make it ``0600`` either way.

    Raises:
        DataDirError: it cannot be created or its mode set.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        try:
            os.fchmod(descriptor, FILE_MODE)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise DataDirError(f"cannot use {path}: {error.strerror or error}") from error


def write_private_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing, mode ``0600``: a temporary file
    in the same directory, fsync, rename over ``path``, fsync the directory.

    A crash leaves either no file or the complete one, never an empty key.

    Raises:
        OSError: the file cannot be written.
    """
    folder = path.parent
    temporary = folder / f".{path.name}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        temporary.unlink(missing_ok=True)
        raise
    os.close(descriptor)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass
class DataDirLock:
    """The lock on a data directory, held until :meth:`release`."""

    path: Path
    descriptor: int | None

    def release(self) -> None:
        """Let another agent serve the directory."""
        if self.descriptor is not None:
            os.close(self.descriptor)  # closing the descriptor releases the flock
            self.descriptor = None


def lock_data_dir(path: Path, *, lock_file: str = LOCK_FILE, agent: str = "agent") -> DataDirLock:
    """Prepare the data directory (:func:`prepare_data_dir`) and lock it.

    ``lock_file`` names the lock file in it; ``agent`` names the kind of agent
    in the refusal (``another vendor agent serves ...``).

    Raises:
        DataDirError: it cannot be used, or another agent holds the lock.
    """
    prepare_data_dir(path)
    lock_path = path / lock_file
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    except OSError as error:
        raise DataDirError(f"cannot lock {path}: {error.strerror or error}") from error
    try:
        os.fchmod(descriptor, FILE_MODE)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        os.close(descriptor)
        shown = f" (pid {holder})" if holder.isdigit() else ""
        raise DataDirError(
            f"another {agent} serves {path}{shown}; stop it or choose another --data-dir"
        ) from error
    # Who holds it, for the message above (the lock itself is the flock).
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(lock_path, descriptor)
