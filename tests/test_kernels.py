"""The built-ins' kernels are exact, and every route that runs one gives the same result.

Oracles: Python on the whole bytes (the actions' definitions), hashlib, and coreutils
(wc, grep, sha256sum) where they apply. Routes, on the same files: the action
function awaited (aiofiles streaming, or a worker process for ``search_pattern``),
``stream_file``, ``scan_file`` (synchronous: worker processes and Dask workers),
``scan_small_file`` and ``SmallFiles`` batches, ``scan_in_thread``,
``scan_in_process``, and a whole ``run_batch`` with a ``LocalExecutor`` whose
thresholds sit right at the files' sizes, with one core and with two. Chunks are
cut tiny so that lines, words, multi-byte characters and matches straddle reads.
``PatternSearch(optimise=False)`` (every block decoded and searched with the ``str``
pattern) is the reference the optimised search is compared with. No timings are asserted.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias, get_args

import anyio
import pytest
from support import by_name, load, worker_processes_for_the_loop

from asyncbatch import run_batch
from asyncbatch.actions import _regexplan as regexplan
from asyncbatch.actions import builtin_specs
from asyncbatch.actions._kernels import LineCount
from asyncbatch.actions._params import HashAlgorithm
from asyncbatch.actions._search import PatternSearch
from asyncbatch.actions.builtins import CHECKSUM, LINES, SEARCH, SIZE, WORDS
from asyncbatch.config import BatchConfig
from asyncbatch.controls import Halt
from asyncbatch.engine import Backoff, LocalExecutor
from asyncbatch.errors import NotARegularFile, describe_error
from asyncbatch.files.batch import Done, SmallFiles, SmallJob
from asyncbatch.files.scan import Scanned, open_regular, scan_file, scan_small_file
from asyncbatch.files.stream import plain_params, scan_in_process, scan_in_thread, stream_file
from asyncbatch.kernel import Kernel, Scanner, Tuning
from asyncbatch.model import Report, Resources
from asyncbatch.registry import ActionRegistry, ActionSpec

pytestmark = pytest.mark.anyio

Outcome: TypeAlias = dict[str, Any] | tuple[str, str] | int
"""What a route gave: a result, an exception as ``(type, message)``, or (only
``scan_small_file``) the size of a file too big to read whole."""

BUILTIN = {spec.name: spec for spec in builtin_specs()}


async def builtin_result(spec: ActionSpec, path: Path, params: Any) -> dict[str, Any]:
    """A built-in action's function awaited on ``path``: its result (a dict)."""
    result = await spec.func(path, params)
    assert isinstance(result, dict), result
    return result


def kernel_of(action: str) -> Kernel:
    kernel = BUILTIN[action].kernel
    assert kernel is not None
    return kernel


CHUNK_SIZES = (1, 2, 3, 7, 64, 4096)
WHOLE = Tuning(chunk_bytes=1 << 20, small_file_bytes=1 << 20)
"""Big enough that every test file is read whole by the small-file routes."""

SAMPLES: dict[str, bytes] = {
    "empty": b"",
    "one_newline": b"\n",
    "blank_lines": b"\n\n\nERROR\n\n",
    "no_final_newline": b"ERROR one\nFATAL two",
    "crlf": b"ERROR a\r\nb FATAL\r\n\r\nfatal\r\n",
    "invalid_utf8": b"ERR\xffOR \xff\xfe ERROR\n\x80FATAL\xc3\n\xe2\x82 x\xf0\x9f\x98",
    "separators": b"a\x1cb\x1dc\x1ed\x1fe\x0bf\x0cg ERROR\tFATAL\r\n",
    "unicode_whitespace": "a\xa0b\u3000c\x1cd\x1fe\x85f ERROR\u2028FATAL\n".encode(),
    "unicode_space": "a\xa0b\u3000c\x85d\u2028e ERROR \u200bFATAL\n".encode(),
    "multibyte": "héllo wörld €uro 😀ERROR\n日本語 FATAL テキスト é\n".encode(),
    "ascii_then_multibyte": b"x" * 15 + "é ERROR€".encode() + b" y\n" * 3,
    # ASCII runs and decoded runs (U+3000, é, a cut sequence, 😀) in one word count
    "ascii_and_decoded": b"ab \x1c cd\xe3\x80\x80\xc3\xa9 ef\x1fgh "
    b"\xe2\x82 ij kl\xf0\x9f\x98\x80 m",
    "matches_per_line": b"ERROR ERROR FATAL\nok\nERRORERROR\nFATALERROR",
    "literal_inside_invalid": b"\xc3ERROR\xa9 \xe2\x82ERROR \xf0FATAL\n",
}
PATTERNS = [
    ("ERROR", False),
    ("ERROR|FATAL", False),
    ("ERR|ERROR", False),
    (r"E\w+", False),
    (r"\w+", False),
    ("[^\x00-\x7f]+", False),
    (r"\d+|x", False),
    ("[A-Z]{3,}", False),
    ("^ERROR", False),
    ("FATAL$", False),
    ("R(?=O)", False),
    ("(?<=E)R", False),
    (r"\bERROR\b", False),
    ("é|€", False),
    (".R", False),
    ("[^ ]R", False),
    ("\ufffd", False),
    ("error", True),
    ("fatal", True),
    ("(?i)fatal", False),
    ("(ERROR) \\1", False),
    ("(?:ERROR|FATAL)[a-z ]*", False),
]
THRESHOLD = 16
SIZES = (0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 2 * THRESHOLD - 1, 2 * THRESHOLD, 48)


# --- oracles: what the kernels must agree with -----------------------------------------


def expected_lines(data: bytes) -> int:
    return data.count(b"\n") + int(bool(data) and not data.endswith(b"\n"))


def expected_words(data: bytes) -> int:
    return len(data.decode("utf-8", "replace").split())


def expected_search(data: bytes, pattern: str, *, ignore_case: bool = False) -> dict[str, int]:
    """Match each line on its own, as search_pattern defines it."""
    regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    lines = data.decode("utf-8", "replace").split("\n")
    per_line = [sum(1 for _ in regex.finditer(line)) for line in lines]
    return {"matches": sum(per_line), "matching_lines": sum(1 for n in per_line if n)}


def expected(action: str, raw: Mapping[str, Any], data: bytes) -> dict[str, Any]:
    """The result of built-in ``action`` with ``raw`` params on ``data``, by its definition."""
    if action == "count_lines":
        return {"lines": expected_lines(data)}
    if action == "count_words":
        return {"words": expected_words(data)}
    if action == "file_size":
        return {"bytes": len(data)}
    if action == "checksum":
        algorithm = raw.get("algorithm", "sha256")
        return {"algorithm": algorithm, "digest": hashlib.new(algorithm, data).hexdigest()}
    assert action == "search_pattern"
    return expected_search(data, raw["pattern"], ignore_case=raw.get("ignore_case", False))


