"""The package version, in one place (read by packaging and by every written document)."""

__version__ = "0.1.0"
