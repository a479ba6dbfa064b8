"""The built-in actions on real files, checked against independent oracles: Python on
the same bytes, and coreutils (wc, grep, sha256sum) where they apply."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import anyio
import pydantic
import pytest

from asyncbatch.actions import _io, fastpath, files, text
from asyncbatch.actions._params import ChecksumParams, HashAlgorithm, NoParams
from asyncbatch.actions._params import SearchPatternParams
from asyncbatch.errors import LineTooLong, NotARegularFile
from asyncbatch.registry import ActionSpec, default_registry

pytestmark = pytest.mark.anyio

NO_PARAMS = NoParams()
BUILTINS = ("checksum", "count_lines", "count_words", "file_size", "search_pattern")
CHUNK_SIZES = (1, 2, 3, 7, 64)

SAMPLES: dict[str, bytes] = {
    "empty": b"",
    "one_newline": b"\n",
    "no_final_newline": b"ERROR one\nFATAL two",
    "crlf": b"ERROR a\r\nb FATAL\r\n\r\nfatal\r\n",
    "invalid_utf8": b"ERR\xffOR \xff\xfe ERROR\n\x80FATAL\xc3\n\xe2\x82 x\xf0\x9f\x98",
    "unicode_whitespace": "a\xa0b\u3000c\x1cd\x1fe\x85f ERROR\u2028FATAL\n".encode(),
    "multibyte": "héllo wörld €uro 😀ERROR\n日本語 FATAL テキスト\n".encode(),
    "blank_lines": b"\n\n\nERROR\n\n",
    "two_matches_per_line": b"ERROR ERROR FATAL\nok\nERRORERROR",
}


# --- oracles: what the actions must agree with -------------------------------------


def expected_lines(data: bytes) -> int:
    return data.count(b"\n") + int(bool(data) and not data.endswith(b"\n"))


def expected_words(data: bytes) -> int:
    return len(data.decode("utf-8", "replace").split())


def expected_search(data: bytes, pattern: str, *, ignore_case: bool = False) -> dict[str, int]:
    """Match each line on its own, as the SPEC defines it."""
    regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    lines = data.decode("utf-8", "replace").split("\n")
    per_line = [sum(1 for _ in regex.finditer(line)) for line in lines]
    return {"matches": sum(per_line), "matching_lines": sum(1 for n in per_line if n)}


def tool_output(*argv: str, env: dict[str, str] | None = None) -> str:
    """stdout of a coreutils/grep command, or skip the test when it is not installed."""
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} not installed")
    done = subprocess.run(argv, capture_output=True, check=False, env=env, text=True)
    return done.stdout


# --- helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
async def one_event_loop_for_the_module(anyio_backend: str) -> AsyncIterator[None]:
    """One event loop for all the tests here: search_pattern's worker processes (the
    loop's process pool) then start once, not once per test (~150 ms each)."""
    yield  # noqa: PT022 - while suspended here, anyio's plugin keeps the loop running


