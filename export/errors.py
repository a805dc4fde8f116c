"""Errors of gs-export (shown as one line by the CLI, exit code 2)."""
from compress.errors import GsError


class ExportError(GsError):
    """An artifact cannot be produced or fails its validation."""
