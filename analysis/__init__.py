"""Open, rebuildable matched difference-in-differences evaluation of Signs of Safety.

The package is layered in the order the data flow (``ARCHITECTURE.md``); a layer
imports only the layers before it:

``paths``, ``errors`` -> ``ingest`` (sources, readers, validated panel) -> ``methods``
(matching, estimation, inference, evidence) -> ``design`` (the study file) ->
``childlevel`` (child-level extracts, disclosure) -> ``run`` (study, cached build,
editions) -> ``book`` (what the chapters call) -> ``cli``.
"""
import os

# One BLAS thread: on this 2-core machine OpenBLAS threading slowed the small
# dense solves of the estimators 20-50x when other processes were running.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