@pytest.fixture(params=CHUNK_SIZES)
def chunk_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Tiny reads, so lines, words, characters and matches straddle chunks."""
    size: int = request.param
    monkeypatch.setattr(_io, "CHUNK_SIZE", size)
    return size


def write(tmp_path: Path, data: bytes, name: str = "input.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def search(path: Path, pattern: str, *, ignore_case: bool = False) -> dict[str, Any]:
    params = SearchPatternParams(pattern=pattern, ignore_case=ignore_case)
    return await text.search_pattern(path, params)


async def run_builtin(name: str, path: Path) -> dict[str, Any]:
    """Run built-in ``name`` on ``path`` through the default registry."""
    spec = default_registry().get(name)
    assert spec is not None
    raw = {"pattern": "x"} if name == "search_pattern" else {}
    return await spec.func(path, spec.validate_params(raw))


# --- registration --------------------------------------------------------------------


def test_importing_actions_registers_the_five_builtins_with_params_models() -> None:
    registry = default_registry()
    specs = {name: registry.get(name) for name in BUILTINS}
    assert all(isinstance(spec, ActionSpec) for spec in specs.values())
    models = {name: spec.params for name, spec in specs.items() if spec is not None}
    assert models == {
        "checksum": ChecksumParams,
        "count_lines": NoParams,
        "count_words": NoParams,
        "file_size": NoParams,
        "search_pattern": SearchPatternParams,
    }


def test_every_builtin_and_param_field_has_a_description_for_the_actions_command() -> None:
    registry = default_registry()
    for name in BUILTINS:
        spec = registry.get(name)
        assert spec is not None
        assert spec.description, name
        assert spec.params is not None
        for field_name, field in spec.params.model_fields.items():
            assert field.description, f"{name}.{field_name}"


def test_checksum_accepts_exactly_hashlibs_guaranteed_fixed_length_algorithms() -> None:
    assert set(get_args(HashAlgorithm)) == hashlib.algorithms_guaranteed - {
        "shake_128",
        "shake_256",
    }


async def test_builtins_run_through_the_registry_with_raw_params(tmp_path: Path) -> None:
    path = write(tmp_path, b"one ERROR\ntwo\n")
    registry = default_registry()
    raw: dict[str, dict[str, Any]] = {
        "checksum": {"algorithm": "md5"},
        "search_pattern": {"pattern": "error", "ignore_case": True},
    }
    results = {}
    for name in BUILTINS:
        spec = registry.get(name)
        assert spec is not None
        results[name] = await spec.func(path, spec.validate_params(raw.get(name, {})))
    assert results == {
        "checksum": {"algorithm": "md5", "digest": hashlib.md5(b"one ERROR\ntwo\n").hexdigest()},
        "count_lines": {"lines": 2},
        "count_words": {"words": 3},
        "file_size": {"bytes": 14},
        "search_pattern": {"matches": 1, "matching_lines": 1},
    }
    assert json.loads(json.dumps(results)) == results


# --- _io -----------------------------------------------------------------------------


async def test_iter_chunks_reads_chunk_size_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, b"0123456789")
    monkeypatch.setattr(_io, "CHUNK_SIZE", 3)
    chunks = [chunk async for chunk in _io.iter_chunks(path)]
    assert chunks == [b"012", b"345", b"678", b"9"]


async def test_iter_chunks_refuses_a_fifo_swapped_in_between_stat_and_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the O_NONBLOCK open and the fstat re-check defend against (the
    plain path's seam; test_fastpaths checks the fast path the same way)."""
    monkeypatch.setattr(fastpath, "ENABLED", False)
    path = write(tmp_path, b"regular at stat time\n")
    real_stat_regular = _io.stat_regular

    async def stat_then_swap(target: Path) -> os.stat_result:
        result = await real_stat_regular(target)
        os.unlink(target)
        os.mkfifo(target)
        return result

    monkeypatch.setattr(_io, "stat_regular", stat_then_swap)
    with anyio.fail_after(5), pytest.raises(NotARegularFile, match="FIFO"):
        await text.count_lines(path, NO_PARAMS)


# --- every action on the same samples, every chunk size ------------------------------


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
async def test_line_word_and_match_counts_equal_python_on_the_whole_bytes(
    tmp_path: Path, chunk_size: int, data: bytes
) -> None:
    path = write(tmp_path, data)
    assert await text.count_lines(path, NO_PARAMS) == {"lines": expected_lines(data)}
    assert await text.count_words(path, NO_PARAMS) == {"words": expected_words(data)}
    for pattern in ("ERROR|FATAL", "ERROR", r"\w+", "[^\x00-\x7f]+"):
        assert await search(path, pattern) == expected_search(data, pattern), pattern
    assert await search(path, "fatal", ignore_case=True) == expected_search(
        data, "fatal", ignore_case=True
    )
    assert await files.checksum(path, ChecksumParams()) == {
        "algorithm": "sha256",
        "digest": hashlib.sha256(data).hexdigest(),
    }
    assert await files.file_size(path, NO_PARAMS) == {"bytes": len(data)}


