"""The ``hashguard`` command: a thin layer that parses arguments, calls the library and prints.

    hashguard list attacks|defenses|datasets|backbones|objectives|presets|protocols [--json]
    hashguard datasets
    hashguard train --dataset mnist-mosaic --backbone cnn --hash dpsh --bits 32 --seed 0 --out model.pt
    hashguard evaluate --model model.pt [--topk K] [--json FILE]
    hashguard attack --model model.pt --method pga [--targeted] [--queries N] --json FILE
    hashguard attack --model model.pt --method nag --threat injection [--surrogate S.pt] --json FILE
    hashguard defend --model model.pt --method saat [--epochs N] [--seed S] --out defended.pt
    hashguard bench --preset quick --out runs/quick          (or --grid my-grid.toml; --dry-run: the plan)
    hashguard status runs/quick
    hashguard report runs/quick [more folders --out DIR] [--format md|csv|json]

``--help`` and ``list`` never import torch (seconds of start-up): the names offered as choices come
from the generated table of :mod:`hashguard._catalog`, and everything else is imported inside the
command that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from . import __version__
from ._atomic import atomic_write_json
from ._paths import check_output_file
from .errors import InputError
from .precision import PRECISIONS

WORKERS = min(4, os.cpu_count() or 1)
WORKERS_HELP = "image-decoding processes for datasets read from disk (built-in data is in memory)"
DEVICE_HELP = "auto (cuda if present, else cpu), cpu, cuda, cuda:N, or mps on Apple GPUs"
TOPK_HELP = "rank cut-off for mAP (default: the dataset's paper convention; 0 = whole database)"
PRECISION_HELP = ("precision of the model's forward passes: fp32 (default), bf16 or fp16 (torch.autocast; "
                  "perturbations, projections and losses stay fp32; fp16 training scales the loss)")


def _check_json_out(path: Optional[str]) -> None:
    """``--json``: a file checked before any work, or ``-`` for standard output."""
    if path and path != "-":
        check_output_file(path)


def _is_stdout(path: Optional[str]) -> bool:
    """``-``, or a path naming this process's standard output (``/dev/stdout``, the file stdout is
    redirected to): written through ``sys.stdout`` so its buffer and the JSON do not overlap."""
    if path == "-":
        return True
    if not path:
        return False
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return False


def _write_json(path: str, record: Dict[str, Any]) -> None:
    """``--json FILE`` written atomically (a link's target, a device directly); ``--json -`` to stdout."""
    import json

    if _is_stdout(path):
        sys.stdout.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()
    else:
        atomic_write_json(path, record)


def _summary_stream(json_path: Optional[str]):
    """Where the human-readable summary goes: stderr when the JSON goes to standard output."""
    return sys.stderr if _is_stdout(json_path) else sys.stdout


def _device(name: str) -> str:
    """``--device``: auto, cpu, cuda, cuda:N (a GPU this machine has), mps (where PyTorch has it)."""
    from ._params import resolve_device

    return resolve_device(name)


def _precision(args: argparse.Namespace, device: str):
    """``--precision``: checked for ``device``; the context every model forward of the command runs in."""
    from .precision import check_precision, mixed_precision

    return mixed_precision(check_precision(args.precision, device), device)


def _ranks(device: str):
    """Under ``torchrun --nproc_per_node N`` (train, defend): join the process group (gloo on CPU,
    NCCL on GPU); returns ``(ranks, this rank's device)``; a single process is left alone."""
    from .data_parallel import init_from_env

    return init_from_env(device)


def _check_flags(args: argparse.Namespace, flags: Dict[str, Any]) -> None:
    """Type and range of numeric flags (``{"--batch-size": Param(...)}``), before any work."""
    from ._params import check_value

    for flag, param in flags.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None:
            check_value(flag, param, value, syntax="flag")


def _int_flag(low: int, example: int):
    from ._params import Param

    return Param("int", low=low, example=example)


def _load_splits(dataset: str, seed: int, data_dir: Optional[str], image_size: Optional[int] = None,
                 resize: Optional[int] = None):
    from .data import load_splits

    try:
        return load_splits(dataset, seed, data_dir, image_size=image_size, resize=resize)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def _select(text: Optional[str]):
    """``--select``: an index (tuple outputs) or a key (dict outputs)."""
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _model_kwargs(text: Optional[str]) -> Dict[str, Any]:
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise SystemExit(f"error: --model-kwargs must be a JSON object such as '{{\"bits\": 32}}' ({err})") from None
    if not isinstance(value, dict):
        raise SystemExit(f"error: --model-kwargs must be a JSON object such as '{{\"bits\": 32}}', got {text!r}")
    return value


def _load_model(args: argparse.Namespace, device: str):
    """The model of ``--model CHECKPOINT`` or ``--model-def FILE.py:NAME --weights W``, its
    description for records, and its dataset's splits. Everything is checked here, before any work."""
    from .models import load_checkpoint, load_external_model
    from .models.checkpoint import check_config

    if (args.model is None) == (args.model_def is None):
        raise SystemExit("error: give exactly one of --model CHECKPOINT (written by hashguard train) or "
                         "--model-def FILE.py:NAME --weights STATE_DICT.pth (your own network)")
    if args.model is not None:
        extra = [f for f, v in (("--weights", args.weights), ("--input-norm", args.input_norm),
                                ("--model-kwargs", args.model_kwargs), ("--select", args.select)) if v is not None]
        if extra:
            raise SystemExit(f"error: {', '.join(extra)} go with --model-def (your own network), not with --model")
        model, config = load_checkpoint(args.model, map_location=device)
        check_config(config, str(args.model), required=("backbone", "bits", "dataset"))
        dataset = args.dataset or config["dataset"]
        if args.dataset and args.dataset != config["dataset"]:
            raise SystemExit(f"error: {args.model} was trained on {config['dataset']!r}, not {args.dataset!r}")
        data_dir = args.data_dir or config.get("data_dir")
        image_size = args.image_size if args.image_size is not None else config.get("image_size")
        resize = args.resize if args.resize is not None else config.get("resize")
        splits = _load_splits(dataset, int(config.get("seed", 0)), data_dir, image_size, resize)
        meta = {"dataset": dataset, "bits": int(config["bits"]), "hash_method": config.get("hash_method"),
                "backbone": config["backbone"], "model": str(args.model), "seed": int(config.get("seed", 0))}
        return model, meta, splits, config
    if args.input_norm is None:
        raise SystemExit("error: --model-def needs --input-norm: the normalisation your network was trained with "
                         "(imagenet, none, or MEAN/STD such as 0.5,0.5,0.5/0.25,0.25,0.25); hashguard feeds images "
                         "in [0, 1] and normalises inside the model")
    if args.dataset is None:
        raise SystemExit("error: --model-def needs --dataset (lists for your own list files with --data-dir DIR, "
                         "or a registered dataset: see `hashguard datasets`)")
    splits = _load_splits(args.dataset, 0, args.data_dir, args.image_size, args.resize)
    import torch

    from .data.batching import load_images

    example = load_images(splits.query, torch.arange(min(2, len(splits.query))))
    external, info = load_external_model(
        args.model_def, args.weights, input_norm=args.input_norm, output=args.output, select=_select(args.select),
        kwargs=_model_kwargs(args.model_kwargs), example=example, device=device,
    )
    meta = {"dataset": args.dataset, "bits": external.bits, "hash_method": getattr(args, "hash", None),
            "backbone": "external", "model": None, "seed": 0, **info}
    return external, meta, splits, None


def _names(kind: str) -> List[str]:
    """Registered names offered as choices, without importing the registries (``hashguard._catalog``)."""
    from ._catalog import names

    return names(kind)


def _add_model_options(p: argparse.ArgumentParser, *, objective: bool = False) -> None:
    """--model, or --model-def/--weights/--input-norm/... for a user's own network; --dataset etc."""

    p.add_argument("--model", default=None, help="checkpoint written by `hashguard train` (or --model-def)")
    g = p.add_argument_group("your own network (instead of --model)")
    g.add_argument("--model-def", default=None, metavar="FILE.py:NAME",
                   help="class or function in FILE.py that builds your network (called with --model-kwargs)")
    g.add_argument("--weights", default=None, metavar="STATE_DICT",
                   help="its weights: torch.save(net.state_dict(), path); read with weights_only=True, never unpickled")
    g.add_argument("--model-kwargs", default=None, metavar="JSON", help='keyword arguments of NAME, e.g. \'{"bits": 32}\'')
    g.add_argument("--input-norm", default=None, metavar="NORM",
                   help="normalisation it was trained with: imagenet, none, or MEAN/STD per channel "
                        "(e.g. 0.5,0.5,0.5/0.25,0.25,0.25); required with --model-def")
    g.add_argument("--output", default="logits", choices=["logits", "tanh"],
                   help="what the network returns: pre-activation codes (logits, default) or tanh outputs")
    g.add_argument("--select", default=None, metavar="INDEX|KEY",
                   help="the code tensor's index (tuple output) or key (dict output)")
    if objective:
        g.add_argument("--hash", default="dpsh", choices=_names("objectives"),
                       help="the objective your network was trained with: the defense's L_ori term (default dpsh)")
    p.add_argument("--dataset", default=None, choices=_names("datasets"),
                   help="dataset (default: the checkpoint's); `lists` reads your own list files from --data-dir")
    p.add_argument("--image-size", type=int, default=None,
                   help="resize + centre-crop disk images to this size (lists: files' own size by default; "
                        "benchmarks: 224)")
    p.add_argument("--resize", type=int, default=None, help="shorter side before the crop (benchmarks: 256)")


def _topk(arg: Optional[int], splits) -> Optional[int]:
    if arg is None:
        return splits.default_topk
    if arg < 0:
        raise SystemExit(f"error: --topk must be >= 0 (0 = whole database), got {arg}")
    return arg or None


def cmd_datasets(args: argparse.Namespace) -> int:
    from ._catalog import entries

    for entry in entries("datasets"):
        where = "reads --data-dir" if entry["source"] == "--data-dir" else "built in"
        print(f"{entry['name']:14s} {where}")
    return 0


def _pixels(value: Any) -> str:
    """A budget in pixel units as people write it: 8/255, 0.5."""
    if isinstance(value, float) and value > 0 and abs(value * 255 - round(value * 255)) < 1e-6:
        return f"{round(value * 255)}/255"
    return _value(value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_value(v) for v in value)
    return str(value)


def _settings(defaults: Dict[str, Any], skip: tuple = ()) -> str:
    """``key=value`` of the defaults a table row shows (tables by their epochs, None left out)."""
    out = []
    for key, value in defaults.items():
        if key in skip or value is None:
            continue
        if isinstance(value, dict):
            out += [f"{key}.epochs={value['epochs']}"] if value.get("epochs") is not None else []
        elif key in ("eps", "step", "noise"):
            out.append(f"{key}={_pixels(value)}")
        else:
            out.append(f"{key}={_value(value)}")
    return " ".join(out)


def _print_table(header: List[str], rows: List[List[str]]) -> None:
    """Columns padded to their widest cell; the last one (a description) is not padded."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header) - 1)]
    for row in [header] + rows:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=True)] + [str(row[-1])]
        print("  ".join(cells).rstrip())


def _topk_text(value: Optional[int]) -> str:
    return "all" if value is None else str(value)


def cmd_list(args: argparse.Namespace) -> int:
    import json

    from ._catalog import entries

    items = entries(args.kind)
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    if args.kind == "attacks":
        _print_table(["NAME", "MODES", "EPS", "STEPS", "PAPER DEFAULTS", "DESCRIPTION"], [
            [e["name"], ",".join(e["modes"]), _pixels(e["defaults"]["eps"]),
             f"{e['defaults']['steps']}{' (fixed)' if e['fixed_steps'] else ''}",
             _settings(e["defaults"], skip=("eps", "steps")), e["description"]] for e in items])
    elif args.kind == "defenses":
        _print_table(["NAME", "EPOCHS", "EPS", "STEPS", "PAPER DEFAULTS", "DESCRIPTION"], [
            [e["name"], e["defaults"]["epochs"], _pixels(e["defaults"]["eps"]), e["defaults"]["steps"],
             _settings(e["defaults"], skip=("epochs", "eps", "steps")), e["description"]] for e in items])
    elif args.kind == "datasets":
        _print_table(["NAME", "SOURCE", "TOP-K", "DESCRIPTION"], [
            [e["name"], e["source"], _topk_text(e["default_topk"]), e["description"]] for e in items])
    elif args.kind == "objectives":
        _print_table(["NAME", "PARAMETERS", "DESCRIPTION"], [
            [e["name"], _settings(e["defaults"]) or "-", e["description"]] for e in items])
    elif args.kind == "presets":
        _print_table(["NAME", "MODELS", "RUNS", "DESCRIPTION"], [
            [e["name"], e["models"], f"{e['runs']} ({', '.join(f'{n} {k}' for k, n in e['runs_by_kind'].items())})",
             e["description"]] for e in items])
    elif args.kind == "protocols":
        for e in items:
            print(f"{e['name']}: {e['description']}")
            for key, value in e.items():
                if key in ("name", "description"):
                    continue
                if isinstance(value, dict):
                    print(f"  {key}:")
                    for k, v in value.items():
                        print(f"    {k:13s} {v}")
                    continue
                print(f"  {key:15s} {_pixels(value) if key in ('eps', 'step') else value}")
    else:
        _print_table(["NAME", "DESCRIPTION"], [[e["name"], e["description"]] for e in items])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ._params import check_bits
    from .hashing import TrainConfig, train_checkpoint
    from .hashing.trainer import train_schema

    # every value checked before any data is read or network built
    check_bits(args.bits, label="--bits", syntax="flag")
    schema = train_schema()
    _check_flags(args, {"--epochs": schema["epochs"], "--batch-size": schema["batch_size"], "--lr": schema["lr"],
                        "--lr-step": schema["lr_step"], "--warmup-epochs": schema["warmup_epochs"],
                        "--seed": schema["seed"], "--workers": schema["num_workers"],
                        "--image-size": _int_flag(1, 224), "--resize": _int_flag(1, 256)})
    for path in (args.out, args.out + ".json"):  # the checkpoint and its config, before training
        check_output_file(path)
    ranks, device = _ranks(_device(args.device))
    warmup = args.warmup_epochs if args.warmup_epochs is not None else (0 if args.pretrained else 2)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_step=args.lr_step,
        seed=args.seed,
        warmup_epochs=warmup,
        num_workers=args.workers,
    )
    config.validate()
    precision = _precision(args, device)
    splits = _load_splits(args.dataset, args.seed, args.data_dir, args.image_size, args.resize)
    topk = _topk(args.topk, splits)
    if ranks.main:
        print(splits.summary() + (f"; {ranks.world_size} torchrun ranks" if ranks.active else ""))
    with precision:
        record = train_checkpoint(
            splits, args.out, backbone=args.backbone, hash_method=args.hash, bits=args.bits, seed=args.seed,
            pretrained=args.pretrained, config=config, topk=topk, data_dir=args.data_dir, device=device,
            image_size=args.image_size, resize=args.resize,
            progress=not args.quiet, log=None if args.quiet else (lambda line: print(line, file=sys.stderr)),
        )
    if not ranks.main:
        return 0
    print(f"clean mAP@{topk or 'all'} = {record['clean_map']:.4f}  ({args.hash}, {args.backbone}, {args.bits} bits, "
          f"trained in {record['training']['seconds']:.0f} s) -> {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .hashing.evaluation import retrieval_map

    _check_json_out(args.json)
    model, meta, splits, _ = _load_model(args, _device(args.device))
    topk = _topk(args.topk, splits)
    value = retrieval_map(
        model, splits.query, splits.database, topk=topk, num_workers=args.workers, progress=not args.quiet
    )
    record = {
        "map": value,
        "topk": topk,
        **meta,
        "n_queries": len(splits.query),
        "n_database": len(splits.database),
        "version": __version__,
    }
    what = meta.get("model_def") or f"{meta['hash_method']}, {meta['backbone']}"
    print(f"mAP@{topk or 'all'} = {value:.4f}  ({record['dataset']}, {what}, {record['bits']} bits, "
          f"{record['n_queries']} queries)", file=_summary_stream(args.json))
    if args.json:
        _write_json(args.json, record)
    return 0


def _param(text: str):
    """``KEY=VALUE`` of ``--param``; VALUE read as JSON when it parses (numbers, true, {...})."""
    import json

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param takes KEY=VALUE (e.g. lr=0.5 or gan={{\"epochs\":5}}), got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def _print_attack(record: Dict[str, Any], file=None) -> None:
    rows = [("clean mAP", record["clean_map"]), ("attacked mAP", record["map"]), ("theory mAP", record["theory_map"])]
    if record["targeted"]:
        rows += [("clean t-MAP", record["clean_t_map"]), ("attacked t-MAP", record["t_map"]),
                 ("theory t-MAP", record["theory_t_map"])]
    p = record["perceptibility"]
    lines = [f"{record['method']} ({'targeted' if record['targeted'] else 'untargeted'}"
             f"{', transfer' if record['transfer'] else ''}), {record['n_queries']} queries, "
             f"eps {record['eps'] * 255:.3g}/255, {record['steps']} steps, mAP@{record['topk'] or 'all'}"]
    lines += [f"  {name:15s} {'-' if value is None else f'{value:.4f}'}" for name, value in rows]
    lines.append(f"  {'success rate':15s} {record['success_rate']:.3f}  ({record['success_definition']})")
    lines.append(f"  {'perturbation':15s} L-inf {p['linf'] * 255:.2f}/255, L2 {p['l2']:.3f}, RMSE {p['rmse']:.4f}")
    lines.append(f"  {'time':15s} {record['seconds_per_query']:.4f} s/query"
                 + (f" ({record['seconds_per_query_with_training']:.4f} with training)"
                    if "seconds_per_query_with_training" in record else ""))
    print("\n".join(lines), file=file or sys.stdout)


def _schema_keys(method: str) -> List[str]:
    from .attacks.schema import attack_schema

    return list(attack_schema(method))


def _attack_params(args: argparse.Namespace) -> Dict[str, Any]:
    """``--param KEY=VALUE`` and ``--eps`` / ``--steps`` / ``--early-stop``, each checked against the
    attack's schema (type and range) before anything is loaded."""
    from ._params import check_value
    from .attacks.registry import check_attack_params
    from .attacks.schema import attack_schema

    params = dict(args.param or [])
    schema = attack_schema(args.method)
    for key, flag in (("eps", "--eps"), ("steps", "--steps"), ("early_stop", "--early-stop")):
        value = getattr(args, key)
        if value is not None:
            params[key] = check_value(flag, schema[key], value, syntax="flag")
    params = check_attack_params(args.method, {**params, "targeted": args.targeted}, syntax="cli")
    params.pop("targeted")
    return params


def _protocol_args(args: argparse.Namespace) -> Tuple[str, Optional[str]]:
    """``--protocol NAME`` (checked before anything loads) and the queries/targets file: ``--protocol-file``,
    or, as before named protocols existed, a ``--protocol`` value that is a path to a .json file."""
    from .bench.protocols import DEFAULT, get_protocol

    name, path = args.protocol, args.protocol_file
    if name is not None and (name.endswith(".json") or os.sep in name):
        if path is not None:
            raise InputError(f"--protocol {name} looks like a file and --protocol-file is given too; "
                             "give the protocol's NAME to --protocol and the file to --protocol-file")
        name, path = None, name
    name = DEFAULT if name is None else name
    get_protocol(name)
    return name, path


INJECTION_FLAGS = {"--per-target": "per_target", "--source": "source", "--radius": "radius", "--mine": "mine",
                   "--noise-proxy": "noise_proxy", "--target-categories": "target_categories"}


def _target_categories(text: Optional[str]):
    """``--target-categories``: None (all), a count ``N``, or a list ``0,3,5``."""
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--target-categories takes a count (e.g. 5) or category indices (e.g. 0,3,5), got {text!r}") from None
    return values[0] if "," not in text and len(values) == 1 else values


def cmd_attack_injection(args: argparse.Namespace) -> int:
    """``hashguard attack --threat injection``: poisoned images appended to the victim's database in
    memory; benign queries of each target category judged (:mod:`hashguard.injection`)."""
    from .injection import evaluate_injection, table
    from .models import load_checkpoint

    _check_json_out(args.json)
    device = _device(args.device)
    for flag in ("--protocol", "--protocol-file", "--early-stop"):
        if getattr(args, flag[2:].replace("-", "_")) is not None:
            raise InputError(f"{flag} belongs to the query threat; --threat injection judges benign queries of each "
                             "target category (drop the flag)")
    params = _attack_params(argparse.Namespace(**{**vars(args), "targeted": True}))
    _check_flags(args, {"--batch-size": _int_flag(1, 128), "--seed": _int_flag(0, 0)})
    if args.queries is not None and args.queries < 1:
        raise InputError(f"--queries must be >= 1, got {args.queries}")
    if args.topk is not None and args.topk < 0:
        raise InputError(f"--topk must be >= 0 (0 = whole database), got {args.topk}")
    targets = _target_categories(args.target_categories)
    # every injection option checked before anything loads (the same checks evaluate_injection makes)
    for name, value, low in (("--radius", args.radius, 0), ("--per-target", args.per_target, 1), ("--mine", args.mine, 0)):
        if value is not None and value < low:
            raise InputError(f"{name} must be >= {low}, got {value}")
    if args.noise_proxy is not None and not args.noise_proxy >= 0:
        raise InputError(f"--noise-proxy must be >= 0 (the Gaussian std; 0 = off), got {args.noise_proxy}")
    precision = _precision(args, device)  # checked before the models load
    model, meta, splits, _ = _load_model(args, device)
    surrogate = None
    if args.surrogate:
        surrogate, s_config = load_checkpoint(args.surrogate, map_location=device)
        if s_config.get("dataset") != meta["dataset"]:
            raise InputError(f"surrogate {args.surrogate} was trained on {s_config.get('dataset')!r}, the victim on "
                             f"{meta['dataset']!r}; the injection needs one label space: use a surrogate of the "
                             "victim's dataset (another seed, backbone or objective is fine)")
    with precision:
        record = evaluate_injection(
            model, splits, args.method, surrogate=surrogate, targets=targets,
            per_target=args.per_target if args.per_target is not None else 10,
            source=args.source or "train", params=params,
            radius=args.radius if args.radius is not None else 5, topk="default" if args.topk is None else args.topk,
            queries=args.queries, mine=args.mine or 0, noise_proxy=args.noise_proxy or 0.0, seed=args.seed,
            batch_size=args.batch_size, progress=not args.quiet,
        )
    record.update({**meta, "surrogate": args.surrogate, "device": device, "precision": args.precision})
    print(table(record), file=_summary_stream(args.json))
    _write_json(args.json, record)
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    from .injection import check_threat

    if check_threat(args.threat) == "injection":
        return cmd_attack_injection(args)
    given = [flag for flag, key in INJECTION_FLAGS.items() if getattr(args, key) is not None]
    if given:
        raise InputError(f"{', '.join(given)} apply only with --threat injection; add --threat injection or drop them")
    return cmd_attack_query(args)


def cmd_attack_query(args: argparse.Namespace) -> int:
    from .bench.protocol import protocol_path, run_attack
    from .bench.protocols import resolve_for
    from .models import load_checkpoint

    _check_json_out(args.json)
    device = _device(args.device)
    try:
        protocol_name, protocol_file = _protocol_args(args)
        params = _attack_params(args)
        if args.queries is not None and args.queries < 1:
            raise ValueError(f"--queries must be >= 1, got {args.queries}")
        _check_flags(args, {"--batch-size": _int_flag(1, 128), "--seed": _int_flag(0, 0)})
        _precision(args, device)  # checked before the model is loaded
        model, meta, splits, config = _load_model(args, device)
        surrogate = s_config = None
        if args.surrogate:
            surrogate, s_config = load_checkpoint(args.surrogate, map_location=device)
        # the victim's split, which run_attack checks the surrogate against: the dataset, and the
        # checkpoint's seed (a user's own network has no seed to compare)
        victim_data = {"dataset": meta["dataset"], **({"seed": meta["seed"]} if config is not None else {})}
        if args.topk is not None and args.topk < 0:
            raise SystemExit(f"error: --topk must be >= 0 (0 = whole database), got {args.topk}")
        values = resolve_for(protocol_name, splits, topk=args.topk, queries=args.queries, eps=params.get("eps"))
        topk, n = values["topk"], values["queries"]
        if protocol_name != "default" and "eps" in _schema_keys(args.method):
            params["eps"] = values["eps"]  # the protocol's budget (the default leaves each attack's own)
        protocol = protocol_file or protocol_path(Path(args.json).resolve().parent, meta["dataset"], args.seed, n,
                                                  protocol_name)
        if not Path(protocol).is_file():
            check_output_file(protocol)  # drawn and saved before the attack runs
        with _precision(args, device):
            record = run_attack(
                model, splits, args.method, targeted=args.targeted, n_queries=n, seed=args.seed, topk=topk,
                surrogate=surrogate, params=params, protocol_file=protocol, batch_size=args.batch_size,
                progress=not args.quiet, victim_data=victim_data, surrogate_data=s_config, protocol=values,
            )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    record.update({**meta, "surrogate": args.surrogate, "protocol_file": str(protocol), "device": device,
                   "precision": args.precision})
    _print_attack(record, file=_summary_stream(args.json))
    _write_json(args.json, record)
    return 0


def _defense_params(args: argparse.Namespace) -> Dict[str, Any]:
    """``--param KEY=VALUE`` and ``--seed`` / ``--epochs`` / ``--batch-size`` / ``--lr``, each checked
    against the defense's schema (type and range) before anything is loaded."""
    from ._params import check_value
    from .defenses.registry import check_defense_params
    from .defenses.schema import defense_schema

    params = dict(args.param or [])
    schema = defense_schema(args.method)
    for key, flag in (("seed", "--seed"), ("epochs", "--epochs"), ("batch_size", "--batch-size"), ("lr", "--lr")):
        value = getattr(args, key)
        if value is not None:
            params[key] = check_value(flag, schema[key], value, syntax="flag")
    _check_flags(args, {"--eval-queries": _int_flag(1, 200), "--eval-steps": _int_flag(1, 10)})
    return check_defense_params(args.method, params, syntax="cli")


def cmd_defend(args: argparse.Namespace) -> int:
    try:
        params = _defense_params(args)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if args.out and any(p and Path(args.out).resolve() == Path(p).resolve() for p in (args.model, args.weights)):
        raise SystemExit("error: --out must differ from --model / --weights (the defended model is a new file)")
    from .defenses.run import check_defense_outputs

    check_defense_outputs(args.out)  # <out>, <out>.json, <out>.resume.pt: before any training
    ranks, device = _ranks(_device(args.device))
    precision = _precision(args, device)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    try:
        with precision:
            config = _defend(args, params, device, log)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if not ranks.main:
        return 0
    last = config["defense"]["history"][-1] if config["defense"]["history"] else {}
    print(f"{args.method}: {config['defense']['epochs']} epochs in {config['defense']['seconds']:.0f} s; "
          f"validation mAP {last.get('val_map', float('nan')):.4f}, under PgA-{args.eval_steps} "
          f"{last.get('val_map_pga', float('nan')):.4f} -> {args.out}")
    return 0


def _defend(args: argparse.Namespace, params: Dict[str, Any], device: str, log) -> Dict[str, Any]:
    """The defense of ``hashguard defend``: a checkpoint's or a user's own network; returns the config."""
    from .defenses import defend_checkpoint

    if args.model_def is not None:
        from .defenses import defend_external

        model, meta, splits, _ = _load_model(args, device)
        info = {k: v for k, v in meta.items() if k not in ("model", "backbone", "seed", "hash_method")}
        config = defend_external(
            model, info, args.method, args.out, splits, hash_method=args.hash, params=params,
            eval_queries=args.eval_queries, eval_steps=args.eval_steps, progress=not args.quiet, log=log,
        )
    else:
        if args.dataset or args.image_size or args.resize:
            raise SystemExit("error: --dataset/--image-size/--resize go with --model-def; a checkpoint knows its dataset")
        if args.model is None:
            raise SystemExit("error: give --model CHECKPOINT or --model-def FILE.py:NAME --weights STATE_DICT.pth")
        config = defend_checkpoint(
            args.model, args.method, args.out, params=params, device=device,
            eval_queries=args.eval_queries, eval_steps=args.eval_steps, progress=not args.quiet, log=log,
        )
    return config


def _bench_spec(args: argparse.Namespace):
    """The grid of ``hashguard bench``: the preset or grid file, the command line's model, overrides."""
    from .bench import get_preset, load_spec_file

    spec = get_preset(args.preset or "quick") if args.grid is None else load_spec_file(args.grid)
    if args.model_def is not None or args.model is not None:
        _add_own_model(spec, args)
    if args.queries is not None:
        spec.queries = args.queries
    if args.seed is not None:
        spec.seed = args.seed
    if args.protocol is not None:
        spec.protocol = args.protocol
        spec.validate()  # the protocol's eps, top-k and queries, or its error, before anything runs
    return spec


def _spec_line(spec) -> str:
    """``1 model (mnist-mosaic x cnn x dpsh x 32 bits); 500 queries, eps 8/255, seed 0``."""
    parts = []
    if spec.datasets:
        axes = [", ".join(spec.datasets), ", ".join(spec.backbones), ", ".join(spec.objectives),
                ", ".join(map(str, spec.bits)) + " bits"]
        parts.append(" x ".join(axes))
    if spec.models:
        parts.append("existing: " + ", ".join(m["name"] for m in spec.models))
    models = f"{spec.n_models} model{'s' if spec.n_models != 1 else ''}"
    return (f"{models} ({'; '.join(parts)}); {spec.queries or 'all'} queries, eps {_pixels(float(spec.eps))}, "
            f"seed {spec.seed}" + ("" if spec.protocol == "default" else f", protocol {spec.protocol}"))


def _print_runs(state: Dict[str, Any]) -> None:
    """The runs per kind: planned, done, pending (a record shared with an earlier kind counted there)."""
    print(f"{'kind':12s} {'runs':>6s} {'done':>6s} {'pending':>8s}")
    for kind, row in list(state["by_kind"].items()) + [("total", state)]:
        shared = state["shared"].get(kind)
        note = f"  (+{shared} more that reuse an earlier run's record)" if shared else ""
        print(f"{kind:12s} {row['runs']:6d} {row['done']:6d} {row['pending']:8d}{note}")
    if state["other_records"]:
        print(f"({state['other_records']} records in the folder are not runs of this grid)")


def _eta_line(state: Dict[str, Any], out: str) -> str:
    from .bench.status import format_duration

    eta = state["eta"]
    if not state["pending"]:
        return "nothing left to run"
    rough = (f"rough estimate: no comparable timings in {out}, scaled from the quick preset's cnn on 2 CPU cores; "
             "other backbones, image sizes and devices differ a lot")
    if not eta["rough"]:
        how = f"estimated from the timings of {state['timed_records']} records in {out}"
    elif not eta["from_records"]:
        how = rough
    else:
        how = f"{eta['from_records']} runs priced from the timings recorded in {out}, {eta['rough']} by a {rough}"
    return f"ETA: about {format_duration(eta['seconds'])} for {state['pending']} pending runs ({how})"


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    if args.preset is not None and args.grid is not None or (args.preset is None and args.grid is None
                                                               and args.model_def is None and args.model is None):
        raise SystemExit("error: give exactly one of --preset NAME (quick, paper) or --grid FILE.toml "
                         "(with --model-def alone the quick preset's attacks and defenses run on your network)")
    _check_flags(args, {"--queries": _int_flag(0, 500), "--seed": _int_flag(0, 0), "--workers": _int_flag(1, 2),
                        "--threads-per-run": _int_flag(1, 1)})
    if args.workers is not None and args.scheduler is not None:
        raise SystemExit("error: give --workers N (a local Dask cluster) or --scheduler ADDRESS (an existing one), not both")
    if args.dry_run:
        return _bench_dry_run(args)
    device = _device(args.device)
    try:
        precision = _precision(args, device)
        spec = _bench_spec(args)
        with precision:
            result = run_bench(
                spec, args.out, data_dir=args.data_dir, device=device, progress=not args.quiet,
                log=None if args.quiet else (lambda line: print(line, file=sys.stderr)), report=not args.no_report,
                wait=args.wait, workers=args.workers, scheduler=args.scheduler, threads_per_run=args.threads_per_run,
            )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    n = len({record["key"] for record in result["records"]})
    print(f"{spec.name}: {n} runs recorded in {args.out}/records ({result['seconds'] / 60:.1f} min this time)")
    if result["report"]:
        print(f"report: {result['report']['html']} (and {result['report']['md']})")
    return 0


def _bench_dry_run(args: argparse.Namespace) -> int:
    """``hashguard bench --dry-run``: the plan against ``--out``; reads, never writes or locks."""
    from .bench.status import plan_status

    if os.path.lexists(args.out) and not os.path.isdir(args.out):
        raise SystemExit(f"error: --out {args.out} is a file, not a folder; give a folder for the results")
    try:
        spec = _bench_spec(args)
        spec.check_data(args.data_dir)
        spec.resolve_models()  # records of an existing model are keyed by its weights' SHA-256
        state = plan_status(spec, args.out)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"{spec.name}: {state['runs']} runs into {args.out}; {_spec_line(spec)}")
    _print_runs(state)
    print(_eta_line(state, args.out))
    if state["store_mismatch"]:
        print(f"note: `hashguard bench` would refuse this folder: {state['store_mismatch']}")
    print("dry run: nothing was run or written")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``hashguard status DIR``: a results folder's grid, progress, lock holder, last record, report."""
    import json

    from .bench.status import folder_status

    try:
        state = folder_status(args.dir)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    spec = state["spec"]
    models = f"{spec['models']} model{'s' if spec['models'] != 1 else ''}"
    print(f"{args.dir}: grid {spec['name']!r}, {models}, {spec['queries'] or 'all'} queries, "
          f"eps {_pixels(float(spec['eps']))}, seed {spec['seed']}")
    _print_runs(state)
    print(_eta_line(state, args.dir))
    lock = state["lock"]
    if lock is None:
        print("lock: free (no hashguard bench is running into this folder)")
    else:
        who = f"pid {lock['pid']} on host {lock['host']} since {lock['since']}"
        if lock["alive"] is False:
            print(f"lock: free; a lock file was left by {who}, which is no longer running")
        elif lock["alive"] is None:
            print(f"lock: held by {who} (another host: cannot tell whether it still runs)")
        else:
            print(f"lock: held by {who} (running)")
    print(f"last record: {state['last_record'] or 'none yet'}")
    if state["report"] == "missing":
        print(f"report: not written yet (hashguard report {args.dir})")
    elif state["report"] == "stale":
        print(f"report: stale, records are newer than it (written {state['report_written']}); "
              f"rewrite it with hashguard report {args.dir}")
    else:
        print(f"report: up to date (written {state['report_written']})")
    if state["store_mismatch"]:
        print(f"note: {state['store_mismatch']}")
    return 0


