"""Methods: frames in, numbers out (matching, estimation, inference, evidence, SDID, sensitivity); no files."""
