# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""The exception types modules turn into ``fail_json``."""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path
from typing import Any, Iterator


class NatsOpsError(Exception):
    """A failure with a message fit for an operator, and optional facts to return with it."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class NoAnswer(NatsOpsError):
    """A request nobody answered: no responders, or no reply in time (no leader, as during an election)."""


# What to do about a failed file operation, by errno.
_DISK_ADVICE = {
    errno.ENOSPC: "free space on that file system, or choose another path",
    errno.EDQUOT: "the disk quota is used up: free space, or choose another path",
    errno.EACCES: "give the user that runs the module access to it, or choose another path",
    errno.EPERM: "give the user that runs the module access to it, or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOTDIR: "a file stands where a directory is needed: choose another path",
    errno.EISDIR: "a directory stands where a file is needed: choose another path",
    errno.EEXIST: "something that is not a directory stands there: choose another path",
    errno.ENOENT: "it does not exist: check the path",
}


class DiskError(NatsOpsError):
    """A file operation failed; the message names the path the user knows and what to do.

    Work in progress lives under hidden temporary names: ``shown_as`` puts the user's own path in the
    message instead; ``context`` says what the failure broke (``backup of ORDERS failed``).
    """

    def __init__(self, doing: str, path: Path, error: OSError, context: str | None = None) -> None:
        self.doing = doing
        self.path = Path(path)
        self.error = error
        self.context = context
        advice = _DISK_ADVICE.get(error.errno or 0, "check the disk and the path")
        msg = f"{doing} {self.path} failed: {error.strerror or error} ({advice})"
        super().__init__(f"{context}: {msg}" if context else msg, path=str(self.path), errno=error.errno)

    @classmethod
    def of(cls, error: OSError, doing: str = "writing") -> DiskError:
        """An OSError raised by a file operation, named by the file it names."""
        return cls(doing, Path(error.filename or "?"), error)

    def shown_as(self, path: Path) -> DiskError:
        return DiskError(self.doing, path, self.error, self.context)

    def within(self, context: str) -> DiskError:
        return DiskError(self.doing, self.path, self.error, context)


@contextlib.contextmanager
def disk_errors(context: str | None = None, doing: str = "writing") -> Iterator[None]:
    """Turn a failed file operation inside into a DiskError (within ``context``, when given)."""
    try:
        yield
    except DiskError as exc:
        raise (exc.within(context) if context and not exc.context else exc) from None
    except OSError as exc:
        error = DiskError.of(exc, doing)
        raise (error.within(context) if context else error) from None
