"""What a journaled job's result depends on, hashed: the job's name, action, params,
resolved input, the input's size and modification time, and the asyncbatch version
(the built-ins' code). Bounded in time and memory whatever the params: they are
encoded without recursion, and a heavy part is hashed once per object."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from typing import Any, NamedTuple

from asyncbatch.config import Job
from asyncbatch.errors import OutsideRoot
from asyncbatch.files.confine import stat_confined

_HEAVY = 64
"""Part of the params this heavy (about as many values, or 64 bytes of text per unit)
is hashed once per object and run, then stands for its digest wherever it appears
again: params built by YAML aliases cost what was written, not what it expands to."""


Basis = tuple[str, int, int, str, str]
"""What a fingerprint is made of, besides the job's name and action: the resolved
input (undecodable bytes as ``\\xNN``: the journal is UTF-8), its size and
modification time (nanoseconds), a digest of the params, the asyncbatch version."""


class Mark(NamedTuple):
    """A job's fingerprint and its :data:`Basis`, as the journal records them."""

    digest: str
    basis: Basis


class Fingerprints:
    """The fingerprints of one run's jobs (see the module docstring).

    Params are encoded canonically: each value's type and content, dict items in
    the order of their keys' encodings, set members sorted. A heavy part is
    replaced by its SHA-256, computed once per object (and kept, with the object,
    until the run ends): aliases of one big value cost it once. Equal params give
    equal fingerprints whatever objects hold them; different params, different ones."""

    def __init__(self, root: str | None = None) -> None:
        from asyncbatch.model import __version__

        self._root = root
        self._version = __version__
        self._memo: dict[int, tuple[object, bytes]] = {}
        self._last_digest: tuple[object, str] | None = None

    def of(self, job: Job) -> str | None:
        """The fingerprint of ``job``; None when its input cannot be stat'ed (or,
        under a root, lies outside it) or its params contain themselves: such a
        job is never reused."""
        found = self.mark(job)
        return None if found is None else found.digest

    def mark(self, job: Job) -> Mark | None:
        """The fingerprint of ``job`` with what it was made of (see :class:`Mark`);
        None as for :meth:`of`."""
        try:
            params = self._params(job.raw_params)
            size, mtime = self._input_state(job)
        except (OSError, OutsideRoot, ValueError):
            return None
        path = os.fspath(job.path)
        head = json.dumps([job.name, job.action, path, size, mtime, self._version]).encode()
        digest = hashlib.sha256(head + params).hexdigest()
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        basis = (shown, size, mtime, self._params_digest(job.raw_params, params), self._version)
        return Mark(digest, basis)

    def _params(self, raw: object) -> bytes:
        return _encode_flat(raw) or self._encode(raw)

    def _params_digest(self, raw: object, encoded: bytes) -> str:
        """A short digest of the params' encoding (what tells a resumed run's plan that
        they changed), computed once for the jobs of a glob, which share their params
        object and come one after another."""
        last = self._last_digest
        if last is not None and last[0] is raw:
            return last[1]
        digest = hashlib.sha256(encoded).hexdigest()[:16]
        self._last_digest = (raw, digest)
        return digest

    def _input_state(self, job: Job) -> tuple[int, int]:
        """The input's size and modification time: (0, 0) for a folder (it changes
        with any file in it) and for an input that is no file at all."""
        if job.spec is not None and job.spec.input == "none":
            return 0, 0
        path = os.fspath(job.path)
        info = os.stat(path) if self._root is None else stat_confined(path, self._root)
        if stat.S_ISDIR(info.st_mode):
            return 0, 0
        return info.st_size, info.st_mtime_ns

    def _encode(self, value: object) -> bytes:
        """The canonical encoding of ``value``, walked without recursion (a deep
        value must not exhaust the stack). Raises ValueError on a cycle."""
        stack: list[_Frame] = []
        open_ids: set[int] = set()
        leaf = self._leaf(value)
        if leaf is not None:
            return leaf[0]
        stack.append(_Frame(value, open_ids))
        while True:
            frame = stack[-1]
            child = next(frame.children, _END)
            if child is not _END:
                leaf = self._leaf(child)
                if leaf is None:
                    stack.append(_Frame(child, open_ids))
                else:
                    frame.add(*leaf)
                continue
            stack.pop()
            open_ids.discard(id(frame.node))
            encoded, weight = frame.encoding()
            if weight >= _HEAVY:
                encoded, weight = self._remember(frame.node, encoded), 1
            if not stack:
                return encoded
            stack[-1].add(encoded, weight)

    def _leaf(self, value: object) -> tuple[bytes, int] | None:
        """(encoding, weight) of a scalar or of a value met before; None for a
        container to walk."""
        known = self._memo.get(id(value))
        if known is not None:
            return known[1], 1
        if isinstance(value, dict | list | tuple | set | frozenset):
            return None
        encoded = _encode_scalar(value)
        weight = 1 + len(encoded) // 64
        if weight >= _HEAVY:
            return self._remember(value, encoded), 1
        return encoded, weight

    def _remember(self, value: object, encoded: bytes) -> bytes:
        digest = b"h" + hashlib.sha256(encoded).digest()
        self._memo[id(value)] = (value, digest)  # the value is kept: its id stays its own
        return digest