async def test_empty_file_has_no_lines_words_or_matches(tmp_path: Path) -> None:
    path = write(tmp_path, b"")
    assert await text.count_lines(path, NO_PARAMS) == {"lines": 0}
    assert await text.count_words(path, NO_PARAMS) == {"words": 0}
    assert await search(path, "x") == {"matches": 0, "matching_lines": 0}
    assert await files.file_size(path, NO_PARAMS) == {"bytes": 0}


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"a", 1),
        (b"a\n", 1),
        (b"a\nb", 2),
        (b"\n\n", 2),
        (b"a\r\nb\r\n", 2),
        (b"a\rb\r", 1),
    ],
)
async def test_count_lines_counts_newlines_plus_a_final_unterminated_line(
    tmp_path: Path, data: bytes, lines: int
) -> None:
    path = write(tmp_path, data)
    assert await text.count_lines(path, NO_PARAMS) == {"lines": lines}
    wc_lines = int(tool_output("wc", "-l", str(path)).split()[0])
    assert lines == wc_lines + int(not data.endswith(b"\n"))


async def test_count_words_splits_on_unicode_whitespace_like_str_split(
    tmp_path: Path, chunk_size: int
) -> None:
    data = "a\xa0b\u3000c\x1cd\x1de\x1ef\x1fg\x85h\u2028i\u200bj\u2003k".encode()
    path = write(tmp_path, data)
    # \u200b (zero-width space) is not whitespace to str.split(); bytes.split() would
    # see only one word here.
    assert await text.count_words(path, NO_PARAMS) == {"words": 10}


async def test_count_words_treats_invalid_utf8_as_replacement_characters(
    tmp_path: Path, chunk_size: int
) -> None:
    # A raw \x85 or \xa0 byte is invalid UTF-8 (U+FFFD), not whitespace.
    data = b"a\x85b \xa0 c\xe2\x82 \xff\n\xf0\x9f\x98"
    path = write(tmp_path, data)
    assert await text.count_words(path, NO_PARAMS) == {"words": 5}
    assert expected_words(data) == 5


async def test_multibyte_characters_straddling_chunks_decode_once(
    tmp_path: Path, chunk_size: int
) -> None:
    data = ("😀€é" * 20 + " 日本\u3000語 ").encode()
    path = write(tmp_path, data)
    assert await text.count_words(path, NO_PARAMS) == {"words": 3}
    assert await search(path, "😀€é") == {"matches": 20, "matching_lines": 1}
    assert await search(path, "\ufffd") == {"matches": 0, "matching_lines": 0}


# --- search_pattern semantics --------------------------------------------------------


async def test_search_counts_every_match_but_each_matching_line_once(tmp_path: Path) -> None:
    path = write(tmp_path, b"ERROR and ERROR\nok\nFATAL\n")
    assert await search(path, "ERROR|FATAL") == {"matches": 3, "matching_lines": 2}


async def test_search_matches_never_span_lines(tmp_path: Path, chunk_size: int) -> None:
    path = write(tmp_path, b"a\nb\na  b\na\tb\n")
    assert await search(path, r"a\s+b") == {"matches": 2, "matching_lines": 2}
    assert await search(path, r"a[^x]b") == {"matches": 1, "matching_lines": 1}
    assert await search(path, r"\n") == {"matches": 0, "matching_lines": 0}


async def test_search_lookarounds_see_only_their_own_line(tmp_path: Path, chunk_size: int) -> None:
    data = b"a\nb\na b\nxb\nb\n"
    path = write(tmp_path, data)
    for pattern in (r"(?<=\s)b", r"(?<!x)b", r"a(?=\s)", r"b(?!\n)", r"\Ab", r"b\Z"):
        assert await search(path, pattern) == expected_search(data, pattern), pattern
    assert await search(path, r"(?<=\s)b") == {"matches": 1, "matching_lines": 1}


async def test_search_caret_and_dollar_anchor_at_each_line(tmp_path: Path, chunk_size: int) -> None:
    path = write(tmp_path, b"ERROR x ERROR\nx ERROR\nERROR\r\nERROR")
    assert await search(path, "^ERROR") == {"matches": 3, "matching_lines": 3}
    # The \r of a CRLF line is part of the line, so ERROR$ does not match it.
    assert await search(path, "ERROR$") == {"matches": 3, "matching_lines": 3}
    assert await search(path, "^ERROR$") == {"matches": 1, "matching_lines": 1}


async def test_search_ignore_case_matches_any_letter_case(tmp_path: Path) -> None:
    path = write(tmp_path, b"Error\nERROR\nerror\nwarning\n")
    assert await search(path, "error") == {"matches": 1, "matching_lines": 1}
    assert await search(path, "error", ignore_case=True) == {"matches": 3, "matching_lines": 3}


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
    result = await search(path, pattern, ignore_case=ignore_case)
    assert result["matching_lines"] == grep_count
    assert result == expected_search(data, pattern, ignore_case=ignore_case)


