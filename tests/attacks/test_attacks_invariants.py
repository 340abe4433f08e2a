"""Invariants every registered attack keeps, in every mode it supports (registry-driven).

The cases are ``list_attacks()`` x the modes each class declares (``supports_untargeted`` /
``supports_targeted``), so a newly registered attack is tested here without editing this file;
it runs with ``ATTACK_PARAMS.get(name, DEFAULT_PARAMS)``. The tiny victim (``cnn`` width 8,
16 bits, DPSH, a few epochs on ``synthetic``) is the session fixture ``tiny_victim`` (conftest).
"""

from __future__ import annotations

import pytest
import torch

from hashguard.attacks import create_attack, list_attacks
from hashguard.attacks.registry import ATTACKS
from hashguard.retrieval import mean_average_precision

pytestmark = pytest.mark.usefixtures("single_thread")

BITS = 16
EPS = 0.1  # the tiny synthetic victim shrugs off 8/255; 0.1 shows a clear effect in 10 steps
N_SMALL = 8  # queries of the invariant checks (all 40 for effectiveness)
MARGIN = 0.05  # required mAP drop (untargeted) / t-MAP gain (targeted)

# Small settings per method; a method not listed runs with DEFAULT_PARAMS (plus eps = EPS).
TINY_PROTOTYPE = {"epochs": 1, "steps_per_epoch": 50, "hidden": 64, "lr": 1e-3}
DEFAULT_PARAMS = {"steps": 10}
ATTACK_PARAMS = {
    "tha": {"steps": 10, "prototype": TINY_PROTOTYPE},
    # one forward pass: no steps; the eps-ball variant (the default "none" is the paper's unbounded
    # generator, checked below for [0, 1] and its reported perceptibility)
    "prosgan": {"prototype": TINY_PROTOTYPE, "gan": {"epochs": 10, "lr": 3e-3, "width": 8, "res_blocks": 1, "label_channels": 8},
                "bound": "tanh"},
}

# (method, targeted) pairs whose output visibly depends on the seed beyond ``random_start``: one
# anchor sample (p2p, nag), per-step noise (nag), a learned prototype / generator (tha, prosgan).
SEED_DEPENDENT = {("p2p", True), ("nag", True), ("tha", True), ("prosgan", True)}
# Pairs that draw from the seed but whose images the seed cannot change on this victim: the
# majority vote of 9 anchor samples (dhta, and fgsm / ifgsm's default targeted "anchor" code)
# gives the same code for every seed when the victim maps each label to one code.
SEED_INVISIBLE = {("dhta", True), ("fgsm", True), ("ifgsm", True)}

CASES = [
    pytest.param(name, targeted, id=f"{name}-{'targeted' if targeted else 'untargeted'}")
    for name in list_attacks()
    for targeted in (False, True)
    if getattr(ATTACKS.get(name), "supports_targeted" if targeted else "supports_untargeted")
]


def params_for(name: str, **overrides):
    return {"eps": EPS, **ATTACK_PARAMS.get(name, DEFAULT_PARAMS), **overrides}


@pytest.fixture(scope="module")
def victim(tiny_attack_setting):
    """The tiny trained victim, its reference set, database and fixed queries / targets."""
    return dict(tiny_attack_setting)


def build(victim, name, targeted, **overrides):
    """A fresh, fitted attack (fit is a no-op except for the learned ones)."""
    attack = create_attack(name, victim["model"], targeted=targeted, **params_for(name, **overrides))
    return attack.fit(victim["knowledge"], victim["splits"].train)


@pytest.fixture(scope="module")
def fitted(victim):
    """Fitted seed-0 attacks, built once per case (THA / ProS-GAN training is the slow part)."""
    cache = {}

    def get(name, targeted):
        if (name, targeted) not in cache:
            cache[name, targeted] = build(victim, name, targeted)
        return cache[name, targeted]

    return get


def call(attack, victim, targeted, n=N_SMALL, *, lo=0, ids=None, **kwargs):
    x, y = victim["x"][lo : lo + n], victim["y"][lo : lo + n]
    tl = victim["targets"][lo : lo + n] if targeted else None
    return attack(x, y, target_labels=tl, knowledge=victim["knowledge"], ids=ids, **kwargs)


