"""Read the tail of a user's job log safely from the (root) hub.

The log lives in the user's home, which the user controls: it could be replaced by a
symlink to a file only root may read. We open it without following symlinks and only
return it when it is a regular file owned by that user.
"""

from __future__ import annotations

import os
import pwd
import stat


def read_log_tail(path: str, username: str, max_bytes: int = 8192) -> str | None:
    """The last ``max_bytes`` of ``path`` if it is a regular file owned by ``username``;
    None when it does not exist or must not be read."""
    try:
        uid = pwd.getpwnam(username).pw_uid
    except KeyError:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid:
            return None
        size = st.st_size
        start = max(0, size - max_bytes)
        os.lseek(fd, start, os.SEEK_SET)
        data = b""
        while len(data) < size - start:
            chunk = os.read(fd, size - start - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    if start > 0 and "\n" in text:
        text = text.split("\n", 1)[1]  # drop the partial first line
    return text
