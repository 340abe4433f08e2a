"""A user's own network and data through the command line, as a new user brings them.

The network is written the DeepHash-pytorch way (its own class in its own file: conv features ->
``fc`` -> ``hash_layer = Linear(128, K)``), trained by the user's own loop with the normalisation
done outside the model, and saved as a ``state_dict``; the data are 32x32 PNGs with 5 labels,
multi-label, in the standard list-file format. Nothing of hashguard built either.
"""

from __future__ import annotations

import json
import re
import pickle
import textwrap

import pytest
import torch

from hashguard.cli import main
from hashguard.retrieval import mean_average_precision
from user_data import read_split, write_lists

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
NORM = "0.5,0.5,0.5/0.25,0.25,0.25"
BITS = 16

NET_PY = '''
import torch
from torch import nn


class DeepHashNet(nn.Module):
    """DeepHash-pytorch style: features -> fc -> hash_layer (optionally tanh, optionally a tuple)."""

    def __init__(self, bits=16, ends_in_tanh=False, tuple_output=False, channels=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(nn.Linear(32 * 8 * 8, 128), nn.ReLU())   # built for 32x32 inputs
        self.hash_layer = nn.Linear(128, bits)
        self.ends_in_tanh, self.tuple_output = ends_in_tanh, tuple_output

    def forward(self, x):
        feat = self.fc(self.features(x).flatten(1))
        h = self.hash_layer(feat)
        if self.ends_in_tanh:
            h = torch.tanh(h)
        return (feat, h) if self.tuple_output else h


def broken_factory():
    raise RuntimeError("no GPU found")


class WrongShape(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)                 # (N, 4, H-2, W-2): not codes


class NonFinite(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 8)

    def forward(self, x):
        return self.fc(x.mean((2, 3))) / 0.0
'''


def normalise(x):
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def user_codes(net, x):
    with torch.no_grad():
        out = net.eval()(normalise(x))
    h = out[1] if isinstance(out, tuple) else out
    return torch.where(h >= 0, 1.0, -1.0)


