"""The resumable grid loop: run every config the store lacks, save each record the moment it is done.

A grid run killed part-way (Ctrl-C, SIGKILL, a lost machine) loses at most the run in flight: the
next call with the same store and configs skips the finished records (docs/design.md#results-and-resuming).
"""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any, Callable

from tqdm.auto import tqdm

from .store import RecordStore


def expand_grid(spec: dict) -> list[dict]:
    """The cartesian product of the list-valued fields of ``spec``; other values are kept as is.

    Configs come in ``itertools.product`` order over the fields in ``spec``'s order: the first
    list-valued field varies slowest, the last fastest. To give a field a list as its *value*,
    wrap it in another list (``{"topk": [[100, 1000]]}``).

    Example::

        expand_grid({"dataset": "mnist-mosaic", "bits": [16, 32], "method": ["pga", "mainstay"]})
        # [{"dataset": "mnist-mosaic", "bits": 16, "method": "pga"},
        #  {"dataset": "mnist-mosaic", "bits": 16, "method": "mainstay"},
        #  {"dataset": "mnist-mosaic", "bits": 32, "method": "pga"},
        #  {"dataset": "mnist-mosaic", "bits": 32, "method": "mainstay"}]
    """
    if not isinstance(spec, dict):
        raise ValueError(f"a grid spec must be a dict of field -> value or list of values, got {type(spec).__name__}")
    axes = []
    for field, value in spec.items():
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"grid field {field!r} is an empty list, so the grid would be empty; give it a value")
            axes.append(list(value))
        else:
            axes.append([value])
    fields = list(spec)
    return [copy.deepcopy(dict(zip(fields, values, strict=True))) for values in itertools.product(*axes)]


def run_grid(
    store: RecordStore,
    configs: list[dict],
    run_one: Callable[[dict], tuple[dict, dict]],
    *,
    progress: bool = True,
) -> list[dict]:
    """Run ``run_one`` on each config ``store`` has no record of, and return every record in order.

    Args:
        store: where finished records live; a config with a record is skipped.
        configs: the runs, in the order to run them (see :func:`expand_grid`).
        run_one: ``run_one(config) -> (metrics, timings)``, two dicts of JSON values. It gets a
            copy of the config. Its wall time is added to the timings as ``wall_seconds`` unless
            it reports one itself. Each result is written to the store before the next run starts.
        progress: show a tqdm bar over the whole grid; it starts at the number of finished
            records, so its ETA counts only the remaining runs.

    Returns:
        The record of every config, in ``configs`` order (duplicates give the same record).

    An exception from ``run_one`` propagates; the records finished before it are kept, and the next
    call resumes from there. Existing records are read (and so validated) before anything runs.
    """
    configs = list(configs)
    keys = [store.key_of(config) for config in configs]
    done: dict[str, Any] = {}  # key -> record (store.get of a config it has)
    for config, key in zip(configs, keys, strict=True):
        if key not in done and store.has(config):
            done[key] = store.get(config)
    finished_keys = set(done)
    finished_before = sum(key in finished_keys for key in keys)
    with tqdm(
        total=len(configs), initial=finished_before, desc="grid", unit="run", disable=not progress
    ) as bar:
        for config, key in zip(configs, keys, strict=True):
            if key in done:
                if key not in finished_keys:
                    bar.update(1)  # a duplicate of a config run earlier in this call
                continue
            bar.set_postfix_str(key, refresh=False)
            start = time.perf_counter()
            result = run_one(copy.deepcopy(config))
            seconds = time.perf_counter() - start
            metrics, timings = _check_result(result, key)
            timings = {**timings}
            timings.setdefault("wall_seconds", seconds)
            store.put(config, metrics, timings)
            done[key] = store.get(config)
            bar.update(1)
    return [done[key] for key in keys]


def _check_result(result: Any, key: str) -> tuple[dict, dict]:
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(r, dict) for r in result)):
        raise TypeError(
            f"run_one must return a (metrics, timings) tuple of two dicts; for {key} it returned "
            f"{type(result).__name__}"
        )
    return result


__all__ = ["expand_grid", "run_grid"]
