"""DependencyTracker: which jobs become ready, and which are skipped, as others end.

Pure and synchronous: no event loop, no config, just indices (``depends_on[i]``
lists the jobs job ``i`` waits for) or names (``grouped``: a job waits for the groups
it names, each group being a glob's expansions, or one job).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence

import pytest

from asyncbatch.engine._tracker import DependencyTracker, Released


def assert_causes_are_valid(
    depends_on: Sequence[Sequence[int]], ended: int, released: Released
) -> None:
    """Every skipped job names one of its own dependencies as the cause, and that
    cause is the job that ended or a job skipped earlier in the same list."""
    recorded = {ended}
    for skipped, cause in released.skipped:
        assert cause in depends_on[skipped]
        assert cause in recorded, f"{skipped} is skipped before its cause {cause}"
        recorded.add(skipped)
    assert len(recorded) == len(released.skipped) + 1, "no job is skipped twice"


# --- ready -------------------------------------------------------------------------------


def test_the_initially_ready_jobs_are_those_waiting_for_nothing_in_config_order() -> None:
    tracker = DependencyTracker([[2], [], [], [1, 2], []])
    assert tracker.initially_ready() == [1, 2, 4]


def test_no_jobs_means_nothing_ready() -> None:
    assert DependencyTracker([]).initially_ready() == []


def test_a_job_is_ready_as_soon_as_all_its_dependencies_succeeded_not_before() -> None:
    tracker = DependencyTracker([[], [], [0, 1], [0]])
    assert tracker.end(0, succeeded=True) == Released(ready=[3])
    assert not tracker.is_ended(2)
    assert tracker.end(1, succeeded=True) == Released(ready=[2])


def test_jobs_released_together_come_in_config_order() -> None:
    tracker = DependencyTracker([[4], [3, 4], [4], [4], []])
    assert tracker.initially_ready() == [4]
    assert tracker.end(4, succeeded=True).ready == [0, 2, 3]
    assert tracker.end(3, succeeded=True).ready == [1]


def test_a_dependency_listed_twice_is_waited_for_once() -> None:
    tracker = DependencyTracker([[], [0, 0, 0], [1, 0, 1]])
    assert tracker.end(0, succeeded=True).ready == [1]
    assert tracker.end(1, succeeded=True).ready == [2]


def test_a_job_ended_succeeded_twice_releases_its_dependents_once() -> None:
    """Were the second end counted, job 2 would be ready before job 1 ended."""
    tracker = DependencyTracker([[], [], [0, 1]])
    assert tracker.end(0, succeeded=True) == Released()
    assert tracker.end(0, succeeded=True) == Released()
    assert tracker.end(0, succeeded=False) == Released()
    assert not tracker.is_ended(2)
    assert tracker.end(1, succeeded=True) == Released(ready=[2])


def test_a_job_that_ended_is_ended() -> None:
    tracker = DependencyTracker([[], [0]])
    assert not tracker.is_ended(0)
    tracker.end(0, succeeded=True)
    assert tracker.is_ended(0)
    assert not tracker.is_ended(1)


# --- skipped -----------------------------------------------------------------------------


def test_a_failure_skips_its_dependents_naming_it() -> None:
    tracker = DependencyTracker([[], [0], [0], []])
    released = tracker.end(0, succeeded=False)
    assert released == Released(skipped=[(1, 0), (2, 0)])
    assert tracker.is_ended(1)
    assert tracker.is_ended(2)
    assert not tracker.is_ended(3)


def test_skips_are_transitive_each_naming_the_dependency_it_waited_on() -> None:
    """a <- b <- c <- d and a <- e <- d: d names the skipped job it waited on."""
    depends_on: list[list[int]] = [[], [0], [1], [2, 4], [0]]
    tracker = DependencyTracker(depends_on)
    released = tracker.end(0, succeeded=False)
    assert released.ready == []
    assert released.skipped == [(1, 0), (4, 0), (2, 1), (3, 4)]
    assert_causes_are_valid(depends_on, 0, released)


def test_a_skipped_job_is_recorded_after_the_skipped_job_it_names() -> None:
    """Job 1 depends on job 3, which comes later in config order: job 3 must still
    be skipped (recorded) before job 1 names it."""
    depends_on: list[list[int]] = [[], [3], [], [0]]
    tracker = DependencyTracker(depends_on)
    released = tracker.end(0, succeeded=False)
    assert released.skipped == [(3, 0), (1, 3)]
    assert_causes_are_valid(depends_on, 0, released)


def test_a_diamond_releases_its_bottom_once_both_sides_succeeded() -> None:
    tracker = DependencyTracker([[], [0], [0], [1, 2]])
    assert tracker.end(0, succeeded=True).ready == [1, 2]
    assert tracker.end(2, succeeded=True) == Released()
    assert tracker.end(1, succeeded=True) == Released(ready=[3])


def test_a_diamond_whose_top_fails_skips_its_bottom_once() -> None:
    depends_on: list[list[int]] = [[], [0], [0], [1, 2]]
    tracker = DependencyTracker(depends_on)
    released = tracker.end(0, succeeded=False)
    assert released.skipped == [(1, 0), (2, 0), (3, 1)]
    assert_causes_are_valid(depends_on, 0, released)


def test_a_diamond_whose_side_fails_skips_the_bottom_and_the_other_side_releases_nothing() -> None:
    tracker = DependencyTracker([[], [0], [0], [1, 2]])
    tracker.end(0, succeeded=True)
    assert tracker.end(1, succeeded=False) == Released(skipped=[(3, 1)])
    assert tracker.end(2, succeeded=True) == Released()
    assert tracker.end(2, succeeded=False) == Released()


def test_a_job_skipped_once_is_not_skipped_again_by_another_failed_dependency() -> None:
    tracker = DependencyTracker([[], [], [0, 1], [2]])
    assert tracker.end(0, succeeded=False).skipped == [(2, 0), (3, 2)]
    assert tracker.end(1, succeeded=False) == Released()


def test_a_job_ended_after_being_skipped_releases_nothing() -> None:
    """The scheduler may hear of a skipped job's end (it ran before it was skipped,
    or the caller is wrong): its dependents were skipped with it and stay so."""
    tracker = DependencyTracker([[], [0], [1], [], [1, 3]])
    assert tracker.end(0, succeeded=False).skipped == [(1, 0), (2, 1), (4, 1)]
    assert tracker.end(1, succeeded=True) == Released()
    assert tracker.end(1, succeeded=False) == Released()
    assert tracker.end(3, succeeded=True) == Released()


# --- size --------------------------------------------------------------------------------


def test_a_fan_out_of_ten_thousand_is_released_at_once_in_order() -> None:
    size = 10_000
    tracker = DependencyTracker([[], *([0] for _ in range(size))])
    assert tracker.initially_ready() == [0]
    assert tracker.end(0, succeeded=True).ready == list(range(1, size + 1))


def test_a_fan_out_of_ten_thousand_is_skipped_at_once_naming_the_failure() -> None:
    size = 10_000
    tracker = DependencyTracker([[], *([0] for _ in range(size))])
    assert tracker.end(0, succeeded=False).skipped == [(i, 0) for i in range(1, size + 1)]


def test_a_fan_in_of_ten_thousand_is_ready_only_after_the_last_dependency() -> None:
    size = 10_000
    tracker = DependencyTracker([*([] for _ in range(size)), list(range(size))])
    assert tracker.initially_ready() == list(range(size))
    for index in range(size - 1):
        assert tracker.end(index, succeeded=True) == Released()
    assert tracker.end(size - 1, succeeded=True) == Released(ready=[size])


def test_a_fan_in_of_ten_thousand_with_failures_skips_its_job_once() -> None:
    size = 10_000
    tracker = DependencyTracker([*([] for _ in range(size)), list(range(size))])
    assert tracker.end(5, succeeded=False) == Released(skipped=[(size, 5)])
    for index in range(size):
        assert tracker.end(index, succeeded=index % 2 == 0) == Released()


def test_a_chain_of_a_hundred_thousand_is_skipped_without_recursion() -> None:
    size = 100_000
    depends_on = [[], *([i] for i in range(size - 1))]
    tracker = DependencyTracker(depends_on)
    released = tracker.end(0, succeeded=False)
    assert released.skipped == [(i, i - 1) for i in range(1, size)]
    assert all(tracker.is_ended(i) for i in range(size))


def test_a_chain_of_a_hundred_thousand_runs_one_job_at_a_time() -> None:
    size = 100_000
    tracker = DependencyTracker([[], *([i] for i in range(size - 1))])
    ready = tracker.initially_ready()
    order = []
    while ready:
        (index,) = ready
        order.append(index)
        ready = tracker.end(index, succeeded=True).ready
    assert order == list(range(size))


# --- groups: a name waits for every job of its group -------------------------------------


def grouped(*jobs: tuple[str, str, Sequence[str]]) -> DependencyTracker:
    """A tracker over ``(name, group, waits_for)`` jobs, in that order."""
    return DependencyTracker.grouped(
        [name for name, _, _ in jobs],
        [group for _, group, _ in jobs],
        [waits_for for _, _, waits_for in jobs],
    )


def glob(
    group: str, files: Sequence[str], waits_for: Sequence[str] = ()
) -> list[tuple[str, str, Sequence[str]]]:
    """The expansions of a glob job: one per file, named ``group[file]``."""
    return [(f"{group}[{file}]", group, tuple(waits_for)) for file in files]


def test_a_glob_waiting_for_a_glob_is_ready_once_every_expansion_succeeded() -> None:
    tracker = grouped(*glob("a", "xyz"), *glob("b", "uv", ["a"]))
    assert tracker.initially_ready() == [0, 1, 2]
    assert tracker.end(2, succeeded=True) == Released()
    assert tracker.end(0, succeeded=True) == Released()
    assert not tracker.is_ended(3)
    assert tracker.end(1, succeeded=True) == Released(ready=[3, 4])
    assert not tracker.is_ended(3)


def test_a_failed_expansion_skips_the_waiting_glob_naming_it_and_the_others_release_nothing() -> (
    None
):
    tracker = grouped(*glob("a", "xyz"), *glob("b", "uv", ["a"]), ("c", "c", ()))
    assert tracker.end(0, succeeded=True) == Released()
    assert tracker.end(1, succeeded=False) == Released(skipped=[(3, 1), (4, 1)])
    assert tracker.is_ended(3)
    assert tracker.is_ended(4)
    assert not tracker.is_ended(5)
    assert tracker.end(2, succeeded=True) == Released()
    assert tracker.end(2, succeeded=False) == Released()
    assert tracker.end(0, succeeded=False) == Released()


def test_every_failed_expansion_after_the_first_releases_nothing_more() -> None:
    tracker = grouped(*glob("a", "xy"), *glob("b", "u", ["a"]))
    assert tracker.end(1, succeeded=False) == Released(skipped=[(2, 1)])
    assert tracker.end(0, succeeded=False) == Released()


def test_a_glob_that_matched_nothing_is_one_failed_job_that_skips_its_dependents() -> None:
    """A glob without matches is a single job named after the config job."""
    tracker = grouped(("a", "a", ()), *glob("b", "uv", ["a"]), ("c", "c", ["b"]))
    assert tracker.initially_ready() == [0]
    assert tracker.end(0, succeeded=False) == Released(skipped=[(1, 0), (2, 0), (3, 1)])


def test_skips_through_groups_are_transitive_each_naming_the_first_job_it_waited_on() -> None:
    """a <- b <- c, all globs: c names the first expansion of b skipped, b the
    failed expansion of a; every cause is recorded before the jobs it skips."""
    tracker = grouped(*glob("a", "xy"), *glob("b", "uv", ["a"]), *glob("c", "st", ["b"]))
    released = tracker.end(1, succeeded=False)
    assert released.skipped == [(2, 1), (3, 1), (4, 2), (5, 2)]
    assert all(tracker.is_ended(i) for i in range(1, 6))
    assert not tracker.is_ended(0)
    assert tracker.end(0, succeeded=True) == Released()


def test_a_job_waiting_for_a_plain_job_and_a_glob_waits_for_both() -> None:
    tracker = grouped(("p", "p", ()), *glob("g", "xy"), ("q", "q", ["g", "p"]))
    assert tracker.initially_ready() == [0, 1, 2]
    assert tracker.end(1, succeeded=True) == Released()
    assert tracker.end(2, succeeded=True) == Released()
    assert tracker.end(0, succeeded=True) == Released(ready=[3])


def test_a_job_waiting_for_a_plain_job_and_a_glob_is_skipped_when_the_plain_job_fails() -> None:
    tracker = grouped(("p", "p", ()), *glob("g", "xy"), ("q", "q", ["g", "p"]))
    assert tracker.end(1, succeeded=True) == Released()
    assert tracker.end(0, succeeded=False) == Released(skipped=[(3, 0)])
    assert tracker.end(2, succeeded=True) == Released()


def test_one_expansion_named_on_its_own_is_waited_for_alone() -> None:
    tracker = grouped(*glob("g", "xy"), ("one", "one", ["g[y]"]), ("all", "all", ["g", "g[y]"]))
    assert tracker.end(1, succeeded=True) == Released(ready=[2])
    assert tracker.end(0, succeeded=True) == Released(ready=[3])


def test_one_expansion_named_on_its_own_skips_only_its_dependent_when_it_fails() -> None:
    tracker = grouped(*glob("g", "xy"), ("one", "one", ["g[y]"]), ("all", "all", ["g", "g[y]"]))
    assert tracker.end(0, succeeded=False) == Released(skipped=[(3, 0)])
    assert tracker.end(1, succeeded=True) == Released(ready=[2])


def test_a_diamond_of_globs_releases_its_bottom_once_both_sides_succeeded() -> None:
    """t <- l, t <- r, (l, r) <- z; every one a glob of two files."""
    tracker = grouped(
        *glob("t", "ab"),
        *glob("l", "ab", ["t"]),
        *glob("r", "ab", ["t"]),
        *glob("z", "ab", ["l", "r"]),
    )
    assert tracker.initially_ready() == [0, 1]
    assert tracker.end(0, succeeded=True) == Released()
    assert tracker.end(1, succeeded=True) == Released(ready=[2, 3, 4, 5])
    for side in (2, 3, 4):
        assert tracker.end(side, succeeded=True) == Released()
    assert tracker.end(5, succeeded=True) == Released(ready=[6, 7])


def test_a_diamond_of_globs_whose_top_fails_skips_every_other_job_once() -> None:
    tracker = grouped(
        *glob("t", "ab"),
        *glob("l", "ab", ["t"]),
        *glob("r", "ab", ["t"]),
        *glob("z", "ab", ["l", "r"]),
    )
    released = tracker.end(1, succeeded=False)
    assert released.skipped == [(2, 1), (3, 1), (4, 1), (5, 1), (6, 2), (7, 2)]
    assert tracker.end(0, succeeded=True) == Released()


def test_a_diamond_of_globs_whose_side_fails_skips_the_bottom_naming_that_side() -> None:
    tracker = grouped(
        *glob("t", "ab"),
        *glob("l", "ab", ["t"]),
        *glob("r", "ab", ["t"]),
        *glob("z", "ab", ["l", "r"]),
    )
    tracker.end(0, succeeded=True)
    tracker.end(1, succeeded=True)
    assert tracker.end(2, succeeded=True) == Released()
    assert tracker.end(5, succeeded=False) == Released(skipped=[(6, 5), (7, 5)])
    for side in (3, 4):
        assert tracker.end(side, succeeded=True) == Released()


def test_a_group_named_twice_is_waited_for_once() -> None:
    tracker = grouped(*glob("g", "xy"), ("q", "q", ["g", "g"]))
    assert tracker.end(0, succeeded=True) == Released()
    assert tracker.end(1, succeeded=True) == Released(ready=[2])


def test_a_name_that_is_no_job_or_group_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        grouped(("a", "a", ()), ("b", "b", ["nope"]))


def test_a_glob_of_ten_thousand_on_a_glob_of_ten_thousand_takes_linear_memory() -> None:
    """One barrier per group, not an edge per pair of expansions: a hundred million
    edges would take gigabytes; building and running it takes a few megabytes."""
    size = 10_000
    files = [f"f{i}.log" for i in range(size)]
    tracemalloc.start()
    try:
        tracker = grouped(*glob("a", files), *glob("b", files, ["a"]))
        assert tracker.initially_ready() == list(range(size))
        for index in range(size - 1):
            assert tracker.end(index, succeeded=True) == Released()
        assert tracker.end(size - 1, succeeded=True).ready == list(range(size, 2 * size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, f"peak {peak / 1e6:.0f} MB"


def test_a_failed_expansion_of_ten_thousand_skips_the_waiting_glob_of_ten_thousand_at_once() -> (
    None
):
    size = 10_000
    files = [f"f{i}.log" for i in range(size)]
    tracker = grouped(*glob("a", files), *glob("b", files, ["a"]))
    released = tracker.end(7, succeeded=False)
    assert released.skipped == [(size + i, 7) for i in range(size)]
    for index in range(size):
        assert tracker.end(index, succeeded=True) == Released()