@pytest.mark.parametrize("name, targeted", CASES)
def test_stays_in_budget_and_image_range(victim, fitted, name, targeted):
    x = victim["x"][:N_SMALL]
    result = call(fitted(name, targeted), victim, targeted)
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == x.dtype
    assert result.x_adv.device == x.device
    assert float((result.x_adv - x).abs().max()) <= EPS + 1e-6
    assert float(result.x_adv.min()) >= 0.0 and float(result.x_adv.max()) <= 1.0
    assert torch.isfinite(result.x_adv).all()
    assert float((result.x_adv - x).abs().max()) > 0, "the attack returned the clean images"


def test_unbounded_prosgan_stays_in_image_range_and_reports_its_perceptibility(victim):
    """bound="none" (the paper) has no eps-ball: the images stay in [0, 1] and the result says how far they went."""
    attack = build(victim, "prosgan", True, bound="none")
    x = victim["x"][:N_SMALL]
    result = call(attack, victim, True)
    assert float(result.x_adv.min()) >= 0.0 and float(result.x_adv.max()) <= 1.0
    d = (result.x_adv - x).flatten(1).double()
    extra = result.extra
    assert extra["bound"] == "none"
    assert extra["rmse"] == pytest.approx(float(d.pow(2).mean(1).mean().sqrt()), rel=1e-6)
    assert extra["l2"] == pytest.approx(float(d.norm(dim=1).mean()), rel=1e-6)
    assert extra["linf"] == pytest.approx(float(d.abs().amax(1).mean()), rel=1e-6)
    assert extra["linf_max"] == pytest.approx(float(d.abs().max()), rel=1e-6)
    assert extra["linf_max"] > EPS  # an untrained-ish generator is not held inside the ball


@pytest.mark.parametrize("name, targeted", CASES)
def test_inputs_and_model_state_are_untouched(victim, fitted, name, targeted):
    attack, model = fitted(name, targeted), victim["model"]
    x, y = victim["x"][:N_SMALL], victim["y"][:N_SMALL]
    tl = victim["targets"][:N_SMALL] if targeted else None
    kn = victim["knowledge"]
    copies = [t.clone() for t in (x, y, kn.codes, kn.labels)] + ([tl.clone()] if targeted else [])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    flags = [i % 2 == 0 for i in range(len(params))]  # a mixed pattern, to see it restored as is
    for p, f in zip(params, flags):
        p.requires_grad_(f)
    model.train()
    model.check_inputs = True
    try:
        result = attack(x, y, target_labels=tl, knowledge=kn)
        assert model.training, "the attack did not restore train mode"
        assert [p.requires_grad for p in params] == flags
        assert model.check_inputs is True
        model.eval()
        model.check_inputs = False
        attack(x, y, target_labels=tl, knowledge=kn)
        assert not model.training and model.check_inputs is False
    finally:
        model.eval()
        model.check_inputs = True
        for p in params:
            p.requires_grad_(True)
    for before, after in zip(copies, [x, y, kn.codes, kn.labels] + ([tl] if targeted else [])):
        assert torch.equal(before, after), "an input tensor was modified in place"
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v), f"the attack changed the model's {k} (eval mode, frozen parameters)"
    assert result.x_adv.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("name, targeted", CASES)
def test_result_fields(victim, fitted, name, targeted):
    result = call(fitted(name, targeted), victim, targeted)
    codes = result.codes_adv
    assert codes.shape == (N_SMALL, BITS)
    assert bool(((codes == 1) | (codes == -1)).all())
    assert torch.equal(codes, victim["model"].encode(result.x_adv))
    assert result.iterations.shape == (N_SMALL,)
    assert result.iterations.dtype == torch.long and bool((result.iterations >= 1).all())
    assert result.seconds > 0
    if targeted:
        assert result.reference_codes is None
        if result.target_codes is None:  # no single target code per query (SDHA: every positive)
            assert result.ideal_codes is None
        else:
            assert result.target_codes.shape == (N_SMALL, BITS)
            assert bool(((result.target_codes == 1) | (result.target_codes == -1)).all())
            assert torch.equal(result.ideal_codes, result.target_codes)
    else:
        assert result.target_codes is None
        if result.reference_codes is None:  # a method without one code per query (SDHA)
            assert result.ideal_codes is None
        else:
            assert result.reference_codes.shape == (N_SMALL, BITS)
            assert bool(((result.reference_codes == 1) | (result.reference_codes == -1)).all())
            assert torch.equal(result.ideal_codes, -result.reference_codes)


