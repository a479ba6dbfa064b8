"""``--root DIR`` confinement: is a path, or an open descriptor, inside the root?

Two checks, both against the root's real path (:func:`real_root`):

- **Up front** (:func:`check_path`), at config load: the input's ``realpath`` (every
  symbolic link followed) must be the root or below it. Nothing is opened.
- **On what was opened** (:func:`check_fd`), by every built-in read: the path the
  kernel reports for the descriptor (``/proc/self/fd/N`` on Linux) must be inside.
  A file swapped for a symbolic link between a check and the open therefore cannot
  make a built-in read outside the root: the check is on the file actually opened.
  ``file_size`` only ``stat``\\ s, so :func:`stat_confined` opens with ``O_PATH``
  (no read permission needed, never blocks) and checks that descriptor.

"Inside" compares whole components: ``/data2/x`` is not inside ``/data``.

Standard library (and :mod:`asyncbatch.errors`) only: worker processes import it.
"""

from __future__ import annotations

import os

from asyncbatch.errors import OutsideRoot

O_PATH: int = getattr(os, "O_PATH", 0)
"""Linux: open for ``fstat`` and ``/proc/self/fd`` only (0 where it does not exist)."""


def real_root(root: str | os.PathLike[str]) -> str:
    """The root as the checks compare with: absolute, every symbolic link resolved."""
    return os.path.realpath(root)


def is_inside(path: str, root: str) -> bool:
    """Whether the real path ``path`` is ``root`` or below it, component-wise."""
    prefix = root if root.endswith(os.sep) else root + os.sep
    return path == root or path.startswith(prefix)


def check_path(path: str | os.PathLike[str], root: str, shown: str) -> None:
    """Raise :class:`OutsideRoot` (naming ``shown``) if ``path`` resolves outside
    ``root``; symbolic links are followed, a missing file is judged by its name."""
    if not is_inside(os.path.realpath(path), root):
        raise OutsideRoot(path=shown, root=root)


def fd_path(fd: int) -> str | None:
    """The real path of what ``fd`` is open on, as the kernel reports it (None
    where it cannot say: no ``/proc``)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def check_fd(fd: int, path: str, root: str) -> None:
    """Raise :class:`OutsideRoot` (naming ``path``) if the file open at ``fd`` is
    outside ``root``. The caller closes ``fd`` either way.

    Without ``/proc`` the descriptor's device and inode must be those of the
    ``realpath`` of ``path``, and that must be inside (a swap after the open then
    fails the job rather than escaping)."""
    opened = fd_path(fd)
    if opened is not None:
        if not is_inside(opened, root):
            raise OutsideRoot(path=path, root=root)
        return
    real = os.path.realpath(path)
    if not is_inside(real, root):
        raise OutsideRoot(path=path, root=root)
    here, there = os.fstat(fd), os.stat(real)
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
        raise OutsideRoot(path=path, root=root)


def stat_confined(path: str, root: str) -> os.stat_result:
    """``stat`` of ``path`` (links followed), refused with :class:`OutsideRoot` when
    the file is outside ``root``: opened with ``O_PATH`` and checked on the
    descriptor, so it needs no read permission and cannot block on a FIFO."""
    if not O_PATH:  # not Linux: path checks only, then the stat
        check_path(path, root, path)
        return os.stat(path)
    fd = os.open(path, O_PATH | os.O_CLOEXEC)
    try:
        check_fd(fd, path, root)
        return os.fstat(fd)
    finally:
        os.close(fd)
