"""Data-parallel training and adversarial training under ``torchrun`` (one process per device).

``torchrun --nproc_per_node N -m hashguard train|defend ...`` starts N copies of the command; each
reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from its environment, and :func:`init_from_env`
joins them in one process group (gloo on CPU, NCCL on GPU, rank r on ``cuda:LOCAL_RANK``). The
trainer (:func:`hashguard.hashing.train_hash_model`) and the adversarial-training loop
(:meth:`hashguard.defenses.base.Defense.fit`) then follow one scheme, the same for any number of
ranks:

- every rank draws the same seeded permutation of the training set and cuts it into the same
  global batches as a single process would; rank r takes the r-th contiguous slice of each global
  batch (:func:`shard`), so the global batch *is* the single-process batch;
- the code buffers the objectives and defenses keep of the whole training set (the objective's
  continuous ``U``, a defense's sign codes ``B``) are refreshed with the codes of the *global*
  batch, all-gathered in rank order (:func:`gather_rows`), so every rank holds the same buffers
  as the single process;
- the inner attack of adversarial training runs on the plain module (no wrapper, no collective
  inside PGD): it only differentiates with respect to the images of the rank's own slice;
- each rank's loss is weighted by its share of the global batch (``b_r / B``) and the gradients
  are summed over ranks (:func:`all_reduce_gradients`), so the step equals the single-process step
  for every loss that is a mean of per-item terms (DPSH, DPH, CSQ and the defenses' adversarial
  terms). DCH and HashNet weight their pairs by the counts of similar pairs in the batch; under
  torchrun those counts are each rank's own (a close, not an exact, match);
- rank 0 alone writes checkpoints and resume files (:func:`write_on_rank_zero`; the others wait
  at a barrier) and alone runs the per-epoch validation, whose numbers it sends to the others.

Batch normalisation. ``SyncBatchNorm`` needs GPUs (its kernels refuse CPU tensors), so:

- on CPU (gloo) every rank normalises its slice with the slice's own statistics and updates its
  own running statistics; at the end of every epoch (before any checkpoint or resume file is
  written) rank 0's parameters and buffers are broadcast to every rank, so the files hold rank 0's
  running statistics and every rank continues from exactly what a resume would restore. A model
  without batch norm gets the single-process weights up to float rounding; with batch norm the
  per-slice statistics make the run close to, not equal to, a single process's with the global
  batch;
- on GPU (NCCL) every batch-norm layer is converted to ``torch.nn.SyncBatchNorm``
  (:func:`prepare_model`), which normalises with the statistics of the global batch, as one
  process would; the saved checkpoint holds ordinary ``BatchNorm`` weights.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Tuple, TypeVar

import torch
from torch import nn

from .errors import InputError

logger = logging.getLogger("hashguard.data_parallel")
ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the process group: its rank, the number of ranks, its local rank."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Whether more than one process trains together (a process group is initialised)."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files, logs and evaluates."""
        return self.rank == 0


