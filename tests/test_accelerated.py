"""The accelerated routes (numpy for line and word counts, Hyperscan for the literals
of a search) count exactly what the plain routes and Python itself count: at chunk
and slice boundaries, with multi-byte text, CRLF, invalid UTF-8, no final newline,
anchors, ``ignore_case`` and Unicode classes; and without the libraries (forced),
a run gives the same report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from asyncbatch.actions import _optional as optional
from asyncbatch.actions import _prefilter as prefilter
from asyncbatch.actions import _regexplan as regexplan
from asyncbatch.actions import _vector as vector
from asyncbatch.actions._kernels import LineCount, WordCount
from asyncbatch.actions._search import PatternSearch, is_bounded
from asyncbatch.actions.builtins import LINES, SEARCH, WORDS
from asyncbatch.files.scan import scan_file
from asyncbatch.files.stream import scan_in_process
from asyncbatch.kernel import Kernel, Tuning

np = pytest.importorskip("numpy")
needs_hyperscan = pytest.mark.skipif(
    not optional.installed("hyperscan"), reason="Hyperscan not installed"
)

PIECES = [
    b" ", b"a", b"ERROR", b"FATAL", b"fatal", b"\n", b"\r\n", b"\t", b"\x0b", b"\x1c", b"\x1f",
    b"\x00", b"\x1b", "é".encode(), "€".encode(), "😀".encode(), "\u00a0".encode(),
    "\u0085".encode(), "\u3000".encode(), "\u2028".encode(), "\u200a".encode(),
    "\u212a".encode(), "\u017f".encode(), "\u0131".encode(), b"\xff", b"\xe2", b"\x80",
    b"\xc3", b"\xf0\x9f", b"kill", b"SKILL", b"user=42", b"aa",
]  # fmt: skip
"""Bytes that matter: ASCII and Unicode whitespace, letters that fold to ASCII
ones, cut and invalid sequences, CRLF, the literals searched for."""

pieces = st.lists(st.sampled_from(PIECES), max_size=80).map(b"".join)


def lines_of(data: bytes) -> int:
    return data.count(b"\n") + int(bool(data) and not data.endswith(b"\n"))


def words_of(data: bytes) -> int:
    return len(data.decode("utf-8", "replace").split())


def search_of(data: bytes, pattern: str, ignore_case: bool) -> dict[str, int]:
    """The definition: each line decoded and searched on its own."""
    regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    matches = lines = 0
    for line in data.decode("utf-8", "replace").split("\n"):
        found = len(regex.findall(line))
        matches += found
        lines += found > 0
    return {"matches": matches, "matching_lines": lines}


def fed(scanner: Any, data: bytes, chunk: int) -> dict[str, Any]:
    for start in range(0, len(data), chunk):
        scanner.update(data[start : start + chunk])
    result: dict[str, Any] = scanner.result()
    return result


# --- numpy: the byte loops ----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=pieces, in_word=st.booleans(), slice_bytes=st.sampled_from([1, 2, 3, 7, 64]))
def test_numpy_counts_equal_python_at_every_slice_boundary(
    data: bytes, in_word: bool, slice_bytes: int
) -> None:
    if not data:
        return
    assert vector.count_newlines(np, data, slice_bytes) == data.count(b"\n")
    counted = vector.count_word_starts(np, data, in_word, slice_bytes)
    if counted is None:  # a byte that may start a Unicode space: only decoding tells
        assert re.search(rb"[\xc2\xe1-\xe3]", data)
        return
    words, ends_in_word = counted
    text = data.decode("utf-8", "replace")
    starts_in_word = in_word and not text[0].isspace()
    assert words == len(text.split()) - starts_in_word
    assert ends_in_word == (not text[-1].isspace())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(middle=pieces, cut=st.integers(0, 200))
def test_line_and_word_kernels_equal_python_on_big_chunks(middle: bytes, cut: int) -> None:
    """Pieces big enough for numpy, the odd bytes around the chunk and slice cuts."""
    filler = b"word other\n" * 6000  # 66,000 bytes
    data = filler + middle + filler[:cut] + middle + filler + middle
    for chunk in (vector.MIN_BYTES, len(filler) + cut, 1 << 20):
        for accelerate in (True, False):
            tuning = Tuning(accelerate=accelerate)
            lines = fed(LineCount("x", len(data), {}, tuning), data, chunk)
            words = fed(WordCount("x", len(data), {}, tuning), data, chunk)
            assert lines == {"lines": lines_of(data)}
            assert words == {"words": words_of(data)}


def test_counts_of_a_file_read_in_chunks_whatever_the_chunk(tmp_path: Path) -> None:
    data = "naïve café\u3000x\r\nlast words\u2028y\t\x1cz ".encode() * 20000 + b"\xe2\x82"
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    for chunk in (vector.MIN_BYTES + 1, 1 << 20, 4 << 20):
        tuning = Tuning(chunk_bytes=chunk)
        assert scan_file(LINES, str(path), {}, tuning)[0] == {"lines": lines_of(data)}
        assert scan_file(WORDS, str(path), {}, tuning)[0] == {"words": words_of(data)}


# --- Hyperscan: the literals of a search ------------------------------------------------

PATTERNS = [
    ("ERROR", False),
    ("ERROR|FATAL", False),
    ("aa", False),  # overlaps itself: counted with bytes.count, not engine reports
    ("^ERROR", False),
    ("FATAL$", False),
    ("FATAL\r$", False),
    (r"ERROR\s+\w+", False),
    (r"user=\d+", False),
    ("(?:ERROR|FATAL)[a-z ]*", False),
    ("fatal", True),
    ("kill", True),  # the Kelvin sign and dotless i fold into it
    ("skill|error", True),  # the long s too
    (r"\w*ill\b", True),
    ("é|€", False),
    ("[^\x00-\x7f]+ERROR", False),
]


@pytest.mark.slow
@needs_hyperscan
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(middle=pieces, cut=st.integers(0, 300), final_newline=st.booleans())
def test_search_with_hyperscan_equals_the_definition(
    middle: bytes, cut: int, final_newline: bool
) -> None:
    filler = b"ok ERROR then\r\nFATAL kill aaa user=7\n" * 2000  # 74,000 bytes
    data = filler[:cut] + middle + filler + middle + filler + middle
    data += b"\n" if final_newline else b""
    for pattern, ignore_case in PATTERNS:
        params = {"pattern": pattern, "ignore_case": ignore_case}
        want = search_of(data, pattern, ignore_case)
        for chunk in (prefilter.HYPERSCAN_MIN_BYTES + 7, 1 << 20):
            tuning = Tuning(chunk_bytes=chunk)
            assert fed(PatternSearch("x", len(data), params, tuning), data, chunk) == want, (
                pattern,
                chunk,
            )


def test_search_without_hyperscan_or_prefilter_equals_the_definition() -> None:
    data = b"ok ERROR then\r\nFATAL \xe2\x84\xaaILL aaaa user=7\n\xff kill\n" * 4000
    for pattern, ignore_case in PATTERNS:
        params = {"pattern": pattern, "ignore_case": ignore_case}
        want = search_of(data, pattern, ignore_case)
        plain = Tuning(accelerate=False)
        assert fed(PatternSearch("x", len(data), params, plain), data, 1 << 20) == want
        reference = PatternSearch("x", len(data), params, plain, optimise=False)
        assert fed(reference, data, 1 << 20) == want


@pytest.mark.anyio
@needs_hyperscan
async def test_search_in_a_worker_process_with_hyperscan_equals_the_definition(
    tmp_path: Path,
) -> None:
    """Big files go to worker processes, which import Hyperscan on their own."""
    data = b"ok ERROR then\r\nFATAL \xe2\x84\xaaILL aaaa user=7\n\xff kill\n" * 8000
    path = tmp_path / "big.log"
    path.write_bytes(data)
    for pattern, ignore_case in PATTERNS[:3] + PATTERNS[-6:]:
        params = {"pattern": pattern, "ignore_case": ignore_case}
        found, _ = await scan_in_process(SEARCH, path, params, Tuning(chunk_bytes=1 << 20))
        assert found == search_of(data, pattern, ignore_case), pattern


def test_the_letters_that_fold_into_ascii_ones_are_all_known() -> None:
    """Python's ``re`` matches a few non-ASCII letters with ASCII ones under
    IGNORECASE; the caseless literal search must look for each of them."""
    ascii_letter = re.compile("[\x00-\x7f]", re.IGNORECASE)
    folded = {chr(code) for code in range(0x80, 0x110000) if ascii_letter.fullmatch(chr(code))}
    assert folded <= set(regexplan._FOLDED_INTO_ASCII)


def test_only_searches_for_plain_literals_run_outside_a_worker_process() -> None:
    def isolated(pattern: str, ignore_case: bool = False) -> bool:
        params = {"pattern": pattern, "ignore_case": ignore_case}
        assert is_bounded(params) == (not SEARCH.isolated_for(params))
        return SEARCH.isolated_for(params)

    assert not isolated("ERROR")
    assert not isolated("ERROR|FATAL|(?:PANIC)")
    assert isolated("error", ignore_case=True)  # folded: confirmed with re
    assert isolated("ERR?OR")
    assert isolated("(a+)+$")
    assert not Kernel(LineCount).isolated_for({})


# --- without the libraries ---------------------------------------------------------------

WITHOUT_LIBRARIES = """
import sys
sys.modules["numpy"] = None  # as if not installed: import fails, find_spec says None
sys.modules["hyperscan"] = None
from asyncbatch.actions.builtins import LINES, SEARCH, WORDS
assert not (LINES.releases_gil or WORDS.releases_gil)
from asyncbatch.__main__ import main
sys.argv = ["asyncbatch", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_a_run_without_numpy_and_hyperscan_reports_the_same(tmp_path: Path) -> None:
    data = "ERROR naïve\u3000café\r\nFATAL kill \u212aILL\n".encode() * 60000
    (tmp_path / "big.log").write_bytes(data + b"no final newline")
    (tmp_path / "small.log").write_bytes(data[:5000])
    jobs = [
        {"name": f"{action}-{n}", "action": action, "input": "*.log", "params": params}
        for n, (action, params) in enumerate(
            [
                ("count_lines", {}),
                ("count_words", {}),
                ("search_pattern", {"pattern": "ERROR|FATAL"}),
                ("search_pattern", {"pattern": "kill", "ignore_case": True}),
                ("search_pattern", {"pattern": r"caf\w"}),
            ]
        )
    ]
    (tmp_path / "batch.json").write_text(json.dumps({"jobs": jobs}))

    def results(*command: str) -> list[Any]:
        report = tmp_path / "report.json"
        argv = [*command, "run", "batch.json", "-j", "4", "--no-progress", "-o", str(report)]
        subprocess.run(argv, cwd=tmp_path, check=True, capture_output=True)
        found = [(job["name"], job["result"]) for job in json.loads(report.read_text())["jobs"]]
        report.unlink()
        return found

    accelerated = results(sys.executable, "-m", "asyncbatch")
    assert accelerated == results(sys.executable, "-c", WITHOUT_LIBRARIES)
    big = data + b"no final newline"
    assert accelerated[0][1] == {"lines": lines_of(big)}
    assert accelerated[2][1] == {"words": words_of(big)}


# --- every line searched alone, whatever the pattern's flags ------------------------------

LINE_ATOMS = [
    "a", "b", "ab", "!", r"\w", r"\W", r"\s", r"\S", ".", "[^x]", r"\n", r"\b", r"\B",
    "^", "$", r"\A", r"\Z", "é", "\ufffd",
]  # fmt: skip
"""Pattern pieces: letters, classes that can take a newline, and zero-width anchors."""
LINE_WRAPPERS = [
    "(?-m:{})", "(?m:{})", "(?s:{})", "(?i:{})", "(?s-m:{})", "(?=x{})", "(?!{})",
    "(?<=a){}", "(?<!b){}", "(?>{})", "(?:{})++", "(?:{})*+", "(?:{})?+", "(?:{})*",
    "(?:{})+?", "({})?", "{}|a", "a|{}", "(?:{}){{2}}", "({})\\1", "(?:(a)|b)(?(1){}|b)",
]  # fmt: skip
"""Constructs around a piece: scoped flags, lookarounds, atomic groups, possessive and
lazy repeats, alternations, backreferences and conditionals."""
LINE_PIECES = [
    b"a",
    b"a",
    b"b",
    b"!",
    b" ",
    b"x",
    b"\n",
    b"\n",
    b"\n",
    "é".encode(),
    b"\xff",
    b"\xe2",
]
"""Lines of few characters: many lines per block, so that a block holds several."""


def _line_pattern() -> st.SearchStrategy[str]:
    """One to three pieces, each bare or inside one or two constructs."""
    atoms = st.lists(st.sampled_from(LINE_ATOMS), min_size=1, max_size=2).map("".join)
    wrapper = st.sampled_from(LINE_WRAPPERS)
    once = st.tuples(wrapper, atoms).map(lambda pair: pair[0].format(pair[1]))
    twice = st.tuples(wrapper, once).map(lambda pair: pair[0].format(pair[1]))
    return st.lists(st.one_of(atoms, once, twice), min_size=1, max_size=3).map("".join)


def searched_line_by_line(data: bytes, pattern: str, ignore_case: bool) -> dict[str, int]:
    """The definition, literally: each line of the bytes decoded and searched alone."""
    regex = re.compile(pattern, re.MULTILINE | (re.IGNORECASE if ignore_case else 0))
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    matches = matching = 0
    for line in lines:
        found = sum(1 for _ in regex.finditer(line.decode("utf-8", "replace")))
        matches += found
        matching += found > 0
    return {"matches": matches, "matching_lines": matching}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(pattern="(?-m:^a)", data=b"a\na\na\n", ignore_case=False, chunk=1 << 20)
@example(pattern="(?-m:a$)", data=b"a\na\na", ignore_case=False, chunk=2)
@example(pattern=r"(?>a\s*)\b", data=b"a\n!\n", ignore_case=False, chunk=1 << 20)
@example(pattern=r"a(?=\n)", data=b"a\na\n", ignore_case=True, chunk=1)
@example(pattern=r"(?s:a.)", data=b"a\nab\n", ignore_case=False, chunk=5)
@example(pattern=r"\Aa|b\Z", data=b"ba\nab\n", ignore_case=False, chunk=1 << 20)
@given(
    pattern=_line_pattern(),
    data=st.lists(st.sampled_from(LINE_PIECES), max_size=40).map(b"".join),
    ignore_case=st.booleans(),
    chunk=st.sampled_from([1, 5, 64, 1 << 20, 1 << 20]),
)
def test_every_line_is_searched_alone_whatever_the_patterns_flags(
    pattern: str, data: bytes, ignore_case: bool, chunk: int
) -> None:
    """Scoped flags (``(?-m:^a)`` counted by block, not by line), ``\\A``, ``\\Z``,
    lookarounds, ``(?s)`` with ``.``, atomic groups and possessive repeats: the
    optimised scan and the plain one (``optimise=False``) count what each line
    searched alone counts, across chunk boundaries."""
    from asyncbatch.actions._params import check_pattern

    try:
        check_pattern(pattern)
    except ValueError:
        assume(False)  # does not compile, or can match the empty string: a config error
    want = searched_line_by_line(data, pattern, ignore_case)
    params = {"pattern": pattern, "ignore_case": ignore_case}
    for optimise in (True, False):
        for accelerate in (True, False):
            search = PatternSearch(
                "x", len(data), params, Tuning(accelerate=accelerate), optimise=optimise
            )
            assert fed(search, data, chunk) == want, (optimise, accelerate)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=_line_pattern(),
    data=st.lists(st.sampled_from(LINE_PIECES), max_size=40).map(b"".join),
    ignore_case=st.booleans(),
    chunk=st.sampled_from([1, 5, 64, 1 << 20, 1 << 20]),
)
def test_every_line_is_searched_alone_in_depth(
    pattern: str, data: bytes, ignore_case: bool, chunk: int
) -> None:
    """The same, over many more patterns (a random search finds ``(?-m:^a)`` in a
    few thousand)."""
    inner = test_every_line_is_searched_alone_whatever_the_patterns_flags.hypothesis.inner_test  # type: ignore[attr-defined]
    inner(pattern=pattern, data=data, ignore_case=ignore_case, chunk=chunk)


