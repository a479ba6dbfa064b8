"""Every read of an input file, and the drivers that run a kernel over one.

- :mod:`.scan`: stat and open safely (regular files only, never blocking, confined
  to ``--root``), and run a kernel over a file synchronously: the one code path of
  threads, worker processes and Dask workers (standard library only);
- :mod:`.confine`: ``--root`` checks on paths and on opened descriptors;
- :mod:`._threads`: the daemon threads every blocking call runs in;
- :mod:`.batch`: many small files in one thread hop;
- :mod:`.stream`: one file streamed with aiofiles, or scanned in a worker process.

Imports nothing here, so that a worker process importing :mod:`.scan` loads the
standard library only.
"""
