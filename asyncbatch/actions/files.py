"""Actions about a file as a whole: its size and its checksum."""

from __future__ import annotations

import hashlib
from contextlib import aclosing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from asyncbatch.actions import _io, fastpath
from asyncbatch.registry import action

HashAlgorithm = Literal[
    "blake2b",
    "blake2s",
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sha3_224",
    "sha3_256",
    "sha3_384",
    "sha3_512",
]
"""``hashlib.algorithms_guaranteed`` minus shake_128/shake_256, whose digest length
the caller would have to choose. Spelled out so mypy and the JSON Schema see it;
a test keeps it in step with hashlib."""


class NoParams(BaseModel):
    """Params of an action that takes none: any key given is a config error."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ChecksumParams(BaseModel):
    """Params of ``checksum``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    algorithm: HashAlgorithm = Field(
        default="sha256",
        description="Hash algorithm: any of hashlib's guaranteed ones but shake_*.",
    )


@action("file_size", params=NoParams)
@fastpath.batchable("file_size")
async def file_size(path: Path, params: NoParams) -> dict[str, Any]:
    """Size of the file in bytes, from stat alone (nothing is read)."""
    if fastpath.ENABLED:
        return await fastpath.run_action("file_size", path, params)
    result = await _io.stat_regular(path)
    return {"bytes": result.st_size}


@action("checksum", params=ChecksumParams)
@fastpath.batchable("checksum")
async def checksum(path: Path, params: ChecksumParams) -> dict[str, Any]:
    """Hex digest of the file's bytes (sha256 unless `algorithm` says otherwise)."""
    if fastpath.ENABLED:
        return await fastpath.run_action("checksum", path, params)
    digest = hashlib.new(params.algorithm)
    async with aclosing(_io.iter_chunks(path)) as chunks:
        async for chunk in chunks:
            digest.update(chunk)
    return {"algorithm": params.algorithm, "digest": digest.hexdigest()}
