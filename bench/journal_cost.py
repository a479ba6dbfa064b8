"""What the journal costs on many small jobs: the whole command, three ways.

(a) no ``--output`` (no journal); (b) ``--output`` as shipped (each line written
to the file as its job ends, fsync'd by a background thread within half a second);
(c) ``--output`` with that thread syncing back to back (``fsync_interval=0``: as
close to an fsync per line as the event loop can be without waiting for the disk).
(d) ``--output`` with no fsync until the end (an interval of an hour): against (b),
what the background fsync costs. (c) and (d) run through this script as a driver,
which makes the journal the CLI opens use their interval (``Journal(...,
fsync_interval=SECONDS)``) and then calls the CLI; nothing in the package changes.
Variants alternate, ``--repeat`` times; medians are printed.

    python bench/journal_cost.py [--jobs 20000] [--repeat 5] [--variants abcd]
    python bench/journal_cost.py --drive 0 run CONFIG -o OUT ...   # (c) by hand
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaling import FILES, write_batch


def drive(interval: float, argv: list[str]) -> None:
    """Run the asyncbatch CLI with the journal's fsync interval set to ``interval``."""
    import functools

    from asyncbatch.__main__ import main
    from asyncbatch.output import journal

    journal.Journal = functools.partial(journal.Journal, fsync_interval=interval)  # type: ignore[misc]
    sys.argv = ["asyncbatch", *argv]
    main()


def commands(config: Path, out: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "asyncbatch", "run", str(config), "-j", "4", "-q"]
    return {
        "a": cli,
        "b": [*cli, "-o", str(out)],
        "c": [sys.executable, __file__, "--drive", "0", *cli[3:], "-o", str(out)],
        "d": [sys.executable, __file__, "--drive", "3600", *cli[3:], "-o", str(out)],
    }


def measure(jobs: int, repeat: int, variants: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        folder = Path(tmp)
        config = write_batch(folder, jobs)
        argvs = commands(config, folder / "out.json")
        times: dict[str, list[float]] = {variant: [] for variant in variants}
        for _ in range(repeat):
            for variant in variants:
                started = time.perf_counter()
                subprocess.run(argvs[variant], check=True, stdout=subprocess.DEVNULL)
                times[variant].append(time.perf_counter() - started)
        for variant in variants:
            print(f"  {variant}: " + " ".join(f"{t:.3f}" for t in times[variant]))
        return {variant: statistics.median(times[variant]) for variant in variants}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--drive":
        drive(float(sys.argv[2]), sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description="What the journal costs on many small jobs.")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", default="abcd", help="any of a, b, c, d")
    args = parser.parse_args()
    print(f"{args.jobs} file_size jobs over {FILES} files, -j 4, {args.repeat} runs each")
    medians = measure(args.jobs, args.repeat, args.variants)
    for variant, median in medians.items():
        print(f"({variant}) median {median:.3f} s")


if __name__ == "__main__":
    main()