def _add_own_model(spec, args: argparse.Namespace) -> None:
    """``hashguard bench --model-def ...`` or ``--model CHECKPOINT``: the model joins the grid as an
    existing model; with a preset it replaces the preset's trained models (nothing is trained)."""
    if args.model is not None:
        if args.model_def is not None:
            raise ValueError("give --model CHECKPOINT or --model-def FILE.py:NAME, not both")
        entry = {"name": args.name or Path(args.model).stem, "checkpoint": str(Path(args.model).expanduser().resolve())}
        if args.data_dir:
            entry["data_dir"] = str(Path(args.data_dir).resolve())
        _join(spec, entry, args)
        return
    if args.input_norm is None or args.dataset is None:
        raise ValueError("--model-def needs --input-norm (imagenet, none or MEAN/STD) and --dataset (lists for your "
                         "own list files in --data-dir)")
    file, _, name = args.model_def.rpartition(":")
    entry = {
        "name": args.name or name, "def": f"{Path(file).expanduser().resolve()}:{name}", "dataset": args.dataset,
        "input_norm": args.input_norm, "output": args.output, "select": _select(args.select),
        "kwargs": _model_kwargs(args.model_kwargs), "hash_method": args.hash,
        "data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
        "image_size": args.image_size, "resize": args.resize,
    }
    if args.weights:
        entry["weights"] = str(Path(args.weights).expanduser().resolve())
    _join(spec, entry, args)


