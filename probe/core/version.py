"""probe's version, written into every case file it saves."""

__version__ = "0.1.0"
