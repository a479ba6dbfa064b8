"""Every fast path gives exactly what the plain path gives, on the same files.

The plain path is each built-in action with ``fastpath.ENABLED`` off (aiofiles
streaming, every block of text decoded and searched with the ``str`` pattern). The
fast paths: small files read whole (alone or in a runner batch), big files in
reused buffers or in worker processes, ASCII word counting without decoding, and
``search_pattern`` on raw bytes with a literal prefilter. Thresholds are shrunk so
that files sit right at them, and chunks so that lines, words, multi-byte
characters and matches straddle reads. No timings are asserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncbatch import bulk, kernels, linescan, regexplan
from asyncbatch.actions import _io, fastpath, files, text
from asyncbatch.actions._params import ChecksumParams, NoParams
from asyncbatch.config import load_config
from asyncbatch.errors import NotARegularFile
from asyncbatch.registry import default_registry
from asyncbatch.engine import run_batch

pytestmark = pytest.mark.anyio

SAMPLES: dict[str, bytes] = {
    "empty": b"",
    "one_newline": b"\n",
    "no_final_newline": b"ERROR one\nFATAL two",
    "crlf": b"ERROR a\r\nb FATAL\r\n\r\nfatal\r\n",
    "invalid_utf8": b"ERR\xffOR \xff\xfe ERROR\n\x80FATAL\xc3\n\xe2\x82 x\xf0\x9f\x98",
    "separators": b"a\x1cb\x1dc\x1ed\x1fe\x0bf\x0cg ERROR\tFATAL\r\n",
    "unicode_space": "a\xa0b\u3000c\x85d\u2028e ERROR \u200bFATAL\n".encode(),
    "multibyte": "héllo wörld €uro 😀ERROR\n日本語 FATAL テキスト é\n".encode(),
    "ascii_then_multibyte": b"x" * 15 + "é ERROR€".encode() + b" y\n" * 3,
    "matches_per_line": b"ERROR ERROR FATAL\nok\nERRORERROR\nFATALERROR",
    "literal_inside_invalid": b"\xc3ERROR\xa9 \xe2\x82ERROR \xf0FATAL\n",
}
PATTERNS = [
    ("ERROR", False),
    ("ERROR|FATAL", False),
    ("ERR|ERROR", False),
    (r"E\w+", False),
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
    ("(?i)fatal", False),
    ("(ERROR) \\1", False),
    ("(?:ERROR|FATAL)[a-z ]*", False),
]
THRESHOLD = 16
SIZES = (0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 3 * THRESHOLD)


@pytest.fixture(scope="module", autouse=True)
async def one_event_loop_for_the_module(anyio_backend: str) -> AsyncIterator[None]:
    """One event loop for the module: worker processes start once."""
    yield  # noqa: PT022 - while suspended here, anyio's plugin keeps the loop running


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files of a few bytes sit at the small-file and worker-process thresholds."""
    monkeypatch.setattr(fastpath, "SMALL_FILE_BYTES", THRESHOLD)
    monkeypatch.setattr(fastpath, "PROCESS_MIN_BYTES", 2 * THRESHOLD)


async def run_action(name: str, path: Path, raw: dict[str, Any] | None = None) -> Any:
    spec = default_registry().get(name)
    assert spec is not None
    return await spec.func(path, spec.validate_params(raw or {}))


