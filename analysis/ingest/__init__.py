"""Ingest: the manifest and fetch (``sources``), one reader per official format (``readers``),
the LA register (``geography``) and the validated LA-year panel (``panel``)."""
