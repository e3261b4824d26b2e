"""What a user-supplied path is, told without opening it: a named pipe would block the reader
forever, a directory or a device would fail with a traceback. Every reader of a user's file
(params, corpus text and CSV files, transcripts, grids, feature files) asks first."""
from __future__ import annotations

import os
import stat
from pathlib import Path

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