def train_user_net(net, x, y, steps=60):
    """The user's own training loop: a DPSH-style pairwise likelihood on tanh codes."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for step in range(steps):
        idx = torch.randperm(x.shape[0])[:32]
        out = net(normalise(x[idx]))
        h = out[1] if isinstance(out, tuple) else out
        u = h if net.ends_in_tanh else torch.tanh(h)
        s = (y[idx] @ y[idx].t() > 0).float()
        theta = 0.5 * u @ u.t() * (8 / BITS)
        loss = (torch.nn.functional.softplus(theta) - s * theta).mean() + 0.1 * (u.abs() - 1).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def user_setup(tmp_path_factory, single_thread):
    """Her data, her network file, and three trained variants saved as state_dicts."""
    import importlib.util

    root = tmp_path_factory.mktemp("user")
    data = root / "mydata"
    write_lists(data)
    (root / "net.py").write_text(NET_PY)
    spec = importlib.util.spec_from_file_location("user_net_for_test", root / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x, y = read_split(data, "train")
    variants = {}
    for name, kwargs in (("plain", {}), ("tanh", {"ends_in_tanh": True}), ("tuple", {"tuple_output": True})):
        torch.manual_seed(0)
        net = train_user_net(mod.DeepHashNet(bits=BITS, **kwargs), x, y)
        weights = root / f"{name}.pth"
        torch.save(net.state_dict(), weights)
        variants[name] = (net, weights, kwargs)
    return {"root": root, "data": data, "module": mod, "variants": variants}


def _model_args(setup, variant):
    net, weights, kwargs = setup["variants"][variant]
    args = ["--model-def", f"{setup['root'] / 'net.py'}:DeepHashNet", "--weights", str(weights),
            "--input-norm", NORM, "--dataset", "lists", "--data-dir", str(setup["data"])]
    if kwargs:
        args += ["--model-kwargs", json.dumps(kwargs)]
    if kwargs.get("ends_in_tanh"):
        args += ["--output", "tanh"]
    if kwargs.get("tuple_output"):
        args += ["--select", "1"]
    return args


@pytest.mark.parametrize("variant", ["plain", "tanh", "tuple"])
def test_evaluate_equals_the_map_of_her_own_sign_codes(user_setup, variant, tmp_path):
    net = user_setup["variants"][variant][0]
    out = tmp_path / "eval.json"
    assert main(["evaluate", *_model_args(user_setup, variant), "--json", str(out), "--quiet"]) == 0
    record = json.loads(out.read_text())
    xq, yq = read_split(user_setup["data"], "test")
    xd, yd = read_split(user_setup["data"], "database")
    expected = mean_average_precision(user_codes(net, xq), user_codes(net, xd), yq, yd, topk=None)
    assert record["map"] == pytest.approx(expected, abs=1e-12)
    assert expected > 0.7  # the user's training worked: the comparison is not between two random models
    assert record["bits"] == BITS and record["model_def"].endswith("net.py:DeepHashNet")
    assert record["weights_sha256"] == __import__("hashlib").sha256(user_setup["variants"][variant][1].read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", ["plain", "tanh", "tuple"])
def test_attack_untargeted_and_targeted_on_her_model(user_setup, variant, tmp_path):
    args = _model_args(user_setup, variant)
    pga, mainstay = tmp_path / "pga.json", tmp_path / "mainstay.json"
    assert main(["attack", *args, "--method", "pga", "--queries", "16", "--steps", "20", "--json", str(pga), "--quiet"]) == 0
    assert main(["attack", *args, "--method", "mainstay", "--targeted", "--queries", "16", "--steps", "20",
                 "--json", str(mainstay), "--quiet"]) == 0
    untargeted, targeted = json.loads(pga.read_text()), json.loads(mainstay.read_text())
    assert untargeted["map"] < untargeted["clean_map"] - 0.1
    assert targeted["t_map"] > targeted["clean_t_map"] + 0.1
    assert untargeted["perceptibility"]["linf"] <= 8 / 255 + 1e-6
    assert untargeted["weights_sha256"] and targeted["query_indices"] == untargeted["query_indices"]


@pytest.mark.parametrize("variant", ["tanh", "tuple"])
def test_defend_returns_weights_that_load_into_her_class(user_setup, variant, tmp_path):
    out = tmp_path / "robust.pth"
    assert main(["defend", *_model_args(user_setup, variant), "--method", "saat", "--epochs", "1",
                 "--param", "steps=2", "--eval-queries", "8", "--eval-steps", "2", "--out", str(out), "--quiet"]) == 0
    net = user_setup["module"].DeepHashNet(bits=BITS, **user_setup["variants"][variant][2])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(torch.load(out, weights_only=True))  # her class, her keys
    original = user_setup["variants"][variant][0].state_dict()
    assert set(net.state_dict()) == set(original)
    assert any(not torch.equal(net.state_dict()[k], original[k]) for k in original if "weight" in k)
    assert any(not torch.equal(net.state_dict()[k], before[k]) for k in before)
    described = json.loads((tmp_path / "robust.pth.json").read_text())
    assert described["defense"]["method"] == "saat" and described["hash_method"] == "dpsh"
    assert not (tmp_path / "robust.pth.resume.pt").exists()


def test_bench_attacks_and_defends_the_existing_model_without_retraining(user_setup, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(textwrap.dedent(f"""
        name = "mine"
        queries = 50
        [attacks]
        untargeted = ["pga"]
        targeted = ["mainstay"]
        steps = {{ pga = 5, mainstay = 5 }}
        [defenses]
        methods = ["saat"]
        epochs = 1
        params = {{ saat = {{ steps = 2 }} }}
        untargeted = ["pga"]
        steps = {{ pga = 5 }}
        eval_queries = 8
        eval_steps = 2
        [[models]]
        name = "mine"
        def = "{user_setup['root'] / 'net.py'}:DeepHashNet"
        weights = "{user_setup['variants']['plain'][1]}"
        dataset = "lists"
        data_dir = "{user_setup['data']}"
        input_norm = "{NORM}"
    """))
    out = tmp_path / "bench"
    assert main(["bench", "--grid", str(grid), "--out", str(out), "--quiet"]) == 0
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    kinds = sorted(r["config"]["kind"] for r in records)
    assert kinds.count("train") == 0 and kinds.count("external") == 1 and kinds.count("defense") == 1
    base = next(r for r in records if r["config"]["kind"] == "external")
    net = user_setup["variants"]["plain"][0]
    xq, yq = read_split(user_setup["data"], "test")
    xd, yd = read_split(user_setup["data"], "database")
    assert base["metrics"]["clean_map"] == pytest.approx(
        mean_average_precision(user_codes(net, xq), user_codes(net, xd), yq, yd, topk=None), abs=1e-12)
    assert base["config"]["weights_sha256"] and list((out / "models").glob("*.pt")) != []  # the defended copy only
    defense = next(r for r in records if r["config"]["kind"] == "defense")
    assert sorted(p.name for p in (out / "models").glob("*.pt")) == [defense["key"] + ".pt"]
    report = (out / "report.md").read_text()
    assert "mine" in report and "existing model" in report
    assert "24 (of 50 asked for) queries" in report and "mAP@all" in report  # what was run, not what was asked
    # re-running runs nothing: every record is kept
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert main(["bench", "--grid", str(grid), "--out", str(out), "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")} == mtimes


# ------------------------------------------------------------------------------------------------
# bad input: a clear error before any work, never a traceback


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    err = capsys.readouterr().err + str(info.value.code)
    assert info.value.code not in (0, None)
    assert "Traceback" not in err
    return err


def test_factory_that_raises_is_a_clear_error(user_setup, capsys, tmp_path):
    args = _model_args(user_setup, "plain")
    args[1] = f"{user_setup['root'] / 'net.py'}:broken_factory"
    err = _error(capsys, ["evaluate", *args, "--json", str(tmp_path / "e.json")])
    assert "broken_factory" in err and "no GPU found" in err


def test_weights_of_another_class_are_a_clear_error(user_setup, capsys, tmp_path):
    args = _model_args(user_setup, "plain") + ["--model-kwargs", json.dumps({"bits": 32})]
    err = _error(capsys, ["evaluate", *args])
    assert "do not match DeepHashNet" in err and "hash_layer.weight" in err


def test_wrong_channel_count_is_a_clear_error(user_setup, capsys):
    args = _model_args(user_setup, "plain")
    net = user_setup["module"].DeepHashNet(bits=BITS, channels=1)
    torch.save(net.state_dict(), user_setup["root"] / "grey.pth")
    args[3] = str(user_setup["root"] / "grey.pth")
    err = _error(capsys, ["evaluate", *args, "--model-kwargs", json.dumps({"channels": 1}), "--input-norm", "0.5/0.25"])
    assert "(3, 32, 32)" in err and "channel" in err


def test_wrong_image_size_is_a_clear_error(user_setup, capsys):
    err = _error(capsys, ["evaluate", *_model_args(user_setup, "plain"), "--image-size", "40"])
    assert "(3, 40, 40)" in err and "--image-size" in err


@pytest.mark.parametrize("name, message", [("WrongShape", "(N, K)"), ("NonFinite", "non-finite")])
def test_bad_outputs_are_clear_errors(user_setup, capsys, name, message):
    args = _model_args(user_setup, "plain")
    args[1] = f"{user_setup['root'] / 'net.py'}:{name}"
    del args[2:4]  # no weights
    assert message in _error(capsys, ["evaluate", *args])


def test_selecting_the_relu_features_instead_of_the_codes_is_flagged(user_setup, capsys, tmp_path):
    args = _model_args(user_setup, "tuple")
    args[args.index("--select") + 1] = "0"  # the 128 ReLU features, not the codes
    import warnings

    with pytest.warns(UserWarning, match="ReLU features"):
        assert main(["evaluate", *args, "--json", str(tmp_path / "e.json"), "--quiet"]) == 0
    # the command prints warnings as one line, not as a file-and-line report
    assert warnings.formatwarning("codes >= 0", UserWarning, "wrapped.py", 1) == "warning: codes >= 0\n"


def test_tuple_output_without_select_says_how_to_pick(user_setup, capsys):
    args = [a for a in _model_args(user_setup, "tuple")]
    i = args.index("--select")
    del args[i : i + 2]
    err = _error(capsys, ["evaluate", *args])
    assert "select" in err and "tuple" in err


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dumps"])
def test_pickled_weights_are_refused_and_nothing_runs(user_setup, capsys, tmp_path, writer):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save({"hash_layer.weight": Payload()}, evil)
    else:
        evil.write_bytes(pickle.dumps({"hash_layer.weight": Payload()}))
    args = _model_args(user_setup, "plain")
    args[3] = str(evil)
    err = _error(capsys, ["evaluate", *args])
    assert "weights_only=True" in err and "torch.save(net.state_dict(), path)" in err
    assert writer == "pickle.dumps" or re.search(r"a pickled [\w.]*open object", err)
    assert "\x1b" not in err and "two options" not in err  # torch's own advice (unpickle it) is not repeated
    assert not marker.exists()


def test_missing_input_norm_and_dataset_are_refused_up_front(user_setup, capsys):
    args = _model_args(user_setup, "plain")
    i = args.index("--input-norm")
    assert "--input-norm" in _error(capsys, ["evaluate", *(args[:i] + args[i + 2:])])
    i = args.index("--dataset")
    assert "--dataset" in _error(capsys, ["evaluate", *(args[:i] + args[i + 2:])])


def test_inconsistent_label_widths_are_a_clear_error(user_setup, capsys, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(user_setup["data"], data)
    lines = (data / "test.txt").read_text().splitlines()
    lines[3] = lines[3] + " 0"
    (data / "test.txt").write_text("\n".join(lines) + "\n")
    args = _model_args(user_setup, "plain")
    args[args.index("--data-dir") + 1] = str(data)
    err = _error(capsys, ["evaluate", *args])
    assert "test.txt" in err and "line 4" in err


def test_a_protocol_file_is_never_reused_for_other_data_of_the_same_name(user_setup, capsys, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(user_setup["data"], other)
    lines = (other / "test.txt").read_text().splitlines()
    (other / "test.txt").write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # same images, other order
    args = _model_args(user_setup, "plain")
    record = tmp_path / "a.json"
    assert main(["attack", *args, "--method", "fgsm", "--queries", "8", "--json", str(record), "--quiet"]) == 0
    args[args.index("--data-dir") + 1] = str(other)
    err = _error(capsys, ["attack", *args, "--method", "fgsm", "--queries", "8", "--json", str(record), "--quiet"])
    assert "another 'lists' dataset" in err