SINGLE = Ranks()


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` with more than one process."""
    return all(name in os.environ for name in ENVIRONMENT) and int(os.environ.get("WORLD_SIZE", "1")) > 1


def current_ranks() -> Ranks:
    """The ranks of the initialised default process group, or :data:`SINGLE` without one."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return SINGLE
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def init_from_env(device: str) -> Tuple[Ranks, str]:
    """Join the process group ``torchrun`` set up, if any; returns ``(ranks, this rank's device)``.

    Without torchrun (or with one process) nothing happens: ``(SINGLE, device)``. Under torchrun the
    backend is NCCL when ``device`` is CUDA (rank r then uses ``cuda:LOCAL_RANK``; a ``cuda:N`` given
    by hand is refused, torchrun assigns the GPUs) and gloo on CPU. ``mps`` is refused: PyTorch has
    no collective backend for it.
    """
    import torch.distributed as dist

    if not launched_by_torchrun():
        return SINGLE, device
    if device == "mps":
        raise InputError("torchrun with --device mps: PyTorch has no process-group backend for Apple GPUs; "
                         "use --device cpu (gloo) or CUDA GPUs (NCCL)")
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.startswith("cuda"):
        if device != "cuda":
            raise InputError(f"--device {device} under torchrun: each rank uses the GPU of its LOCAL_RANK; "
                             "give --device cuda (or auto) and choose GPUs with CUDA_VISIBLE_DEVICES")
        if local_rank >= torch.cuda.device_count():
            raise InputError(f"torchrun started local rank {local_rank} but this machine has "
                             f"{torch.cuda.device_count()} GPU(s); lower --nproc_per_node")
        torch.cuda.set_device(local_rank)
        device, backend = f"cuda:{local_rank}", "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    ranks = current_ranks()
    logger.info("rank %d of %d joined the %s process group on %s", ranks.rank, ranks.world_size, backend, device)
    return ranks, device


def shutdown() -> None:
    """Leave the process group (at the end of a torchrun command)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def prepare_model(model: M, ranks: Ranks) -> M:
    """Make the ranks' copies identical (rank 0's parameters and buffers) and, on CUDA, switch
    batch norm to ``SyncBatchNorm`` (statistics of the global batch, layers replaced in place).
    Returns ``model`` itself."""
    if not ranks.active:
        return model
    if next(model.parameters()).device.type == "cuda":
        model = convert_sync_batchnorm(model)
    broadcast_state(model, ranks)
    return model


def convert_sync_batchnorm(model: M) -> M:
    """Replace every ``BatchNorm`` layer of ``model`` by ``SyncBatchNorm`` in place (its parent's
    attribute), keeping the object ``model`` (a HashModel stays a HashModel). ``SyncBatchNorm``
    keeps ``BatchNorm``'s state-dict keys, so a checkpoint saved from the converted model loads
    into the ordinary architecture."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
            setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
        else:
            convert_sync_batchnorm(child)
    return model


def shard(global_size: int, ranks: Ranks) -> slice:
    """The positions of rank r's part of a global batch of ``global_size`` items: the r-th of
    ``world_size`` contiguous, near-equal slices (``torch.tensor_split``'s sizes)."""
    base, extra = divmod(int(global_size), ranks.world_size)
    lo = ranks.rank * base + min(ranks.rank, extra)
    return slice(lo, lo + base + (1 if ranks.rank < extra else 0))


def shard_size(global_size: int, ranks: Ranks) -> int:
    part = shard(global_size, ranks)
    return part.stop - part.start


def check_batch_sizes(batch_sizes: Iterable[int], ranks: Ranks, *, flag: str = "--batch-size") -> None:
    """Every global batch must give each rank at least one item (a rank without images would have
    nothing to differentiate and batch norm nothing to normalise)."""
    if not ranks.active:
        return
    smallest = min(batch_sizes, default=ranks.world_size)
    if smallest < ranks.world_size:
        raise InputError(f"a batch of {smallest} items cannot be split across {ranks.world_size} ranks; "
                         f"raise {flag} or start fewer processes (torchrun --nproc_per_node)")


def start_training(model: M, n_items: int, batch_size: int, progress: bool, log):
    """What every data-parallel training loop (hashing and adversarial) does first: check that each
    global batch of ``n_items`` split by ``batch_size`` gives every rank an item, give every rank
    rank 0's weights (SyncBatchNorm on CUDA), and keep progress bars and logs on rank 0.

    Returns ``(model, ranks, progress, log)``; outside torchrun the model, the single rank and
    ``progress`` / ``log`` unchanged."""
    from .data.batching import split_order

    ranks = current_ranks()
    check_batch_sizes((c.numel() for c in split_order(torch.arange(n_items), batch_size)), ranks)
    model = prepare_model(model, ranks)  # identical start on every rank; SyncBatchNorm on CUDA
    return model, ranks, progress and ranks.main, (log if ranks.main else None)


def gather_rows(rows: torch.Tensor, global_size: int, ranks: Ranks) -> torch.Tensor:
    """All ranks' ``rows`` (each rank's slice of a global batch of ``global_size`` items, split as
    :func:`shard` does) concatenated in rank order: the rows of the whole global batch."""
    if not ranks.active:
        return rows
    import torch.distributed as dist

    sizes = [shard_size(global_size, Ranks(r, ranks.world_size)) for r in range(ranks.world_size)]
    largest = max(sizes)
    padded = rows.new_zeros((largest, *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    parts = [torch.empty_like(padded) for _ in range(ranks.world_size)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def all_reduce_gradients(parameters: Sequence[nn.Parameter], ranks: Ranks,
                         extra: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """Sum every parameter's gradient over the ranks (one flat all-reduce), and ``extra`` (e.g. the
    batch's weighted loss) with it; returns the summed ``extra``. A parameter without a gradient
    counts as zero and gets the sum (every rank then steps it alike)."""
    if not ranks.active:
        return extra
    import torch.distributed as dist

    params = [p for p in parameters if p.requires_grad]
    if not params:
        return extra
    device = params[0].device
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    pieces = [g.reshape(-1).float() for g in grads]
    if extra is not None:
        pieces.append(extra.detach().reshape(-1).float().to(device))
    flat = torch.cat(pieces)
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(g).to(g.dtype)
        offset += n
    return None if extra is None else flat[offset:].view_as(extra).to(extra.dtype)


def broadcast_state(module: nn.Module, ranks: Ranks) -> None:
    """Copy rank 0's parameters and buffers (batch-norm running statistics) to every rank."""
    if not ranks.active:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def broadcast_object(value: Any, ranks: Ranks) -> Any:
    """Rank 0's ``value`` (a picklable object, e.g. the epoch's validation metrics) on every rank."""
    if not ranks.active:
        return value
    import torch.distributed as dist

    box = [value if ranks.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ranks: Ranks) -> None:
    if ranks.active:
        import torch.distributed as dist

        dist.barrier()


def write_on_rank_zero(write: Callable[[], Any], path: str | Path, ranks: Ranks, what: str = "file") -> Any:
    """Run ``write()`` (which writes ``path``) on rank 0 only; the other ranks wait at a barrier
    until the file is complete. Each write is logged on the ``hashguard.data_parallel`` logger as
    ``rank R wrote WHAT PATH``, so a per-rank log shows who wrote what. Returns rank 0's result
    on every rank (None elsewhere)."""
    result = None
    if ranks.main:
        result = write()
        logger.info("rank %d wrote %s %s", ranks.rank, what, path)
    barrier(ranks)
    return result


__all__ = [
    "Ranks",
    "SINGLE",
    "all_reduce_gradients",
    "barrier",
    "broadcast_object",
    "broadcast_state",
    "check_batch_sizes",
    "convert_sync_batchnorm",
    "current_ranks",
    "gather_rows",
    "init_from_env",
    "launched_by_torchrun",
    "prepare_model",
    "shard",
    "shard_size",
    "shutdown",
    "write_on_rank_zero",
]
