"""Where ``each``'s inputs come from: standard input (lines, ``-0``), ``-a`` files
(one, several as a product, ``--link``), plain arguments (``--args``), fields
(``--colsep``, ``--csv``, ``--header``), groups (``-n``, ``{inputs}``), repeats
(``NAME#2``); INPUT arguments naming existing files taken as they are, and programs
getting each input's real bytes.

Real programs on real files in ``tmp_path``, through the command in process
(``invoke``); the terminal test runs ``python -m asyncbatch`` on a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import invoke, read_json

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs")

PY = sys.executable
HEX_ARGS = "import os, sys; print(' '.join(os.fsencode(a).hex() for a in sys.argv[1:]))"
"""A program printing its arguments' bytes, in hex."""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text(f"{name}\n", encoding="utf-8")
    return tmp_path


def each(*args: str, code: int = 0, stdin: str | None = None) -> tuple[str, dict[str, Any]]:
    """``each -q -k -o r.json ARGS``: stdout and the report's jobs by name (in order)."""
    result = invoke(["each", "-q", "-k", "-o", "r.json", *args], stdin=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr)
    jobs = read_json(Path("r.json"))["jobs"]
    return result.stdout, {job["name"]: job for job in jobs}


def usage_error(*args: str, stdin: str | None = None) -> str:
    """``each ARGS``: exit 2, one ``error:`` line on stderr (returned), nothing run."""
    result = invoke(["each", *args], stdin=stdin)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- standard input and files ------------------------------------------------------------


def test_without_input_arguments_the_inputs_are_stdins_lines(here: Path) -> None:
    stdout, jobs = each("--", "cat", stdin="a.txt\n\nb.txt\r\n")
    assert list(jobs) == ["a.txt", "b.txt"]
    assert stdout == "a\nb\n"


def test_null_separated_inputs_keep_a_newline_in_a_file_name(here: Path) -> None:
    (here / "new\nline.txt").write_text("inside\n", encoding="utf-8")
    stdout, jobs = each("-0", "--", "cat", stdin="new\nline.txt\0a.txt\0")
    assert list(jobs) == ["new\nline.txt", "a.txt"]
    assert stdout == "inside\na\n"


def test_inputs_read_from_stdin_or_a_file_are_paths_never_globs(here: Path) -> None:
    _, jobs = each("--", "cat", stdin="*.txt\n", code=1)
    assert list(jobs) == ["*.txt"]
    assert jobs["*.txt"]["error"]["type"] == "FileNotFoundError"


def test_arg_file_reads_the_inputs_from_a_file_or_stdin(here: Path) -> None:
    (here / "list").write_text("c.txt\na.txt\n", encoding="utf-8")
    stdout, jobs = each("-a", "list", "--", "cat")
    assert (list(jobs), stdout) == (["c.txt", "a.txt"], "c\na\n")
    stdout, _ = each("-a", "-", "--", "cat", stdin="b.txt\n")
    assert stdout == "b\n"
    assert usage_error("-a", "missing.list", "--", "cat") == (
        "error: -a 'missing.list': no such file"
    )


def test_several_arg_files_make_one_job_per_combination(here: Path) -> None:
    (here / "xs").write_text("x1\nx2\n", encoding="utf-8")
    (here / "ys").write_text("y1\ny2\ny3\n", encoding="utf-8")
    stdout, jobs = each("-a", "xs", "-a", "ys", "--", "echo", "{2}-{1}")
    assert list(jobs) == ["x1 y1", "x1 y2", "x1 y3", "x2 y1", "x2 y2", "x2 y3"]
    assert stdout.split() == ["y1-x1", "y2-x1", "y3-x1", "y1-x2", "y2-x2", "y3-x2"]
    stdout, jobs = each("-a", "xs", "-a", "ys", "--", "echo")  # no placeholder: appended
    assert stdout.splitlines()[0] == "x1 y1"


def test_link_pairs_the_sources_line_by_line_and_unequal_ones_are_refused(here: Path) -> None:
    (here / "xs").write_text("x1\nx2\n", encoding="utf-8")
    (here / "ys").write_text("y1\ny2\n", encoding="utf-8")
    (here / "zs").write_text("z1\n", encoding="utf-8")
    stdout, jobs = each("--link", "-a", "xs", "-a", "ys", "--", "echo", "{1}+{2}")
    assert (list(jobs), stdout) == (["x1 y1", "x2 y2"], "x1+y1\nx2+y2\n")
    message = usage_error("--link", "-a", "xs", "-a", "zs", "--", "echo")
    assert message == "error: --link: the -a sources have different lengths (2, 1)"


# --- plain arguments, fields, groups -----------------------------------------------------


def test_args_are_plain_arguments_not_files(here: Path) -> None:
    stdout, jobs = each("--args", "1", "http://x/y.html", "--", "echo", "{input}|{stem}|{suffix}")
    assert stdout == "1|1|\nhttp://x/y.html|y|.html\n"
    assert jobs["1"]["input"] == "1"
    assert jobs["1"]["status"] == "succeeded"


def test_resume_fingerprints_an_argument_and_its_command(here: Path) -> None:
    each("--args", "1", "2", "--", "echo", "n")
    _, jobs = each("--resume", "--args", "1", "2", "--", "echo", "n")
    assert [job["reused"] for job in jobs.values()] == [True, True]
    _, jobs = each("--resume", "--args", "1", "2", "--", "echo", "m")
    assert [job["reused"] for job in jobs.values()] == [False, False]


