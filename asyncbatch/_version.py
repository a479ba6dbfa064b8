"""The version, as a plain constant: read without importlib.metadata (which costs
~15 ms of start-up), and by setuptools for the package metadata."""

__version__ = "0.1.0"
