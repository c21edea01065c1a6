"""The one exception type the CLI turns into a clear message (no traceback)."""


class PipelineError(Exception):
    """Bad input or configuration: the message names the problem and the fix."""
