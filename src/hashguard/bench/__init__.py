"""Bench layer: the benchmark grid, its resumable runner, the results store and the report.

    BenchSpec, load_spec_file  a grid (datasets x backbones x objectives x bits, attacks, defenses,
                               convergence and transfer runs) from code, a preset or a TOML/YAML file
    get_preset, list_presets   the ``quick`` and ``paper`` grids
    run_bench                  run every missing run of a grid into a results directory, then report
    write_report               report.md + self-contained report.html from a results directory
    worst_case                 robust (worst-case over attacks) mAP from per-query records
    RecordStore                one JSON record per run, refusing other versions and protocols
    expand_grid, run_grid      the generic resumable grid loop underneath

Example::

    from hashguard.bench import get_preset, run_bench

    result = run_bench(get_preset("quick"), "runs/quick")   # about 15 min on 2 CPU cores
    print(result["report"]["html"])

Kill the run at any point and call it again: the finished records are kept and skipped.
"""

from .grid import expand_grid, run_grid
from .presets import get_preset, list_presets
from .report import write_report
from .robust import worst_case
from .runner import run_bench
from .spec import BenchSpec, load_spec_file
from .store import RESULTS_FORMAT, RecordStore

__all__ = [
    "BenchSpec",
    "RESULTS_FORMAT",
    "RecordStore",
    "expand_grid",
    "get_preset",
    "list_presets",
    "load_spec_file",
    "run_bench",
    "run_grid",
    "worst_case",
    "write_report",
]
