"""Run: the study (every outcome x specification), the content-keyed build and the editions."""