def fingerprint(job: Job, root: str | None = None) -> str | None:
    """What the job's result depends on, hashed (see :class:`Fingerprints`); None
    when the input cannot be stat'ed (such a job is never reused)."""
    return Fingerprints(root).of(job)


_END = object()


class _Frame:
    """A container being encoded: its children's encodings so far, and their weight."""

    __slots__ = ("children", "node", "parts", "weight")

    def __init__(self, node: Any, open_ids: set[int]) -> None:
        if id(node) in open_ids:
            raise ValueError("the params contain themselves")
        open_ids.add(id(node))
        self.node = node
        self.children: Iterator[Any] = (
            (part for item in node.items() for part in item)
            if isinstance(node, dict)
            else iter(node)
        )
        self.parts: list[bytes] = []
        self.weight = 1

    def add(self, encoded: bytes, weight: int) -> None:
        self.parts.append(encoded)
        self.weight += weight

    def encoding(self) -> tuple[bytes, int]:
        parts = self.parts
        if isinstance(self.node, dict):
            tag, parts = (
                b"d",
                sorted(key + value for key, value in zip(parts[::2], parts[1::2], strict=True)),
            )
        elif isinstance(self.node, set | frozenset):
            tag, parts = b"S", sorted(parts)
        else:
            tag = b"l"
        return b"%s%d:%s" % (tag, len(parts), b"".join(parts)), self.weight


def _encode_scalar(value: object) -> bytes:
    """A value that is not a container: its type and content, self-delimiting (keys'
    encodings are prefix-free, so sorting items sorts them by key)."""
    if value is None or value is True or value is False:
        return {None: b"N", True: b"T", False: b"F"}[value]
    if isinstance(value, int):
        return b"i%d;" % value
    if isinstance(value, float):
        return b"f%s;" % repr(value).encode()
    if isinstance(value, bytes | bytearray):
        return b"b%d:%s" % (len(value), value)
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"s%d:%s" % (len(data), data)
    text = f"{type(value).__qualname__}:{value}".encode("utf-8", "surrogatepass")
    return b"o%d:%s" % (len(text), text)  # dates and times (TOML, YAML), say


_FLAT = frozenset({str, int, float, bool, type(None)})


def _encode_flat(params: object) -> bytes | None:
    """The encoding of light params made of scalars only, the common case, as
    ``Fingerprints._encode`` gives it, without its walk; None for other params."""
    if type(params) is not dict:
        return None
    parts = []
    weight = 1
    for key, value in params.items():
        if type(key) is not str or type(value) not in _FLAT:
            return None
        encoded = _encode_scalar(key) + _encode_scalar(value)
        weight += 2 + len(encoded) // 64  # at least the weight of its two parts
        parts.append(encoded)
    if weight >= _HEAVY:
        return None  # a part of it might be heavy: the walk decides
    parts.sort()
    return b"d%d:%s" % (len(parts), b"".join(parts))
