"""Files in and out. In: what a user-supplied path is, told without opening it (a named pipe would
block the reader forever, a directory or a device would fail with a traceback); every reader of a
user's file (params, corpus text and CSV files, transcripts, grids, feature files) asks first.
Out: :func:`atomic_file`, the one way the project writes a file that a kill or a full disk must
not leave half-written."""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_problem(path: Path | str) -> str | None:
    """None for a regular file (or a link to one); otherwise what the path is instead, as a
    phrase ("does not exist", "is a named pipe, not a file")."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
    return f"is {kind}, not a file"


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def atomic_file(path: Path | str, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` through a temporary file beside it, renamed over it when complete: a
    reader never sees half a file. On any failure the temporary file is removed; a full disk is
    re-raised naming ``path`` (the caller's one-line error: :func:`pipeline.cli.stage_main`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in DISK_FULL:
            raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
