"""Shared plumbing for the kit: errors, atomic I/O, data readers, model and Java resolution."""

__version__ = "0.1.0"