async def both_paths(
    monkeypatch: pytest.MonkeyPatch, name: str, path: Path, raw: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """(fast, plain) results of one action on one file; an exception is a result."""
    outcomes = []
    for enabled in (True, False):
        monkeypatch.setattr(fastpath, "ENABLED", enabled)
        try:
            outcomes.append(await run_action(name, path, raw))
        except Exception as exc:  # noqa: BLE001 - compared, not swallowed
            outcomes.append((type(exc).__name__, str(exc)))
    monkeypatch.setattr(fastpath, "ENABLED", True)
    return outcomes[0], outcomes[1]


def cut_sizes(data: bytes) -> list[bytes]:
    """``data`` cut or padded to each size of SIZES (multi-byte characters cut too)."""
    return [(data * (size // max(len(data), 1) + 1))[:size] for size in SIZES]


# --- the actions, fast against plain -------------------------------------------------


@pytest.mark.usefixtures("small_thresholds")
@pytest.mark.parametrize("chunk", [3, 7, 1 << 20])
@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
async def test_counts_and_checksums_equal_the_plain_path_at_every_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample: bytes, chunk: int
) -> None:
    monkeypatch.setattr(_io, "CHUNK_SIZE", chunk)
    for k, data in enumerate(cut_sizes(sample)):
        path = tmp_path / f"in{k}.txt"
        path.write_bytes(data)
        for name in ("count_lines", "count_words", "file_size", "checksum"):
            fast, plain = await both_paths(monkeypatch, name, path)
            assert fast == plain, (name, data, chunk)
        fast, plain = await both_paths(monkeypatch, "checksum", path, {"algorithm": "blake2b"})
        assert (
            fast
            == plain
            == {
                "algorithm": "blake2b",
                "digest": hashlib.blake2b(data).hexdigest(),
            }
        )


@pytest.mark.parametrize("chunk", [4, 1 << 20])
@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
async def test_search_equals_the_plain_path_for_every_kind_of_pattern(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample: bytes, chunk: int
) -> None:
    monkeypatch.setattr(_io, "CHUNK_SIZE", chunk)
    path = tmp_path / "in.txt"
    path.write_bytes(sample * 3)
    for pattern, ignore_case in PATTERNS:
        raw = {"pattern": pattern, "ignore_case": ignore_case}
        fast, plain = await both_paths(monkeypatch, "search_pattern", path, raw)
        assert fast == plain, (pattern, sample)


def test_random_inputs_scan_the_same_fast_and_plain(tmp_path: Path) -> None:
    """The scan itself (in this process), on random bytes of every awkward sort."""
    rng = random.Random(5)
    pieces = [b"ERROR", b"FATAL", b"ERR", b"OR", b"x1", b" ", b"\n", b"\r\n", b"\t"]
    pieces += ["é".encode(), "€".encode(), b"\xff", b"\xc3", b"\xe2\x82", b"\x1c"]
    path = tmp_path / "random.bin"
    for case in range(250):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(40)))
        path.write_bytes(data)
        pattern, ignore_case = rng.choice(PATTERNS)
        flags = 2 if ignore_case else 0  # re.IGNORECASE
        chunk = rng.choice([1, 2, 5, 64])
        fast = linescan.scan_file(str(path), pattern, flags, chunk, 1 << 20, fast=True)
        plain = linescan.scan_file(str(path), pattern, flags, chunk, 1 << 20, fast=False)
        assert fast == plain, (case, data, pattern, chunk)


def test_dense_literals_give_the_prefilter_up_with_the_same_counts(tmp_path: Path) -> None:
    """A literal on most lines: the scan falls back to searching whole blocks."""
    path = tmp_path / "dense.txt"
    path.write_bytes(b"ERROR x\n" * 5000 + b"FATAL ERROR\n" * 100)
    for pattern in ("ERROR", "ERROR|FATAL", "ERROR x"):
        fast = linescan.scan_file(str(path), pattern, 0, 4096, 1 << 20, fast=True)
        plain = linescan.scan_file(str(path), pattern, 0, 4096, 1 << 20, fast=False)
        assert fast == plain


def test_word_counter_mixes_ascii_and_decoded_pieces_like_str_split() -> None:
    data = "ab \x1c cd\u3000é ef\x1fgh ".encode() + b"\xe2\x82" + b" ij kl" + "😀 m".encode()
    for cut in range(1, len(data)):
        for step in (1, 2, 3):
            counter = kernels.WordCounter()
            pieces = [data[:cut]] + [data[i : i + step] for i in range(cut, len(data), step)]
            for piece in pieces:
                counter.feed(piece)
            assert counter.result() == len(data.decode("utf-8", "replace").split()), (cut, step)


# --- regex plans ---------------------------------------------------------------------


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
        ("error", 2, False, (), False),  # IGNORECASE: Unicode case folding
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
    assert plan.literals == literals
    assert plan.exact == exact


# --- batches of small jobs in the runner ---------------------------------------------


def _batch_config(tmp_path: Path, jobs: list[dict[str, Any]], **top: Any) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"jobs": jobs, **top}))
    return path


def _results(report: Any) -> list[tuple[str, str, Any, Any, int]]:
    return [(job.name, job.status, job.result, job.error, job.attempts) for job in report.jobs]


@pytest.mark.usefixtures("small_thresholds")
async def test_a_batch_reports_exactly_what_the_plain_path_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small and large files, missing ones, a directory and a FIFO, interleaved."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k, (name, sample) in enumerate(SAMPLES.items()):
        for size in SIZES:
            (folder / f"{k:02d}-{name}-{size}.txt").write_bytes((sample * 20)[:size])
    (folder / "zz-dir.txt").mkdir()
    os.mkfifo(folder / "zz-fifo.txt")
    jobs: list[dict[str, Any]] = []
    for action in ("count_lines", "count_words", "file_size", "checksum"):
        jobs.append({"name": action, "action": action, "input": "in/*.txt"})
        jobs.append({"name": f"{action}-missing", "action": action, "input": "in/none"})
        jobs.append({"name": f"{action}-fifo", "action": action, "input": "in/zz-fifo.txt"})
        jobs.append({"name": f"{action}-dir", "action": action, "input": "in/zz-dir.txt"})
    config = _batch_config(tmp_path, jobs)
    reports = []
    for enabled in (True, False):
        monkeypatch.setattr(fastpath, "ENABLED", enabled)
        with anyio.fail_after(30):
            reports.append(await run_batch(load_config(config), max_concurrency=3))
    fast, plain = reports
    assert _results(fast) == _results(plain)
    assert all(job.duration_ms is not None for job in fast.jobs)
    statuses = {job.status for job in fast.jobs}
    assert statuses == {"succeeded", "failed"}


