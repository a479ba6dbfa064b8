"""Shell completion offers what can be typed: the actions' names after ``each
--action``, the executors after ``--executor`` (bash and zsh, as the shells' scripts
installed by ``--install-completion`` ask for them)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from asyncbatch.cli import app

ACTIONS = ["checksum", "command", "count_lines", "count_words", "file_size", "search_pattern"]


def bash(words: str) -> list[str]:
    """What bash completion offers for the command line ``words`` (the cursor at its end)."""
    env = {
        "_ASYNCBATCH_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    result = CliRunner().invoke(app, [], env=env, prog_name="asyncbatch")
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def zsh(words: str) -> str:
    env = {"_ASYNCBATCH_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words}
    result = CliRunner().invoke(app, [], env=env, prog_name="asyncbatch")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_each_action_offers_the_action_names() -> None:
    """The built-ins at least: actions user code declared in this process come too."""
    offered = bash("asyncbatch each --action ")
    assert set(ACTIONS) <= set(offered)
    assert offered == sorted(offered)
    starting = bash("asyncbatch each --action co")
    assert {"command", "count_lines", "count_words"} <= set(starting)
    assert all(name.startswith("co") for name in starting)
    assert all(f'"{name}"' in zsh("asyncbatch each --action ") for name in ACTIONS)


@pytest.mark.parametrize("command", ["run", "each"])
def test_executor_offers_local_and_dask(command: str) -> None:
    assert bash(f"asyncbatch {command} --executor ") == ["local", "dask"]
    assert bash(f"asyncbatch {command} --executor d") == ["dask"]
    offered = zsh(f"asyncbatch {command} --executor ")
    assert '"local"' in offered
    assert '"dask"' in offered
