"""Readers: each turns one official file format into the tidy long table.

Every reader returns a DataFrame with the columns of :data:`TIDY_COLUMNS`
(see :mod:`analysis.ingest.readers.common`): one row per area, reporting year and
measure, the value as float (missing when suppressed), the suppression flag and
the token that was in the file, and the manifest id of the source.
"""
