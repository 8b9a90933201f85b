"""Child-level extracts (SSDA903, CIN census): readers, validation, code lists, synthetic data.

Used only when an author has child-level records (inside DfE or the ONS Secure
Research Service); everything in the repository is tested on synthetic records.
``readers`` documents the tables and the validation rules, ``codes`` where the
code lists come from, ``synthetic`` the generator for tests and benchmarks.
"""
from analysis.childlevel.readers import read_903_episodes, read_903_header, read_cin_census, validate_903, validate_cin

__all__ = ["read_903_header", "read_903_episodes", "read_cin_census", "validate_903",
           "validate_cin"]