CASES: list[tuple[str, dict[str, Any]]] = [
    ("count_lines", {}),
    ("count_words", {}),
    ("file_size", {}),
    ("checksum", {}),
    ("checksum", {"algorithm": "blake2b"}),
    *(("search_pattern", {"pattern": p}) for p in ("ERROR|FATAL", "ERROR", r"\w+")),
    ("search_pattern", {"pattern": "[^\x00-\x7f]+"}),
    ("search_pattern", {"pattern": "fatal", "ignore_case": True}),
]
"""Every built-in, with the params the sample tests run them with."""


def tool_output(*argv: str, env: dict[str, str] | None = None) -> str:
    """stdout of a coreutils/grep command, or skip the test when it is not installed."""
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} not installed")
    done = subprocess.run(argv, capture_output=True, check=False, env=env, text=True)
    return done.stdout


# --- the routes ------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
async def one_event_loop_for_the_module(anyio_backend: str) -> AsyncIterator[None]:
    """One event loop for all the tests here, and its worker processes with it: they
    start once, not once per test (~0.3 s each); see worker_processes_for_the_loop."""
    async with worker_processes_for_the_loop():
        yield  # while suspended here, anyio's plugin keeps the loop running


def write(tmp_path: Path, data: bytes, name: str = "input.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


_FIRST_WORKER: list[int] = []
"""The pid of the worker process the module's first test scanned in."""


async def test_a_worker_process_outlives_the_first_test_that_starts_one(tmp_path: Path) -> None:
    """First in the module: its worker process must serve the next test too."""
    path = write(tmp_path, b"x\n")
    result, _ = await scan_in_process(Kernel(Where, isolated=True), path, {}, Tuning())
    _FIRST_WORKER.append(result["pid"])


async def test_the_next_test_is_served_by_the_same_live_worker_process(tmp_path: Path) -> None:
    """anyio ends a loop's worker processes when the task it takes for the loop's root
    ends; under pytest's plugin that is the first test's own task, not the module's
    loop, and its workers would be killed but left in the pool: the next test would
    take a dead one (BrokenWorkerProcess, when the kill's exit has not reached the
    loop yet: under load) or start another."""
    if not _FIRST_WORKER:
        pytest.skip("runs after the test that starts the worker")
    path = write(tmp_path, b"y\n")
    result, _ = await scan_in_process(Kernel(Where, isolated=True), path, {}, Tuning())
    assert result["pid"] == _FIRST_WORKER[0]


def cut_sizes(data: bytes) -> list[bytes]:
    """``data`` cut or repeated to each size of SIZES (multi-byte characters cut too)."""
    return [(data * (size // max(len(data), 1) + 1))[:size] for size in SIZES]


def plain(outcome: Scanned | Outcome) -> Outcome:
    """A scan's result without what it used (a size or an error as it is)."""
    if isinstance(outcome, tuple) and isinstance(outcome[1], Resources):
        return outcome[0]
    return outcome


def caught(call: Callable[[], Scanned | Outcome]) -> Outcome:
    """``call()`` (its result, for a scan), or the exception it raised as
    ``(type, message)``."""
    try:
        return plain(call())
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return type(exc).__name__, str(exc)


async def caught_async(call: Callable[[], Awaitable[Scanned | Outcome]]) -> Outcome:
    try:
        return plain(await call())
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return type(exc).__name__, str(exc)


class Batch:
    """A ``SmallFiles`` run and what it told its caller: the jobs it reported
    started (``on_started``) and done (``on_done``), in the order it reported them."""

    def __init__(
        self, jobs: Sequence[SmallJob], tuning: Tuning = WHOLE, *, stop_on_error: bool = False
    ) -> None:
        self.started: list[tuple[int, float]] = []
        self.done: list[Done] = []
        self.files = SmallFiles(
            jobs,
            tuning,
            None,
            stop_on_error=stop_on_error,
            on_started=lambda position, at: self.started.append((position, at)),
            on_done=self.done.append,
        )

    async def run(self) -> Batch:
        await self.files.run()
        return self

    @property
    def timed_out(self) -> tuple[int, float] | None:
        return self.files.end.timed_out

    @property
    def large(self) -> tuple[int, int] | None:
        return self.files.end.large

    @property
    def not_started(self) -> range:
        return range(self.files.end.reached, len(self.files.jobs))


async def in_a_batch(kernel: Kernel, path: Path, params: Mapping[str, Any], tuning: Tuning) -> Any:
    """The result of one job in a ``SmallFiles`` batch of its own (raised if it failed)."""
    batch = await Batch([SmallJob(kernel, str(path), params, None)], tuning).run()
    if batch.large is not None:
        return batch.large[1]
    (done,) = batch.done
    if done.error is not None:
        raise done.error
    return done.result


async def routes(
    action: str,
    path: Path,
    raw: Mapping[str, Any] | None = None,
    *,
    chunks: Sequence[int] = CHUNK_SIZES,
    process_chunks: Sequence[int] = (7,),
    tuning: Tuning = WHOLE,
    with_action: bool = True,
) -> dict[str, Outcome]:
    """What every route gives for built-in ``action`` on ``path``: keyed by route
    (and chunk size). The action function runs with the default tuning, so a test
    of another ``max_line_bytes`` leaves it out (``with_action=False``)."""
    spec = BUILTIN[action]
    kernel = kernel_of(action)
    validated = spec.validate_params(dict(raw or {}))
    params = plain_params(validated)
    name = str(path)
    whole = replace(tuning, chunk_bytes=WHOLE.chunk_bytes, small_file_bytes=WHOLE.small_file_bytes)
    found: dict[str, Outcome] = {}
    if with_action:
        found["action"] = await caught_async(partial(builtin_result, spec, path, validated))
    found["scan_small_file"] = caught(partial(scan_small_file, kernel, name, params, whole, None))
    found["SmallFiles"] = await caught_async(partial(in_a_batch, kernel, path, params, whole))
    for chunk in chunks:
        each = replace(tuning, chunk_bytes=chunk)
        found[f"scan_file/{chunk}"] = caught(partial(scan_file, kernel, name, params, each))
        found[f"stream_file/{chunk}"] = await caught_async(
            partial(stream_file, kernel, path, params, each)
        )
        found[f"scan_in_thread/{chunk}"] = await caught_async(
            partial(scan_in_thread, kernel, path, params, each)
        )
    for chunk in process_chunks:
        each = replace(tuning, chunk_bytes=chunk)
        found[f"scan_in_process/{chunk}"] = await caught_async(
            partial(scan_in_process, kernel, path, params, each)
        )
    return found


async def assert_every_route(
    action: str, path: Path, raw: Mapping[str, Any] | None, want: Outcome, **options: Any
) -> None:
    found = await routes(action, path, raw, **options)
    assert found == dict.fromkeys(found, want), (action, raw, path)


def feed(scanner: Scanner, pieces: Sequence[bytes]) -> dict[str, Any]:
    """Feed ``pieces`` through one reused buffer, scribbled over after each update:
    a scanner must keep copies, never the buffer (the ``Scanner`` contract)."""
    buffer = bytearray()
    for piece in pieces:
        buffer[:] = piece
        scanner.update(buffer)
        buffer[:] = b"\xaa" * len(buffer)
    return scanner.result()


def reference_search(
    path: str, size: int, params: Mapping[str, Any], tuning: Tuning
) -> PatternSearch:
    """The plain search: every block decoded and searched with the ``str`` pattern."""
    return PatternSearch(path, size, params, tuning, optimise=False)


REFERENCE = Kernel(reference_search, isolated=True)


def searches(path: Path, pattern: str, ignore_case: bool, chunk: int) -> tuple[Outcome, Outcome]:
    """(optimised, reference) search of ``path`` read in ``chunk``-byte pieces."""
    params = {"pattern": pattern, "ignore_case": ignore_case}
    tuning = Tuning(chunk_bytes=chunk)
    optimised = caught(partial(scan_file, SEARCH, str(path), params, tuning))
    reference = caught(partial(scan_file, REFERENCE, str(path), params, tuning))
    return optimised, reference


# --- every route, every built-in, on the samples ---------------------------------------


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
async def test_every_route_gives_what_python_gives_on_the_whole_bytes(
    tmp_path: Path, data: bytes
) -> None:
    path = write(tmp_path, data)
    for action, raw in CASES:
        await assert_every_route(action, path, raw, expected(action, raw, data))
    batch = await Batch(
        [SmallJob(kernel_of(action), str(path), raw, None) for action, raw in CASES]
    ).run()
    assert [(done.position, done.result, done.error) for done in batch.done] == [
        (position, expected(action, raw, data), None)
        for position, (action, raw) in enumerate(CASES)
    ]
    assert (batch.timed_out, batch.large, list(batch.not_started)) == (None, None, [])


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
def test_scanners_are_exact_however_the_bytes_are_cut(tmp_path: Path, data: bytes) -> None:
    """Fed directly at every cut position and step, and read by ``scan_file`` at
    every chunk size from files cut at the thresholds' sizes."""
    for action, raw in CASES:
        spec = BUILTIN[action]
        assert spec.kernel is not None
        params = plain_params(spec.validate_params(raw))
        want = expected(action, raw, data)
        for cut in range(len(data) + 1):
            for step in (1, 2, 3):
                pieces = [data[:cut], *(data[i : i + step] for i in range(cut, len(data), step))]
                scanner = spec.kernel.start("input.txt", len(data), params, Tuning())
                got = feed(scanner, pieces) if spec.kernel.reads else scanner.result()
                assert got == want, (action, raw, cut, step)
        for k, cut_data in enumerate(cut_sizes(data)):
            path = write(tmp_path, cut_data, f"cut{k}.txt")
            for chunk in CHUNK_SIZES:
                got, _ = scan_file(spec.kernel, str(path), params, Tuning(chunk_bytes=chunk))
                assert got == expected(action, raw, cut_data), (action, raw, cut_data, chunk)


async def test_an_empty_file_has_no_lines_words_or_matches(tmp_path: Path) -> None:
    path = write(tmp_path, b"")
    await assert_every_route("count_lines", path, {}, {"lines": 0})
    await assert_every_route("count_words", path, {}, {"words": 0})
    await assert_every_route("file_size", path, {}, {"bytes": 0})
    await assert_every_route(
        "search_pattern", path, {"pattern": "x"}, {"matches": 0, "matching_lines": 0}
    )


@pytest.mark.parametrize(
    ("data", "lines"),
    [(b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n", 2), (b"a\r\nb\r\n", 2), (b"a\rb\r", 1)],
)
async def test_count_lines_counts_newlines_plus_a_final_unterminated_line_like_wc(
    tmp_path: Path, data: bytes, lines: int
) -> None:
    path = write(tmp_path, data)
    await assert_every_route("count_lines", path, {}, {"lines": lines}, chunks=(1, 4096))
    wc_lines = int(tool_output("wc", "-l", str(path)).split()[0])
    assert lines == wc_lines + int(not data.endswith(b"\n"))


async def test_count_words_splits_on_unicode_whitespace_like_str_split(tmp_path: Path) -> None:
    data = "a\xa0b\u3000c\x1cd\x1de\x1ef\x1fg\x85h\u2028i\u200bj\u2003k".encode()
    path = write(tmp_path, data)
    # \u200b (zero-width space) is not whitespace to str.split(); bytes.split() would
    # see only one word here.
    await assert_every_route("count_words", path, {}, {"words": 10})


async def test_count_words_treats_invalid_utf8_as_replacement_characters(tmp_path: Path) -> None:
    # A raw \x85 or \xa0 byte is invalid UTF-8 (U+FFFD), not whitespace.
    data = b"a\x85b \xa0 c\xe2\x82 \xff\n\xf0\x9f\x98"
    path = write(tmp_path, data)
    await assert_every_route("count_words", path, {}, {"words": 5})
    assert expected_words(data) == 5


async def test_multibyte_characters_straddling_chunks_decode_once(tmp_path: Path) -> None:
    path = write(tmp_path, ("😀€é" * 20 + " 日本\u3000語 ").encode())
    await assert_every_route("count_words", path, {}, {"words": 3})
    none = {"matches": 0, "matching_lines": 0}
    twenty = {"matches": 20, "matching_lines": 1}
    await assert_every_route("search_pattern", path, {"pattern": "😀€é"}, twenty)
    await assert_every_route("search_pattern", path, {"pattern": "\ufffd"}, none)


# --- search_pattern semantics ------------------------------------------------------------


async def test_search_counts_every_match_but_each_matching_line_once(tmp_path: Path) -> None:
    path = write(tmp_path, b"ERROR and ERROR\nok\nFATAL\n")
    want = {"matches": 3, "matching_lines": 2}
    await assert_every_route("search_pattern", path, {"pattern": "ERROR|FATAL"}, want)


async def test_search_matches_never_span_lines(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\nb\na  b\na\tb\n")
    for pattern, matches in ((r"a\s+b", 2), (r"a[^x]b", 1), (r"\n", 0)):
        want = {"matches": matches, "matching_lines": matches}
        await assert_every_route("search_pattern", path, {"pattern": pattern}, want)


async def test_search_lookarounds_and_string_anchors_see_only_their_own_line(
    tmp_path: Path,
) -> None:
    data = b"a\nb\na b\nxb\nb\n"
    path = write(tmp_path, data)
    for pattern in (r"(?<=\s)b", r"(?<!x)b", r"a(?=\s)", r"b(?!\n)", r"\Ab", r"b\Z"):
        want = expected_search(data, pattern)
        await assert_every_route("search_pattern", path, {"pattern": pattern}, want)
    assert expected_search(data, r"(?<=\s)b") == {"matches": 1, "matching_lines": 1}


async def test_search_caret_and_dollar_anchor_at_each_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"ERROR x ERROR\nx ERROR\nERROR\r\nERROR")
    # The \r of a CRLF line is part of the line, so ERROR$ does not match it.
    for pattern, n in (("^ERROR", 3), ("ERROR$", 3), ("^ERROR$", 1)):
        want = {"matches": n, "matching_lines": n}
        await assert_every_route("search_pattern", path, {"pattern": pattern}, want)


async def test_search_ignore_case_matches_any_letter_case(tmp_path: Path) -> None:
    path = write(tmp_path, b"Error\nERROR\nerror\nwarning\n")
    one, three = {"matches": 1, "matching_lines": 1}, {"matches": 3, "matching_lines": 3}
    await assert_every_route("search_pattern", path, {"pattern": "error"}, one)
    await assert_every_route(
        "search_pattern", path, {"pattern": "error", "ignore_case": True}, three
    )


@pytest.mark.parametrize(
    ("pattern", "ignore_case", "grep_args"),
    [
        ("ERROR|FATAL", False, ["-E", "ERROR|FATAL"]),
        ("error", True, ["-i", "error"]),
        ("^[a-z]+$", False, ["-E", "^[a-z]+$"]),
        (r"\d+", False, ["-E", "[0-9]+"]),
    ],
)
async def test_search_matching_lines_agree_with_grep_c(
    tmp_path: Path, pattern: str, ignore_case: bool, grep_args: list[str]
) -> None:
    rng = random.Random(7)
    words = ["ERROR", "error", "FATAL", "ok", "x1", "42", "abc", " ", "\t"]
    lines = ["".join(rng.choice(words) for _ in range(rng.randrange(4))) for _ in range(300)]
    data = "\n".join(lines).encode()
    path = write(tmp_path, data)
    c_locale = {**os.environ, "LC_ALL": "C"}
    grep_count = int(tool_output("grep", "-c", *grep_args, str(path), env=c_locale))
    want = expected_search(data, pattern, ignore_case=ignore_case)
    assert want["matching_lines"] == grep_count
    raw = {"pattern": pattern, "ignore_case": ignore_case}
    await assert_every_route("search_pattern", path, raw, want, chunks=(7, 4096))


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
def test_optimised_search_equals_the_reference_and_python_for_every_kind_of_pattern(
    tmp_path: Path, data: bytes
) -> None:
    path = write(tmp_path, data * 3)
    for pattern, ignore_case in PATTERNS:
        want = expected_search(data * 3, pattern, ignore_case=ignore_case)
        for chunk in (1, 4, 4096):
            optimised, reference = searches(path, pattern, ignore_case, chunk)
            assert optimised == reference == want, (pattern, ignore_case, chunk)


def test_dense_literals_give_the_prefilter_up_with_the_same_counts(tmp_path: Path) -> None:
    """A literal on most lines: the scan falls back to searching whole blocks."""
    data = b"ERROR x\n" * 5000 + b"FATAL ERROR\n" * 100
    path = write(tmp_path, data)
    for pattern in ("ERROR", "ERROR|FATAL", "ERROR x"):
        optimised, reference = searches(path, pattern, False, 4096)
        assert optimised == reference == expected_search(data, pattern), pattern


_PIECES = [
    *b"a b ab ERROR error FATAL ERR OR x1".split(),
    *" |\t|\n|\n|\r|\r\n|\x1c|\xa0|\u3000|\x85".encode().split(b"|"),  # whitespace of all sorts
    *"é|€|😀".encode().split(b"|"),  # multi-byte characters
    *b"\xff|\x80|\xe2\x82|\xf0\x9f|\xc3".split(b"|"),  # invalid UTF-8
]
_RANDOM_PATTERNS = [(p, False) for p in ("a", "ab|ba", r"a\s+b", r"\s\w", "^a", "b$")]
_RANDOM_PATTERNS += [(p, False) for p in ("(?<=a)b", "(?<!a)b", "é+|€", "error")]
_RANDOM_PATTERNS += [("error", True), ("a", True), *PATTERNS]


def test_random_inputs_agree_with_the_oracles_and_the_reference_across_chunk_sizes(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261128)
    path = tmp_path / "random.bin"
    for case in range(600):
        data = b"".join(rng.choice(_PIECES) for _ in range(rng.randrange(40)))
        path.write_bytes(data)
        chunk = rng.choice(CHUNK_SIZES)
        tuning = Tuning(chunk_bytes=chunk)
        context = f"case {case}: {data!r}, chunk {chunk}"
        for kernel, action, raw in (
            (LINES, "count_lines", {}),
            (WORDS, "count_words", {}),
            (CHECKSUM, "checksum", {"algorithm": "md5"}),
        ):
            got, _ = scan_file(kernel, str(path), raw, tuning)
            assert got == expected(action, raw, data), context
        pattern, ignore_case = rng.choice(_RANDOM_PATTERNS)
        optimised, reference = searches(path, pattern, ignore_case, chunk)
        want = expected_search(data, pattern, ignore_case=ignore_case)
        assert optimised == reference == want, f"{context}, pattern {pattern!r}"


# --- lines over the bound ----------------------------------------------------------------


async def test_search_fails_with_line_too_long_whatever_the_chunk_size(tmp_path: Path) -> None:
    """A line of max_line_bytes passes; one byte more fails, wherever it is."""
    tuning = Tuning(max_line_bytes=10)
    options: dict[str, Any] = {
        "chunks": (*CHUNK_SIZES, 1 << 20),
        "process_chunks": (1, 7, 1 << 20),
        "tuning": tuning,
        "with_action": False,
    }
    ok = write(tmp_path, b"short\n0123456789\n\n0123456789", "ok.txt")
    two = {"matches": 2, "matching_lines": 2}
    await assert_every_route("search_pattern", ok, {"pattern": "0"}, two, **options)
    cases = {
        "first.txt": b"01234567890\nshort\n",
        "middle.txt": b"short\n01234567890\nshort\n",
        "last.txt": b"short\n01234567890",
    }
    for name, data in cases.items():
        path = write(tmp_path, data, name)
        too_long = ("LineTooLong", f"{path}: a line is longer than 10 bytes")
        await assert_every_route("search_pattern", path, {"pattern": "short"}, too_long, **options)


async def test_a_long_line_is_exact_for_every_builtin_but_search(tmp_path: Path) -> None:
    """Only search_pattern holds a line in memory (bounded by max_line_bytes); the
    others stream a line of any length."""
    data = ("wörd\u3000" * 500).encode() + b"end"
    path = write(tmp_path, data)
    tuning = Tuning(max_line_bytes=16)
    for action, raw in CASES[:5]:
        want = expected(action, raw, data)
        await assert_every_route(action, path, raw, want, chunks=(7,), tuning=tuning)
    too_long = ("LineTooLong", f"{path}: a line is longer than 16 bytes")
    await assert_every_route(
        "search_pattern",
        path,
        {"pattern": "end"},
        too_long,
        chunks=(7,),
        tuning=tuning,
        with_action=False,
    )


# --- checksum ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(get_args(HashAlgorithm)))
async def test_checksum_equals_hashlib_for_every_algorithm(tmp_path: Path, algorithm: str) -> None:
    data = bytes(range(256)) * 5
    path = write(tmp_path, data)
    want = {"algorithm": algorithm, "digest": hashlib.new(algorithm, data).hexdigest()}
    await assert_every_route("checksum", path, {"algorithm": algorithm}, want, chunks=(7,))


async def test_checksum_sha256_equals_sha256sum(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLES["multibyte"] * 1000)
    digest = tool_output("sha256sum", str(path)).split()[0]
    want = {"algorithm": "sha256", "digest": digest}
    await assert_every_route("checksum", path, {}, want, chunks=(4096,), process_chunks=(4096,))


# --- regex plans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "flags", "byte_safe", "literals", "exact"),
    [
        ("ERROR", 0, True, (b"ERROR",), True),
        ("ERROR|FATAL", 0, True, (b"ERROR", b"FATAL"), True),
        ("ERR|ERROR", 0, True, (b"ERR",), False),  # one inside the other: not exact
        ("ab|ba", 0, True, (b"ab", b"ba"), False),  # they can overlap: not exact
        ("[A-Z]+ [0-9]+", 0, True, (b" ",), False),
        (r"user=\d+", 0, False, (b"user=",), False),  # \d is Unicode in str patterns
        (r"\w+", 0, False, (), False),
        (r"\bERROR", 0, False, (b"ERROR",), False),
        (".RROR", 0, False, (b"RROR",), False),
        ("[^x]RROR", 0, False, (b"RROR",), False),
        ("é+", 0, False, ("é".encode(),), False),
        ("\\xe9", 0, False, ("é".encode(),), True),  # \xe9 is é in a str pattern
        ("error", re.IGNORECASE, False, (b"error",), False),  # looked for in every case
        ("é", re.IGNORECASE, False, (), False),  # non-ASCII letters fold too many ways
        ("a(?i:b)", 0, False, (b"a",), False),
        ("x\ufffd", 0, False, (), False),  # invalid bytes decode to U+FFFD
        ("(?:ERROR)?FATAL", 0, True, (b"FATAL",), False),
    ],
)
def test_plans_are_conservative(
    pattern: str, flags: int, byte_safe: bool, literals: tuple[bytes, ...], exact: bool
) -> None:
    plan = regexplan.plan_for(pattern, flags)
    assert (plan.byte_regex is not None) == byte_safe
    assert regexplan.is_byte_safe(pattern, flags) == byte_safe
    assert plan.literals == regexplan.required_literals(pattern, flags) == literals
    assert plan.exact == exact


# --- a whole run, with thresholds at the files' sizes ------------------------------------


def results(report: Report) -> list[tuple[str, str, Any, Any, int]]:
    return [(job.name, job.status, job.result, job.error, job.attempts) for job in report.jobs]


async def awaited(config: BatchConfig) -> list[tuple[str, str, Any, Any, int]]:
    """What each job gives when its action function is awaited (the plain route)."""
    found: list[tuple[str, str, Any, Any, int]] = []
    for job in config.jobs:
        assert job.spec is not None
        assert job.start_error is None
        try:
            result = await job.spec.func(job.path, job.params)
        except Exception as exc:  # noqa: BLE001 - compared, not swallowed
            error = describe_error(exc)  # the report names the input as the config wrote it
            error["message"] = error["message"].replace(str(job.path), job.input)
            found.append((job.name, "failed", None, error, 1))
            continue
        if job.path.is_file():
            assert result == expected(job.action, job.raw_params, job.path.read_bytes()), job.name
        found.append((job.name, "succeeded", result, None, 1))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("chunk", [7, 1 << 20])
async def test_a_run_reports_what_the_action_functions_give_at_every_threshold(
    tmp_path: Path, chunk: int, cpus: int
) -> None:
    """Small and large files (batched, streamed, in worker processes), missing ones,
    a directory and a FIFO, interleaved, every built-in."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k, (name, sample) in enumerate(SAMPLES.items()):
        for size, data in zip(SIZES, cut_sizes(sample), strict=True):
            (folder / f"{k:02d}-{name}-{size}.txt").write_bytes(data)
    (folder / "zz-dir.txt").mkdir()
    os.mkfifo(folder / "zz-fifo.txt")
    jobs: list[dict[str, Any]] = []
    for n, (action, raw) in enumerate(CASES):
        common = {"action": action, "params": raw}
        jobs.append({"name": f"{n}-{action}", "input": "in/*.txt", **common})
        jobs.append({"name": f"{n}-{action}-missing", "input": "in/none", **common})
        jobs.append({"name": f"{n}-{action}-fifo", "input": "in/zz-fifo.txt", **common})
        jobs.append({"name": f"{n}-{action}-dir", "input": "in/zz-dir.txt", **common})
    config = load(tmp_path, ActionRegistry(builtin_specs()), jobs)
    tuning = Tuning(chunk_bytes=chunk, small_file_bytes=THRESHOLD, process_min_bytes=2 * THRESHOLD)
    with anyio.fail_after(60):
        report = await run_batch(
            config, max_concurrency=3, executor=LocalExecutor(tuning, cpus=cpus)
        )
    assert results(report) == await awaited(config)
    assert all(job.duration_ms is not None for job in report.jobs)
    assert {job.status for job in report.jobs} == {"succeeded", "failed"}


class Where:
    """A kernel's scanner that says where it ran: process, thread, and how many
    pieces it was fed. Module-level, so that a worker process can import it."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._pieces = 0
        self._thread = threading.current_thread().name

    def update(self, data: bytes | bytearray) -> None:
        self._pieces += 1
        self._thread = threading.current_thread().name

    def result(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "thread": self._thread, "pieces": self._pieces}


async def _not_awaited(path: Path, params: Any) -> dict[str, Any]:
    """Runs its kernel."""
    raise AssertionError("the local executor runs the kernel, not this")


WHERE = {
    "gil": Kernel(Where),
    "free": Kernel(Where, releases_gil=True),
    "isolated": Kernel(Where, isolated=True),
}


def expected_route(kind: str, size: int, tuning: Tuning, cpus: int) -> tuple[str, int]:
    """(where, pieces fed) by the thresholds: up to small_file_bytes and chunk_bytes,
    one whole read in a batch's daemon thread; bigger, streamed in chunks; from
    process_min_bytes on, a kernel holding the GIL in a worker process when there
    are two cores; a GIL-free kernel's chunks in daemon threads; an isolated kernel
    always in a worker process."""
    pieces = math.ceil(size / tuning.chunk_bytes)
    if kind == "isolated":
        return "process", pieces
    if size <= min(tuning.small_file_bytes, tuning.chunk_bytes):
        return "daemon thread", 1
    if kind == "free":
        return "daemon thread", pieces
    if size >= tuning.process_min_bytes and cpus > 1:
        return "process", pieces
    return "event loop", pieces


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("chunk", [32, 8])
async def test_the_local_executor_routes_each_file_by_the_tuning_thresholds(
    tmp_path: Path, chunk: int, cpus: int
) -> None:
    registry = ActionRegistry(
        ActionSpec(kind, _not_awaited, origin="tests", kernel=kernel)
        for kind, kernel in WHERE.items()
    )
    tuning = Tuning(chunk_bytes=chunk, small_file_bytes=16, process_min_bytes=64)
    sizes = (0, 7, 8, 9, 15, 16, 17, 63, 64, 65)
    for size in sizes:
        write(tmp_path, b"x" * size, f"{size}.txt")
    jobs = [
        {"name": f"{kind}-{size}", "action": kind, "input": f"{size}.txt"}
        for kind in WHERE
        for size in sizes
    ]
    config = load(tmp_path, registry, jobs)
    report = await run_batch(config, max_concurrency=2, executor=LocalExecutor(tuning, cpus=cpus))
    loop_thread = threading.current_thread().name

    def where(result: dict[str, Any] | None) -> tuple[str, int]:
        assert result is not None
        if result["pid"] != os.getpid():
            return "process", result["pieces"]
        assert result["thread"] in (loop_thread, "asyncbatch-io"), result
        place = "event loop" if result["thread"] == loop_thread else "daemon thread"
        return place, result["pieces"]

    assert {job.name: where(job.result) for job in report.jobs} == {
        f"{kind}-{size}": expected_route(kind, size, tuning, cpus)
        for kind in WHERE
        for size in sizes
    }


class Pieces:
    """A scanner that returns the pieces it was fed (copies, as the contract says)."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._pieces: list[str] = []

    def update(self, data: bytes | bytearray) -> None:
        self._pieces.append(bytes(data).decode())

    def result(self) -> dict[str, Any]:
        return {"pieces": self._pieces}


async def test_streaming_routes_feed_the_scanner_chunk_bytes_at_a_time(tmp_path: Path) -> None:
    path = write(tmp_path, b"0123456789")
    kernel, tuning = Kernel(Pieces), Tuning(chunk_bytes=3)
    want = {"pieces": ["012", "345", "678", "9"]}
    scans = [
        scan_file(kernel, str(path), {}, tuning),
        await stream_file(kernel, path, {}, tuning),
        await scan_in_process(kernel, path, {}, tuning),
        await scan_in_thread(kernel, path, {}, tuning),
        await stream_file(Kernel(Pieces, releases_gil=True), path, {}, tuning),
    ]
    assert [result for result, _ in scans] == [want] * 5
    assert [used.read_bytes for _, used in scans] == [10] * 5
    at_the_limit = Tuning(chunk_bytes=10, small_file_bytes=10)
    whole = scan_small_file(kernel, str(path), {}, at_the_limit, None)
    assert isinstance(whole, tuple)
    assert whole[0] == {"pieces": ["0123456789"]}
    assert whole[1].read_bytes == 10


def test_a_file_over_small_file_bytes_or_chunk_bytes_is_not_read_whole(tmp_path: Path) -> None:
    """scan_small_file gives the size instead (the file is worth streaming); a kernel
    that reads nothing works from the size at any size."""
    path = write(tmp_path, b"x" * 17)
    kernel = Kernel(Pieces)
    assert plain(scan_small_file(kernel, str(path), {}, Tuning(small_file_bytes=17), None)) == {
        "pieces": ["x" * 17]
    }
    assert scan_small_file(kernel, str(path), {}, Tuning(small_file_bytes=16), None) == 17
    assert scan_small_file(kernel, str(path), {}, Tuning(chunk_bytes=16), None) == 17
    sized = scan_small_file(SIZE, str(path), {}, Tuning(small_file_bytes=1), None)
    assert plain(sized) == {"bytes": 17}
    assert isinstance(sized, tuple)
    assert sized[1].read_bytes == 0  # a size is not a read


# --- small-file batches -------------------------------------------------------------------


class Recorded:
    """Kernels whose scanners count lines and note the files they scanned; a scan
    of a file named in ``stuck`` blocks until ``release`` is set (as a read on a
    hung mount would), one named in ``slow`` takes ``hold`` seconds."""

    def __init__(self, *, stuck: str = "", slow: str = "", hold: float = 0.0) -> None:
        self.release = threading.Event()
        self.scanned: list[str] = []
        recorded = self

        class Scan(LineCount):
            def __init__(
                self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning
            ) -> None:
                super().__init__(path, size, params, tuning)
                self._name = Path(path).name
                recorded.scanned.append(self._name)

            def update(self, data: bytes | bytearray) -> None:
                if self._name == stuck:
                    recorded.release.wait(30)
                if self._name == slow:
                    time.sleep(hold)
                super().update(data)

        self.kernel = Kernel(Scan)
        self.spec = ActionSpec("recorded", _not_awaited, origin="tests", kernel=self.kernel)


@pytest.fixture
def six_files(tmp_path: Path) -> list[Path]:
    return [write(tmp_path, b"a\nb\n", f"f{i}.txt") for i in range(6)]


def done_of(batch: Batch) -> list[tuple[int, Any, str | None]]:
    """The jobs the batch reported done, in the order it reported them."""
    assert all(done.started <= done.ended for done in batch.done)
    return [
        (d.position, d.result, None if d.error is None else type(d.error).__name__)
        for d in batch.done
    ]


async def test_a_stuck_job_in_a_batch_times_out_and_the_jobs_after_it_are_not_started(
    six_files: list[Path],
) -> None:
    recorded = Recorded(stuck="f2.txt")
    jobs = [
        SmallJob(recorded.kernel, str(path), {}, 0.2 if i == 2 else None)
        for i, path in enumerate(six_files)
    ]
    batch = Batch(jobs, Tuning())
    try:
        with anyio.fail_after(10):
            await batch.run()
    finally:
        recorded.release.set()
    assert done_of(batch) == [(0, {"lines": 2}, None), (1, {"lines": 2}, None)]
    assert batch.timed_out is not None
    assert batch.timed_out[0] == 2
    assert (batch.large, batch.not_started) == (None, range(3, 6))
    # Shown as running while it waited (or not, if the deadline came first), and
    # when it really started.
    assert set(batch.started) <= {batch.timed_out}


async def test_each_job_in_a_batch_keeps_its_own_timeout(six_files: list[Path]) -> None:
    """A slow job with a long timeout is not cut short by the short timeout of
    the job before it."""
    recorded = Recorded(slow="f1.txt", hold=0.3)
    timeouts = (0.05, 5.0, 0.05)
    jobs = [
        SmallJob(recorded.kernel, str(path), {}, t)
        for path, t in zip(six_files[:3], timeouts, strict=True)
    ]
    batch = Batch(jobs, Tuning())
    with anyio.fail_after(10):
        await batch.run()
    assert done_of(batch) == [(i, {"lines": 2}, None) for i in range(3)]
    assert (batch.timed_out, batch.large, batch.not_started) == (None, None, range(3, 3))


async def test_a_cancelled_batch_reports_the_job_it_was_on_as_started(
    six_files: list[Path],
) -> None:
    recorded = Recorded(stuck="f1.txt")
    batch = Batch([SmallJob(recorded.kernel, str(path), {}, None) for path in six_files[:3]])
    try:
        with anyio.move_on_after(0.2) as scope:
            await batch.run()
    finally:
        recorded.release.set()
    assert scope.cancelled_caught
    assert done_of(batch) == [(0, {"lines": 2}, None)]
    assert [position for position, _ in batch.started] == [1]
    assert batch.done[0].ended <= batch.started[0][1]
    assert (batch.timed_out, batch.large, batch.not_started) == (None, None, range(2, 3))


async def test_a_stuck_job_in_a_run_times_out_and_the_others_run(
    six_files: list[Path], tmp_path: Path
) -> None:
    recorded = Recorded(stuck="f2.txt")
    config = load(
        tmp_path,
        ActionRegistry([recorded.spec]),
        [{"name": "lines", "action": "recorded", "input": "f*.txt", "timeout": 0.2}],
    )
    try:
        with anyio.fail_after(10):
            report = await run_batch(config, max_concurrency=1)
    finally:
        recorded.release.set()
    jobs = by_name(report)
    stuck = jobs.pop("lines[f2.txt]")
    assert (stuck.status, stuck.error, stuck.attempts) == (
        "failed",
        {"type": "Timeout", "message": "timed out after 0.2 s"},
        1,
    )
    assert {(job.status, str(job.result), job.attempts) for job in jobs.values()} == {
        ("succeeded", "{'lines': 2}", 1)
    }


@pytest.mark.parametrize("stop_on_error", [True, False])
async def test_stop_on_error_starts_nothing_after_a_failed_job(
    six_files: list[Path], tmp_path: Path, stop_on_error: bool
) -> None:
    recorded = Recorded()
    paths = [six_files[0], tmp_path / "missing.txt", *six_files[1:3]]
    jobs = [SmallJob(recorded.kernel, str(path), {}, None) for path in paths]
    batch = await Batch(jobs, Tuning(), stop_on_error=stop_on_error).run()
    ran = done_of(batch)
    assert ran[:2] == [(0, {"lines": 2}, None), (1, None, "FileNotFoundError")]
    if stop_on_error:
        assert (ran[2:], batch.not_started, recorded.scanned) == ([], range(2, 4), ["f0.txt"])
    else:
        assert ran[2:] == [(2, {"lines": 2}, None), (3, {"lines": 2}, None)]
        assert batch.not_started == range(4, 4)
    assert (batch.timed_out, batch.large) == (None, None)


async def test_a_file_too_big_for_a_batch_is_reported_large_and_nothing_read(
    tmp_path: Path,
) -> None:
    recorded = Recorded()
    small = write(tmp_path, b"a\n" * 8, "small.txt")
    big = write(tmp_path, b"a\n" * 9, "big.txt")
    tuning = Tuning(small_file_bytes=16)
    jobs = [SmallJob(recorded.kernel, str(path), {}, None) for path in (small, big, small)]
    batch = await Batch(jobs, tuning).run()
    assert done_of(batch) == [(0, {"lines": 8}, None)]
    assert (batch.large, batch.not_started, batch.timed_out) == ((1, 18), range(2, 3), None)
    assert recorded.scanned == ["small.txt"]
    sized = await Batch([SmallJob(SIZE, str(big), {}, None)], tuning).run()
    assert (done_of(sized), sized.large) == ([(0, {"bytes": 18}, None)], None)


async def test_fail_fast_stops_a_batch_at_its_first_failure(tmp_path: Path) -> None:
    write(tmp_path, b"x\n", "a.txt")
    jobs = [
        {"name": "ok", "action": "count_lines", "input": "a.txt"},
        {"name": "missing", "action": "count_lines", "input": "none.txt"},
        *({"name": f"after{i}", "action": "count_lines", "input": "a.txt"} for i in range(5)),
    ]
    config = load(tmp_path, ActionRegistry(builtin_specs()), jobs)
    report = await run_batch(config, max_concurrency=1, halt=Halt.failures(1))
    assert [job.status for job in report.jobs] == ["succeeded", "failed"] + ["cancelled"] * 5


async def test_failed_jobs_in_a_batch_are_retried(tmp_path: Path) -> None:
    jobs = [
        {"name": f"m{i}", "action": "file_size", "input": f"none{i}", "retries": 1}
        for i in range(3)
    ]
    config = load(tmp_path, ActionRegistry(builtin_specs()), jobs)
    report = await run_batch(config, max_concurrency=2, backoff=Backoff(start=0.001))
    assert [(job.status, job.attempts) for job in report.jobs] == [("failed", 2)] * 3
    assert report.jobs[0].error == {"type": "FileNotFoundError", "message": "none0: no such file"}


# --- a file swapped after its stat -------------------------------------------------------

_ON_OPEN: dict[str, Callable[[], None]] = {}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _ON_OPEN and isinstance(args[0], str):
        action = _ON_OPEN.pop(args[0], None)
        if action is not None:
            action()


sys.addaudithook(_audit)  # once per process; idle unless a test arms it


@contextmanager
def on_open(path: Path, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` just before ``path`` is next opened (by name, in any thread of
    this process): after the route's ``stat``, before its ``open`` (PEP 578 audit
    hooks, a public seam of the interpreter). Fails if no open happened."""
    _ON_OPEN[str(path)] = action
    try:
        yield
    finally:
        missed = _ON_OPEN.pop(str(path), None)
    assert missed is None, f"{path} was never opened"


def swap_for_fifo(path: Path) -> Callable[[], None]:
    def swap() -> None:
        path.unlink()
        os.mkfifo(path)

    return swap


async def test_a_fifo_swapped_in_after_stat_is_refused_on_every_route(tmp_path: Path) -> None:
    """The O_NONBLOCK open and its fstat re-check: the open never blocks, the
    descriptor is refused."""
    path = tmp_path / "input.txt"
    name, tuning = str(path), Tuning()
    spec = BUILTIN["count_lines"]
    job = {"name": "lines", "action": "count_lines", "input": "input.txt"}
    config = load(tmp_path, ActionRegistry(builtin_specs()), [job])

    async def in_a_run() -> Outcome:
        (result,) = (await run_batch(config)).jobs
        assert result.error is not None, result
        return result.error["type"], result.error["message"]

    calls: dict[str, Callable[[], Awaitable[Scanned | Outcome]]] = {
        "action": partial(builtin_result, spec, path, spec.validate_params({})),
        "stream_file": partial(stream_file, LINES, path, {}, tuning),
        "SmallFiles": partial(in_a_batch, LINES, path, {}, tuning),
        "run_batch": in_a_run,
    }
    sync_calls: dict[str, Callable[[], Scanned | Outcome]] = {
        "scan_file": partial(scan_file, LINES, name, {}, tuning),
        "scan_small_file": partial(scan_small_file, LINES, name, {}, tuning, None),
    }
    found: dict[str, Outcome] = {}
    for route in (*calls, *sync_calls):
        path.unlink(missing_ok=True)
        path.write_text("regular at stat time\n")
        with anyio.fail_after(5), on_open(path, swap_for_fifo(path)):
            if route in calls:
                found[route] = await caught_async(calls[route])
            else:
                found[route] = caught(sync_calls[route])
    refused = ("NotARegularFile", f"{path}: is a FIFO, not a regular file")
    assert found == {
        **dict.fromkeys(found, refused),
        # the report names the input as the config wrote it
        "run_batch": ("NotARegularFile", "input.txt: is a FIFO, not a regular file"),
    }
    with pytest.raises(NotARegularFile, match="is a FIFO"):
        open_regular(name)  # the seam itself, on the FIFO left in place: at once


async def test_a_small_file_that_grew_after_stat_is_streamed_whole_not_half_read(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, b"a\n" * 4)

    def grow() -> None:
        with path.open("ab") as file:
            file.write(b"b\n" * 20)

    tuning = Tuning(small_file_bytes=16)
    with on_open(path, grow):
        assert scan_small_file(LINES, str(path), {}, tuning, None) == 17
    path.write_bytes(b"a\n" * 4)
    with on_open(path, grow):
        batch = await Batch([SmallJob(LINES, str(path), {}, None)], tuning).run()
    assert (batch.done, batch.large) == ([], (0, 17))
    path.write_bytes(b"a\n" * 4)
    config = load(
        tmp_path,
        ActionRegistry(builtin_specs()),
        [{"name": "lines", "action": "count_lines", "input": "input.txt"}],
    )
    with on_open(path, grow):
        report = await run_batch(config, executor=LocalExecutor(tuning))
    assert [(job.status, job.result) for job in report.jobs] == [("succeeded", {"lines": 24})]


@pytest.mark.parametrize("pattern", [r"\ud800", r"x\udfff|y", r"\udfff+y"])
async def test_a_pattern_naming_a_lone_surrogate_counts_like_python(
    tmp_path: Path, pattern: str
) -> None:
    """A valid ``str`` regex, accepted at config load. Decoded text never holds a
    lone surrogate (invalid bytes, an encoded surrogate too, decode to U+FFFD), so
    that part of the pattern matches nothing: the search must count, not crash."""
    data = b"y\nx y\n\xed\xa0\x80 y\n"
    path = write(tmp_path, data)
    assert BUILTIN["search_pattern"].validate_params({"pattern": pattern}).pattern == pattern
    want = expected_search(data, pattern)
    assert want == (
        {"matches": 3, "matching_lines": 3}
        if "|y" in pattern
        else {"matches": 0, "matching_lines": 0}
    )
    await assert_every_route("search_pattern", path, {"pattern": pattern}, want, chunks=(1, 4096))


async def test_a_scan_in_a_thread_stops_at_its_next_chunk_once_cancelled(tmp_path: Path) -> None:
    """A timeout cannot kill a thread: the scan checks a stop flag between chunks."""
    path = write(tmp_path, b"x" * 1000)
    fed: list[int] = []

    class Slow:
        def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning):
            pass

        def update(self, data: bytes | bytearray) -> None:
            fed.append(len(data))
            time.sleep(0.02)

        def result(self) -> dict[str, Any]:
            return {"chunks": len(fed)}

    with anyio.move_on_after(0.1):
        await scan_in_thread(Kernel(Slow, releases_gil=True), path, {}, Tuning(chunk_bytes=1))
    seen = len(fed)
    await anyio.sleep(0.2)
    assert 0 < seen < 1000
    assert len(fed) <= seen + 1  # the chunk under way when cancelled, then nothing
