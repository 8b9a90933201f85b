"""Core: every folder the pipeline uses (``paths``), the error types (``errors``), the atomic writer (``files``)."""