def test_colsep_splits_each_input_into_numbered_fields(here: Path) -> None:
    stdout, jobs = each("--colsep", ",", "--", "echo", "{2}/{1}", stdin="a,b\nc,d,e\nf\n")
    assert list(jobs) == ["a,b", "c,d,e", "f"]
    assert stdout == "b/a\nd/c\n/f\n"  # a missing field is empty
    stdout, _ = each("--colsep", "\\t", "--", "echo", "{2}", stdin="a\tb\n")
    assert stdout == "b\n"
    assert "empty separator" in usage_error("--colsep", "", "--", "echo", stdin="a\n")


def test_csv_with_a_header_names_the_fields(here: Path) -> None:
    (here / "jobs.csv").write_text(
        'file,size\n"a, quoted.txt",1\n"two\nlines",2\n', encoding="utf-8"
    )
    stdout, jobs = each("--csv", "--header", "-a", "jobs.csv", "--", "echo", "{size}:{file}")
    assert stdout == "1:a, quoted.txt\n2:two\nlines\n"
    assert list(jobs) == ["a, quoted.txt 1", "two\nlines 2"]


def test_a_header_field_named_like_a_placeholder_is_refused(here: Path) -> None:
    message = usage_error("--colsep", ",", "--header", "--", "echo", stdin="name,x\na,b\n")
    assert message == "error: --header: a field named 'name' would hide the placeholder {name}"


def test_max_args_gives_a_job_several_inputs(here: Path) -> None:
    args = ["--args", "-n", "2", "1", "2", "3", "4", "5"]
    stdout, jobs = each(*args, "--", "echo", "[", "{inputs}", "]")
    assert list(jobs) == ["1 (+1)", "3 (+1)", "5"]
    assert stdout == "[ 1 2 ]\n[ 3 4 ]\n[ 5 ]\n"
    stdout, _ = each(*args, "--", "echo")  # no placeholder: all appended
    assert stdout == "1 2\n3 4\n5\n"
    stdout, _ = each(*args, "--shell", "for i in {inputs}; do printf '<%s>' \"$i\"; done; echo")
    assert stdout == "<1><2>\n<3><4>\n<5>\n"


def test_a_repeated_input_is_a_job_of_its_own(here: Path) -> None:
    stdout, jobs = each("--args", "x", "y", "x", "x", "--", "echo", "{name}")
    assert list(jobs) == ["x", "y", "x#2", "x#3"]
    assert stdout == "x\ny\nx#2\nx#3\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--args", "a", "--action", "count_lines"], "--args (and --colsep, --csv, several -a)"),
        (["-n", "2", "a.txt", "--action", "count_lines"], "-n/--max-args needs a program"),
        (["--ok-exit", "0,1", "a.txt", "--action", "count_lines"], "--ok-exit needs a program"),
        (["-n", "0", "a.txt", "--", "echo"], "-n/--max-args takes a number of inputs"),
        (["--ok-exit", "0,x", "a.txt", "--", "echo"], "--ok-exit '0,x': exit codes are numbers"),
        (["--ok-exit", "-9", "a.txt", "--", "echo"], "exit codes are numbers from 0 to 255"),
        (["a.txt", "-a", "list", "--", "echo"], "give INPUT arguments or -a FILE, not both"),
        (["--link", "-a", "list", "--", "echo"], "--link pairs the lines of several -a FILE"),
    ],
)
def test_options_that_cannot_go_together_are_one_line_usage_errors(
    here: Path, args: list[str], message: str
) -> None:
    (here / "list").write_text("a.txt\n", encoding="utf-8")
    assert message in usage_error(*args)
    assert not (here / "r.json").exists()


# --- names as they are, bytes as they are -------------------------------------------------


def test_an_input_naming_an_existing_file_is_never_globbed_again(here: Path) -> None:
    (here / "x.txt").write_text("x\n", encoding="utf-8")
    (here / "[x].txt").write_text("[x]\n", encoding="utf-8")
    (here / "what?.txt").write_text("?\n", encoding="utf-8")
    (here / "whatA.txt").write_text("A\n", encoding="utf-8")
    _, jobs = each("[x].txt", "what?.txt", "--", "rm")
    assert list(jobs) == ["[x].txt", "what?.txt"]
    assert sorted(p.name for p in here.glob("*.txt")) == [
        "a.txt",
        "b.txt",
        "c.txt",
        "whatA.txt",
        "x.txt",
    ]


def test_programs_get_a_non_utf8_names_real_bytes(here: Path) -> None:
    raw = b"report\xff.txt"
    os.close(os.open(raw, os.O_CREAT | os.O_WRONLY))
    decoy = here / "report\\xff.txt"  # the name as the report shows the other
    decoy.write_text("decoy\n", encoding="utf-8")
    name = os.fsdecode(raw)
    for given in (name, "report?.txt"):
        stdout, jobs = each(given, "--", PY, "-c", HEX_ARGS, "{name}")
        assert stdout.split() == [raw.hex()]
    stdout, _ = each("report?.txt", "--", PY, "-c", HEX_ARGS)  # appended
    assert stdout.split() == [raw.hex()]
    assert list(jobs) == ["report\\xff.txt"]  # the report shows it escaped
    each("report?.txt", "--", "rm")
    assert not os.path.exists(raw)
    assert decoy.read_text(encoding="utf-8") == "decoy\n"


@pytest.mark.slow  # a subprocess on a pseudo-terminal
def test_no_input_with_stdin_a_terminal_says_where_inputs_come_from(here: Path) -> None:
    leader, follower = os.openpty()
    try:
        done = subprocess.run(
            [PY, "-m", "asyncbatch", "each", "--", "echo"],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: no INPUT given, and standard input is a terminal")
    assert "-a FILE" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_report_lists_the_inputs_as_given(here: Path) -> None:
    _, jobs = each("--args", "x y", "--", "echo")
    assert json.dumps(list(jobs)) == '["x y"]'