@pytest.mark.parametrize("name, targeted", CASES)
def test_deterministic_under_a_seed(victim, fitted, name, targeted):
    torch.manual_seed(123)  # the global RNG state must not matter, only the attack's seed
    first = call(build(victim, name, targeted, seed=3), victim, targeted)
    torch.manual_seed(456)
    second = call(build(victim, name, targeted, seed=3), victim, targeted)
    assert torch.equal(first.x_adv, second.x_adv)
    assert torch.equal(first.codes_adv, second.codes_adv)
    if (name, targeted) in SEED_INVISIBLE:
        return
    other = call(fitted(name, targeted), victim, targeted)  # seed 0
    if (name, targeted) in SEED_DEPENDENT or getattr(fitted(name, targeted), "random_start", False):
        assert not torch.equal(first.x_adv, other.x_adv), "another seed gave the same images"
    else:
        assert torch.equal(first.x_adv, other.x_adv), (
            f"{name} depends on the seed; if that is intended, add ({name!r}, {targeted}) to SEED_DEPENDENT"
        )


def assert_same_images(a: torch.Tensor, b: torch.Tensor, optimizer: str, what: str) -> None:
    """Equal up to float32 noise. Sign steps (PGD): atol 1e-5 everywhere. Continuous updates
    (SGD with HAG's lr = 100, Adam, whose first step is sign-like on near-zero gradients) amplify
    the last-bit differences of a batched vs a single convolution: there at most 0.5 % of the
    values may differ by more than 1e-5, and none by 1e-3 (a quarter of a grey level) or more."""
    if optimizer == "sign":
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=lambda m: f"{what}: {m}")
        return
    diff = (a - b).abs()
    frac = float((diff > 1e-5).float().mean())
    assert frac < 0.005, f"{what}: {frac:.2%} of the values differ by more than 1e-5"
    assert float(diff.max()) < 1e-3, f"{what}: largest difference {float(diff.max()):.2e}"


@pytest.mark.parametrize("name, targeted", CASES)
def test_batched_equals_one_query_at_a_time(victim, fitted, name, targeted):
    attack = fitted(name, targeted)
    lo = 4  # ids that are not 0..n-1, so a method keying its randomness on the position would fail
    ids = list(range(lo, lo + N_SMALL))
    batched = call(attack, victim, targeted, lo=lo, ids=ids)
    singles = [call(attack, victim, targeted, n=1, lo=lo + i, ids=[lo + i]) for i in range(N_SMALL)]
    stacked = torch.cat([s.x_adv for s in singles])
    assert_same_images(stacked, batched.x_adv, attack.optimizer, "one at a time vs batched")
    assert torch.equal(torch.cat([s.iterations for s in singles]), batched.iterations)
    for field in ("target_codes", "reference_codes"):
        values = [getattr(s, field) for s in singles]
        whole = getattr(batched, field)
        assert all((v is None) == (whole is None) for v in values)
        if whole is not None:
            assert torch.equal(torch.cat(values), whole), f"{field} depend on the batch"
    # batch_size splits the call into chunks: the same images again
    attack.batch_size = 3
    try:
        chunked = call(attack, victim, targeted, lo=lo, ids=ids)
    finally:
        attack.batch_size = None
    assert_same_images(chunked.x_adv, batched.x_adv, attack.optimizer, "batch_size=3 vs one batch")
    assert torch.equal(chunked.iterations, batched.iterations)


@pytest.mark.parametrize("name, targeted", CASES)
def test_effective_on_the_tiny_victim(victim, fitted, name, targeted):
    attack = fitted(name, targeted)
    n = victim["x"].shape[0]
    result = call(attack, victim, targeted, n=n)
    labels = victim["targets"] if targeted else victim["y"]
    model, db, dl = victim["model"], victim["db_codes"], victim["db_labels"]
    clean = mean_average_precision(model.encode(victim["x"]), db, labels, dl)
    adv = mean_average_precision(result.codes_adv, db, labels, dl)
    if targeted:
        assert adv > clean + MARGIN, f"t-MAP {adv:.3f} vs clean {clean:.3f}"
    else:
        assert adv < clean - MARGIN, f"mAP {adv:.3f} vs clean {clean:.3f}"
