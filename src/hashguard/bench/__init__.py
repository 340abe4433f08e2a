"""Bench layer: a results store of JSON records and a resumable grid runner.

    RecordStore   one JSON record per run in ``<directory>/records/``, keyed by its config; refuses a
                  directory made with another format, hashguard version or protocol
    expand_grid   the cartesian product of a spec's list-valued fields
    run_grid      run the configs a store lacks, writing each record atomically as soon as it is done

Example::

    from hashguard.bench import RecordStore, expand_grid, run_grid

    store = RecordStore("results/attacks", protocol={"eps": 8 / 255, "steps": 100})
    configs = expand_grid({"dataset": "mnist-mosaic", "bits": [16, 32], "method": ["pga", "mainstay"]})
    records = run_grid(store, configs, lambda config: ({"map": 0.5}, {}))

Kill the run at any point and call ``run_grid`` again: the finished records are kept and skipped.
"""

from .grid import expand_grid, run_grid
from .store import RESULTS_FORMAT, RecordStore

__all__ = ["RecordStore", "RESULTS_FORMAT", "expand_grid", "run_grid"]