def _join(spec, entry: Dict[str, Any], args: argparse.Namespace) -> None:
    """Add the command line's model to the grid; it replaces the trained models of a preset, or of a
    grid file that does not list datasets / backbones / objectives / bits itself."""
    if args.grid is None or not getattr(spec, "trains_models", True):
        spec.datasets = []
        spec.name = f"{spec.name} on {entry['name']}" if args.grid is None else spec.name
    spec.models = list(spec.models) + [entry]
    spec.validate()


def cmd_report(args: argparse.Namespace) -> int:
    from .bench.report import report_command

    try:
        print(report_command(args.dir, out=args.out, fmt=args.format))
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashguard", description="Adversarial robustness of deep-hashing retrieval.")
    parser.add_argument("--version", action="version", version=f"hashguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    from ._catalog import KINDS

    p = sub.add_parser("list", help="list the registered attacks, defenses, datasets, ... with their paper defaults")
    p.add_argument("kind", choices=KINDS, help="what to list")
    p.add_argument("--json", action="store_true", help="a JSON list of objects instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("datasets", help="list the registered datasets")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("train", help="train a hashing model and print its clean mAP")
    p.add_argument("--dataset", default="mnist-mosaic", choices=_names("datasets"))
    p.add_argument("--data-dir", help="folder with the list files of a dataset read from disk")
    p.add_argument("--image-size", type=int, default=None,
                   help="resize + centre-crop disk images to this size (lists: files' own size by default; benchmarks: 224)")
    p.add_argument("--resize", type=int, default=None, help="shorter side before the crop (benchmarks: 256)")
    p.add_argument("--backbone", default="cnn", choices=_names("backbones"))
    p.add_argument("--pretrained", action="store_true", help="start from ImageNet weights (downloads them)")
    p.add_argument("--hash", default="dpsh", choices=_names("objectives"), help="hashing objective")
    p.add_argument("--bits", type=int, default=32, help="code length, 1 to 4096 (the papers: 12 to 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--warmup-epochs", type=int, default=None,
                   help="label warm-up epochs of the backbone (default 2 from scratch, 0 with --pretrained)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--lr-step", type=int, default=4, help="epochs between x0.1 learning-rate decays")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--topk", type=int, default=None, help=TOPK_HELP)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--workers", type=int, default=WORKERS, help=WORKERS_HELP)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--out", required=True, help="checkpoint path to write (.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch log")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="clean mAP of a checkpoint (or of your own network) on its dataset")
    _add_model_options(p)
    p.add_argument("--topk", type=int, default=None, help=TOPK_HELP)
    p.add_argument("--json", help="also write the result to this JSON file (- for standard output)")
    p.add_argument("--data-dir", help="override the dataset folder stored in the checkpoint")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--workers", type=int, default=WORKERS, help=WORKERS_HELP)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("attack", help="attack a checkpoint (or your own network) under the evaluation protocol; write a JSON record")
    _add_model_options(p)
    p.add_argument("--method", required=True, choices=_names("attacks"), metavar="NAME",
                   help="attack: " + ", ".join(_names("attacks")))
    p.add_argument("--targeted", action="store_true", help="targeted variant (targets drawn once per seed and saved)")
    p.add_argument("--queries", type=int, default=None,
                   help="queries drawn from the query split by the seed (default: the protocol's, 500 by default)")
    p.add_argument("--steps", type=int, default=None, help="iterations (default: the method's paper default)")
    p.add_argument("--eps", default=None, help="L-inf budget in pixel units, e.g. 8/255 (default 8/255)")
    p.add_argument("--seed", type=int, default=0, help="seed of queries, targets and random starts")
    p.add_argument("--surrogate", default=None, help="optimise on this checkpoint, evaluate on --model (transfer)")
    p.add_argument("--threat", default="query", choices=["query", "injection"],
                   help="query: perturb the queries (default); injection: perturb the attacker's own images toward "
                        "a target category and append them to the victim's database in memory (NAG's threat model)")
    g = p.add_argument_group("database injection (--threat injection)")
    g.add_argument("--target-categories", default=None, metavar="N|LIST",
                   help="target categories: a count drawn by the seed, or indices such as 0,3,5 (default: all)")
    g.add_argument("--per-target", type=int, default=None, help="poisoned images per target category (default 10)")
    g.add_argument("--source", default=None, choices=["train", "noise"],
                   help="the attacker's images: train (in-distribution, default) or noise (out-of-distribution)")
    g.add_argument("--radius", type=int, default=None, help="Hamming radius of the radius success (default 5, NAG's code)")
    g.add_argument("--mine", type=int, default=None,
                   help="vulnerable-pair mining: draw M x --per-target candidates, keep the nearest to the target code "
                        "on the surrogate (default 0: off)")
    g.add_argument("--noise-proxy", type=float, default=None, metavar="STD",
                   help="Gaussian-noise proxy: craft 2x, keep the poisoned images still retrieved on the surrogate "
                        "under noise of this std (default 0: off)")
    p.add_argument("--early-stop", choices=["none", "code", "ap", "auto"], default=None,
                   help="stop a query once its code reaches the goal or its AP reaches 0 (1 if targeted); "
                        "auto: the AP stop when a database is given (SDHA's default)")
    p.add_argument("--param", type=_param, action="append", metavar="KEY=VALUE",
                   help="method parameter, repeatable (e.g. lr=0.5, n_anchors=5, random_start=yes, gan={\"epochs\":10}); "
                        "each value is checked against the method's type and range before anything runs")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="evaluation protocol: " + ", ".join(_names("protocols")) + " (hashguard list protocols; "
                        "default: the documented one); fixes top-k, queries, target rule, anchor source and eps")
    p.add_argument("--protocol-file", default=None, metavar="FILE",
                   help="queries/targets file (default: protocol-<dataset>-seed<S>-q<N>[-NAME].json next to --json)")
    p.add_argument("--batch-size", type=int, default=128, help="queries attacked together")
    p.add_argument("--topk", type=int, default=None, help=TOPK_HELP)
    p.add_argument("--json", required=True, help="write the metrics record here (- for standard output)")
    p.add_argument("--data-dir", default=None, help="dataset directory (default: the one recorded in the checkpoint)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("defend", help="adversarially train a checkpoint (or your own network) and write the defended one")
    _add_model_options(p, objective=True)
    p.add_argument("--method", required=True, choices=_names("defenses"), metavar="NAME",
                   help="defense: " + ", ".join(_names("defenses")))
    p.add_argument("--out", required=True, help="defended checkpoint (.pt; with --model-def: your network's state_dict, "
                   "described in <out>.json); <out>.resume.pt holds the state per epoch")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the paper's: saat 20, atrdh 100, cgat 30, pga-at 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--param", type=_param, action="append", metavar="KEY=VALUE",
                   help="defense setting, repeatable (e.g. steps=10, lam=2, eps=0.0314)")
    p.add_argument("--eval-queries", type=int, default=200, help="validation images in the per-epoch log")
    p.add_argument("--eval-steps", type=int, default=10, help="PgA iterations of the per-epoch attacked mAP")
    p.add_argument("--data-dir", default=None, help="dataset directory (with --model-def and a dataset read from disk)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch log")
    p.set_defaults(func=cmd_defend)

    p = sub.add_parser("bench", help="run a benchmark grid (train, attack, defend, re-attack) and write the report")
    _add_model_options(p, objective=True)
    p.add_argument("--name", default=None, help="your network's name in the report (default: NAME of --model-def)")
    p.add_argument("--preset", default=None, metavar="NAME", help="named grid: " + ", ".join(_names("presets")))
    p.add_argument("--grid", default=None, metavar="FILE", help="a grid file (.toml, .yaml or .json; see the README)")
    p.add_argument("--out", required=True, help="results directory: records, checkpoints, report (re-run to resume)")
    p.add_argument("--data-dir", default=None, help="folder of the datasets read from disk (one sub-folder per dataset)")
    p.add_argument("--queries", type=int, default=None, help="override the grid's number of queries (0 = all)")
    p.add_argument("--seed", type=int, default=None, help="override the grid's seed")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="override the grid's protocol: " + ", ".join(_names("protocols")) + " (hashguard list protocols)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--no-report", action="store_true", help="only run the grid (write the report later with `hashguard report`)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (runs per kind, those already done in --out, an ETA) and exit; writes nothing")
    p.add_argument("--wait", action="store_true",
                   help="if another hashguard bench is running into --out, wait for it to finish (default: refuse)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run the grid on a local Dask cluster of N worker processes (on GPUs: one GPU each); "
                        "needs pip install 'hashguard[distributed]'")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the grid on an existing Dask cluster (tcp://host:8786, e.g. dask-jobqueue on Slurm); "
                        "--out must be on a file system every worker shares")
    p.add_argument("--threads-per-run", type=int, default=None, metavar="N",
                   help="CPU threads of each run, recorded with it (default: 1 with --workers/--scheduler, else torch's); "
                        "equal counts give equal metrics")
    p.add_argument("--quiet", action="store_true", help="no progress bars or logs")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("status", help="progress of a results directory: runs done and pending, lock holder, report")
    p.add_argument("dir", help="results directory written by `hashguard bench`")
    p.add_argument("--json", action="store_true", help="the status as one JSON object")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="write report.md, report.html, results.csv and results.jsonl of results directories")
    p.add_argument("dir", nargs="+", help="results directory written by `hashguard bench` (several: a combined report)")
    p.add_argument("--out", default=None, help="folder for the report (required with several folders; default: the folder itself)")
    p.add_argument("--format", choices=["md", "csv", "json"], default="md",
                   help="md: print where the report went; csv / json: print results.csv / results.jsonl")
    p.set_defaults(func=cmd_report)
    return parser