@pytest.mark.parametrize(
    "lines", [1, 4, pytest.param(200_000, marks=pytest.mark.slow)], ids=lambda n: f"{n}-lines"
)
@pytest.mark.parametrize("optimise", [True, False])
@pytest.mark.parametrize(
    "pattern", ["(?-m:^a)", "(?-m:a$)", "(?-m:^)a", "a(?-m:$)", r"\Aa", r"a\Z", "(?s-m:^a)"]
)
def test_scoped_flags_and_string_anchors_count_each_line(
    pattern: str, optimise: bool, lines: int
) -> None:
    """Files of 1, 4 and 200,000 lines ``a``: 1, 4 and 200,000 matches (they were 1,
    2 and 2: one per block)."""
    data = b"a\n" * lines
    for chunk in (3, 1 << 20) if lines < 10 else (4099, 1 << 20):
        search = PatternSearch("x", len(data), {"pattern": pattern}, Tuning(), optimise=optimise)
        assert fed(search, data, chunk) == {"matches": lines, "matching_lines": lines}


def test_an_atomic_group_that_takes_a_newline_in_a_block_counts_as_in_the_line() -> None:
    """``(?>a\\s*)\\b`` over ``a`` then ``!``: alone, the line ``a`` matches; in a block
    the group takes the newline, the boundary before ``!`` fails, and no match spans a
    newline to tell."""
    data = b"a\n!\n" * 3
    for optimise in (True, False):
        search = PatternSearch(
            "x", len(data), {"pattern": r"(?>a\s*)\b"}, Tuning(), optimise=optimise
        )
        assert fed(search, data, 1 << 20) == {"matches": 3, "matching_lines": 3}
