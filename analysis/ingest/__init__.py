"""Ingest: public data from the manifest to the validated LA-year panel.

The manifest and fetch (``sources``), one reader per official format
(``readers``), the LA register (``geography``) and the validated LA-year
panel (``panel``).
"""