def _one_line_warnings() -> None:
    """Warnings as ``warning: ...`` lines, not as file-and-line reports that read like a traceback."""
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


INTERRUPTED = "interrupted; finished runs are kept, re-run to resume"
# what the user can fix: bad values and files, unusable paths, a full disk; anything else is a bug
EXPECTED = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def _expected(err: BaseException) -> bool:
    import errno

    from .errors import HashguardError

    if isinstance(err, (HashguardError,) + EXPECTED):
        return True
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True  # a full disk reported by a write hashguard did not wrap
    return type(err).__name__ == "OutOfMemoryError"  # torch.cuda.OutOfMemoryError


def error_line(err: BaseException) -> str:
    """The one ``error: <what>; <fix>`` line printed for an expected error."""
    import errno

    from .errors import HashguardError, one_line

    text = one_line(err)
    if isinstance(err, HashguardError):
        return f"error: {text}"
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"error: the disk is full ({text}); free some space or write elsewhere, then re-run to resume"
    if isinstance(err, (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        return f"error: {text}; check the path and its permissions, or choose another"
    if isinstance(err, FileNotFoundError) and text.startswith("[Errno"):
        return f"error: {text}; check the path"
    if type(err).__name__ == "OutOfMemoryError":
        return f"error: out of memory ({text.split(';')[0].split('. ')[0]}); lower --batch-size or use --device cpu"
    return f"error: {text}"


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; the one error boundary of the command line.

    An expected error (:class:`hashguard.errors.HashguardError`, a bad value or path, a full disk)
    prints one ``error: ...`` line on stderr and returns 2; Ctrl-C prints one line and returns 130;
    anything else is a bug and keeps its traceback. A usage error found by the command itself
    (``SystemExit("error: ...")``) also prints its line and exits with status 2.
    """
    _one_line_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "bits", 1) < 1:
        parser.error(f"--bits must be >= 1, got {args.bits}")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"error: {INTERRUPTED}", file=sys.stderr)
        return 130
    except SystemExit as stop:
        if isinstance(stop.code, str):  # raise SystemExit("error: ...") in a command
            from .errors import one_line

            line = one_line(stop)
            print(line if line.startswith("error:") else f"error: {line}", file=sys.stderr)
            stop.code = 2  # str(stop) keeps the message for in-process callers
        raise
    except Exception as err:
        if not _expected(err):
            raise
        print(error_line(err), file=sys.stderr)
        return 2
    finally:
        if "torch.distributed" in sys.modules:  # leave a torchrun process group (train, defend)
            from .data_parallel import shutdown

            shutdown()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
