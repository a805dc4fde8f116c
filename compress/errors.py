"""Errors shown to users as one line (the CLIs catch GsError and exit non-zero)."""


class GsError(Exception):
    """Base class of every error the command-line tools report as a single line."""


class CheckpointError(GsError):
    """A checkpoint is missing, corrupt, or does not match the architecture."""


class TeacherError(GsError):
    """The teacher cannot be fetched, verified or loaded."""


class UnsupportedNormError(GsError):
    """A generator's normalisation has no per-image affine form (e.g. batch norm)."""