async def test_a_stuck_job_in_a_batch_times_out_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text("a\nb\n")
    release = threading.Event()
    real_small_job = kernels.small_job

    def stuck_on_f2(name: str, path: str, params: Any, limit: int, root: str | None = None) -> Any:
        if path.endswith("f2.txt"):
            release.wait(30)  # a read that never returns, as on a hung mount
        return real_small_job(name, path, params, limit, root)

    monkeypatch.setattr(kernels, "small_job", stuck_on_f2)
    config = _batch_config(
        tmp_path, [{"name": "lines", "action": "count_lines", "input": "f*.txt", "timeout": 0.2}]
    )
    try:
        with anyio.fail_after(20):
            report = await run_batch(load_config(config), max_concurrency=1)
    finally:
        release.set()
    by_name = {job.name: job for job in report.jobs}
    stuck = by_name["lines[f2.txt]"]
    assert (stuck.status, stuck.error, stuck.attempts) == (
        "failed",
        {"type": "Timeout", "message": "timed out after 0.2 s"},
        1,
    )
    others = [job for name, job in by_name.items() if name != "lines[f2.txt]"]
    assert {(job.status, json.dumps(job.result)) for job in others} == {
        ("succeeded", '{"lines": 2}')
    }


async def test_fail_fast_stops_a_batch_at_its_first_failure(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    jobs = [
        {"name": "ok", "action": "count_lines", "input": "a.txt"},
        {"name": "missing", "action": "count_lines", "input": "none.txt"},
        *({"name": f"after{i}", "action": "count_lines", "input": "a.txt"} for i in range(5)),
    ]
    config = _batch_config(tmp_path, jobs)
    report = await run_batch(load_config(config), max_concurrency=1, max_failures=1)
    statuses = [job.status for job in report.jobs]
    assert statuses == ["succeeded", "failed"] + ["cancelled"] * 5


async def test_failed_jobs_in_a_batch_are_retried(tmp_path: Path) -> None:
    config = _batch_config(
        tmp_path,
        [
            {"name": f"m{i}", "action": "file_size", "input": f"none{i}", "retries": 1}
            for i in range(3)
        ],
    )
    report = await run_batch(load_config(config), max_concurrency=2)
    assert [(job.status, job.attempts) for job in report.jobs] == [("failed", 2)] * 3
    assert report.jobs[0].error == {"type": "FileNotFoundError", "message": "none0: no such file"}


async def test_the_fast_path_refuses_a_fifo_swapped_in_after_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The O_NONBLOCK open and its fstat re-check guard the one-hop read too."""
    path = tmp_path / "input.txt"
    path.write_text("regular at stat time\n")
    real_stat = kernels.stat_regular

    def stat_then_swap(target: str, root: str | None = None) -> os.stat_result:
        result = real_stat(target, root)
        os.unlink(target)
        os.mkfifo(target)
        return result

    monkeypatch.setattr(kernels, "stat_regular", stat_then_swap)
    with anyio.fail_after(5), pytest.raises(NotARegularFile, match="FIFO"):
        await text.count_lines(path, NoParams())
    path.unlink()
    path.write_text("again\n")
    with pytest.raises(NotARegularFile, match="FIFO"):
        kernels.small_job("count_lines", str(path), None, 1 << 20)


@pytest.mark.usefixtures("small_thresholds")
async def test_big_files_count_in_a_worker_process_like_the_plain_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    data = ("wörd ERROR\u3000x\n" * 50).encode() + b"\xe2\x82 end"
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    for name in ("count_lines", "count_words"):
        fast, plain = await both_paths(monkeypatch, name, path)
        assert fast == plain
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile):
        await files.checksum(fifo, ChecksumParams())


# --- config loading shortcuts ----------------------------------------------------------


def test_bulk_params_are_validated_once_per_distinct_value_and_type() -> None:
    spec = default_registry().get("search_pattern")
    assert spec is not None
    resolver = bulk.Resolver(default_registry(), Path.cwd())
    first = resolver.validate_params(spec, {"pattern": "x", "ignore_case": True})
    assert resolver.validate_params(spec, {"ignore_case": True, "pattern": "x"}) is first
    with pytest.raises(Exception, match="ignore_case"):
        resolver.validate_params(spec, {"pattern": "x", "ignore_case": 1})  # strict: 1 != True
    with pytest.raises(Exception, match="ignore_case"):
        resolver.validate_params(spec, {"pattern": "x", "ignore_case": 1})


def test_a_config_with_errors_is_still_located_job_by_job(tmp_path: Path) -> None:
    from asyncbatch.errors import ConfigError

    jobs: list[dict[str, Any]] = [
        {"name": f"j{i}", "action": "file_size", "input": "x"} for i in range(50)
    ]
    jobs[7] = {"name": "bad", "action": "file_size"}
    jobs[9]["params"] = {"nope": 1}
    config = _batch_config(tmp_path, jobs)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.problems == [
        "jobs[7].input: Field required",
        "jobs[9].params.nope: unknown key (takes none)",
    ]
