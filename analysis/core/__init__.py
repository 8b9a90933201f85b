"""Core: every folder the pipeline uses (``paths``) and the error types (``errors``)."""