async def test_search_fails_with_line_too_long_whatever_the_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(text, "MAX_LINE_BYTES", 10)
    ok = write(tmp_path, b"short\n0123456789\n\n0123456789", "ok.txt")
    cases = {
        "first.txt": b"01234567890\nshort\n",
        "middle.txt": b"short\n01234567890\nshort\n",
        "last.txt": b"short\n01234567890",
    }
    for size in (*CHUNK_SIZES, 1 << 20):
        monkeypatch.setattr(_io, "CHUNK_SIZE", size)
        assert await search(ok, "0") == {"matches": 2, "matching_lines": 2}
        for name, data in cases.items():
            path = write(tmp_path, data, name)
            with pytest.raises(LineTooLong, match=f"{name}: a line is longer than 10 bytes"):
                await search(path, "short")


async def test_long_line_without_newline_is_exact_for_streaming_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only search_pattern is bounded by MAX_LINE_BYTES; the others stream any line."""
    monkeypatch.setattr(_io, "CHUNK_SIZE", 7)
    monkeypatch.setattr(text, "MAX_LINE_BYTES", 16)
    data = ("wörd\u3000" * 500).encode() + b"end"
    path = write(tmp_path, data)
    assert await text.count_lines(path, NO_PARAMS) == {"lines": 1}
    assert await text.count_words(path, NO_PARAMS) == {"words": 501}
    assert await files.checksum(path, ChecksumParams()) == {
        "algorithm": "sha256",
        "digest": hashlib.sha256(data).hexdigest(),
    }
    assert await files.file_size(path, NO_PARAMS) == {"bytes": len(data)}
    with pytest.raises(LineTooLong):
        await search(path, "end")


# --- checksum ------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(get_args(HashAlgorithm)))
async def test_checksum_equals_hashlib_for_every_algorithm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    monkeypatch.setattr(_io, "CHUNK_SIZE", 7)
    data = bytes(range(256)) * 5
    path = write(tmp_path, data)
    params = ChecksumParams.model_validate({"algorithm": algorithm})
    assert await files.checksum(path, params) == {
        "algorithm": algorithm,
        "digest": hashlib.new(algorithm, data).hexdigest(),
    }


async def test_checksum_sha256_equals_sha256sum(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLES["multibyte"] * 1000)
    expected = tool_output("sha256sum", str(path)).split()[0]
    assert await files.checksum(path, ChecksumParams()) == {
        "algorithm": "sha256",
        "digest": expected,
    }


# --- inputs that are not regular files -----------------------------------------------


async def test_directory_input_is_not_a_regular_file(tmp_path: Path) -> None:
    with anyio.fail_after(5):
        for name in BUILTINS:
            with pytest.raises(NotARegularFile, match="is a directory"):
                await run_builtin(name, tmp_path)


async def test_fifo_input_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with anyio.fail_after(5):
        for name in BUILTINS:
            with pytest.raises(NotARegularFile, match="is a FIFO"):
                await run_builtin(name, fifo)


async def test_dev_null_is_refused_as_a_character_device() -> None:
    dev_null = Path(os.devnull)
    if not stat.S_ISCHR(os.stat(dev_null).st_mode):
        pytest.skip("no /dev/null character device here")
    with anyio.fail_after(5):
        for name in BUILTINS:
            with pytest.raises(NotARegularFile, match="is a character device"):
                await run_builtin(name, dev_null)


async def test_symlinks_are_followed_to_what_they_point_at(tmp_path: Path) -> None:
    target = write(tmp_path, b"one\ntwo\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert await text.count_lines(link, NO_PARAMS) == {"lines": 2}
    dir_link = tmp_path / "dir_link"
    dir_link.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(NotARegularFile, match="is a directory"):
        await files.file_size(dir_link, NO_PARAMS)


async def test_missing_input_raises_file_not_found_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "none.log"
    for name in BUILTINS:
        with pytest.raises(FileNotFoundError) as caught:
            await run_builtin(name, missing)
        assert os.fsdecode(caught.value.filename) == str(missing)


# --- params validation ---------------------------------------------------------------


def validate(action: str, raw: dict[str, Any]) -> Any:
    spec = default_registry().get(action)
    assert spec is not None
    return spec.validate_params(raw)


@pytest.mark.parametrize("pattern", ["ERROR|FATAL", "a+", r"\d+", r"(?<=x)y", "^#", r"\bword\b"])
def test_search_accepts_patterns_that_must_match_a_character(pattern: str) -> None:
    assert validate("search_pattern", {"pattern": pattern}).pattern == pattern


@pytest.mark.parametrize("pattern", ["a*", "^", "$", r"\b", "(?=x)", "x?", "", "a|", "(?:)"])
def test_search_rejects_patterns_that_can_match_the_empty_string(pattern: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="can match the empty string") as caught:
        validate("search_pattern", {"pattern": pattern})
    assert caught.value.errors()[0]["loc"] == ("pattern",)


def test_search_rejects_a_pattern_that_does_not_compile_with_res_message() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        validate("search_pattern", {"pattern": "(unclosed"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("pattern",)
    assert "invalid regular expression: missing ), unterminated subpattern" in error["msg"]


@pytest.mark.parametrize(
    ("action", "raw", "loc"),
    [
        ("search_pattern", {}, ("pattern",)),
        ("search_pattern", {"pattern": 1}, ("pattern",)),
        ("search_pattern", {"pattern": "x", "ignore_case": "yes"}, ("ignore_case",)),
        ("search_pattern", {"pattern": "x", "ignore_case": 1}, ("ignore_case",)),
        ("search_pattern", {"pattern": "x", "flags": "i"}, ("flags",)),
        ("checksum", {"algorithm": "shake_128"}, ("algorithm",)),
        ("checksum", {"algorithm": "crc32"}, ("algorithm",)),
        ("checksum", {"algorithm": 256}, ("algorithm",)),
        ("checksum", {"algo": "md5"}, ("algo",)),
        ("count_lines", {"encoding": "latin-1"}, ("encoding",)),
        ("count_words", {"x": 1}, ("x",)),
        ("file_size", {"follow": True}, ("follow",)),
    ],
)
def test_bad_params_are_rejected_at_their_location(
    action: str, raw: dict[str, Any], loc: tuple[str, ...]
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        validate(action, raw)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


def test_params_default_to_sha256_and_case_sensitive() -> None:
    assert validate("checksum", {}) == ChecksumParams(algorithm="sha256")
    assert validate("search_pattern", {"pattern": "x"}).ignore_case is False
    assert validate("count_lines", {}) == NO_PARAMS


# --- randomized comparison with the oracles ------------------------------------------

_PIECES = [
    *b"a b ab ERROR error".split(),
    *" |\t|\n|\n|\r|\r\n|\x1c|\xa0|\u3000|\x85".encode().split(b"|"),  # whitespace of all sorts
    *"é|€|😀".encode().split(b"|"),  # multi-byte characters
    *b"\xff|\x80|\xe2\x82|\xf0\x9f|\xc3".split(b"|"),  # invalid UTF-8
]
_RANDOM_PATTERNS = ["a", "ab|ba", r"\w+", r"a\s+b", r"\s\w", "^a", "b$"]
_RANDOM_PATTERNS += ["(?<=a)b", "(?<!a)b", "é+|€", "error", "\ufffd"]


async def test_random_inputs_agree_with_the_oracles_across_chunk_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20261128)
    path = tmp_path / "random.bin"
    for case in range(300):
        data = b"".join(rng.choice(_PIECES) for _ in range(rng.randrange(25)))
        path.write_bytes(data)
        monkeypatch.setattr(_io, "CHUNK_SIZE", rng.choice(CHUNK_SIZES))
        context = f"case {case}: {data!r}, chunk {_io.CHUNK_SIZE}"
        assert await text.count_lines(path, NO_PARAMS) == {"lines": expected_lines(data)}, context
        assert await text.count_words(path, NO_PARAMS) == {"words": expected_words(data)}, context
        pattern = rng.choice(_RANDOM_PATTERNS)
        ignore_case = rng.random() < 0.3
        assert await search(path, pattern, ignore_case=ignore_case) == expected_search(
            data, pattern, ignore_case=ignore_case
        ), f"{context}, pattern {pattern!r}"
