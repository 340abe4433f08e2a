"""ProS-GAN networks and training: shapes (also at 224 px), the two bounds, learning signal, targets,
victim hygiene, determinism."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hashguard.attacks.prosgan_networks import (
    ProsGANConfig,
    ProsGANDiscriminator,
    ProsGANGenerator,
    draw_training_targets,
    label_upsamplings,
    prosgan_generate,
    train_prosgan,
)
from hashguard.data import TensorImageDataset, create_dataset
from hashguard.hashing.trainer import calibrate_hash_layer
from hashguard.models import create_hash_model

pytestmark = pytest.mark.usefixtures("single_thread")

BITS, CLASSES, FEATURES = 16, 4, 32
EPS = 32 / 255  # a large radius: the tiny random victim needs it to show a clear effect in 5 epochs


class StandInPrototype(nn.Module):
    """``labels -> (feature, h, label_pred)``: a fixed random ±1 code per label, h = 0.9 * code."""

    def __init__(self, num_classes: int = CLASSES, bits: int = BITS, features: int = FEATURES, seed: int = 1) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("codes", torch.where(torch.rand(num_classes, bits, generator=g) < 0.5, -1.0, 1.0))
        self.register_buffer("embedding", torch.randn(num_classes, features, generator=g))
        self.calls = 0

    def target_code(self, labels: torch.Tensor) -> torch.Tensor:
        s = labels @ self.codes
        return torch.where(s >= 0, 1.0, -1.0)

    def forward(self, labels: torch.Tensor):
        self.calls += 1
        return labels @ self.embedding, 0.9 * self.target_code(labels), labels


def make_victim(train, seed: int = 0):
    """A tiny ``cnn`` victim whose codes depend on the image: BN statistics set, hash bits calibrated."""
    torch.manual_seed(seed)
    model = create_hash_model("cnn", BITS, backbone_kwargs={"width": 8})
    images = train.batch(slice(0, 120))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(images)
    model.eval()
    calibrate_hash_layer(model, images)
    return model


def fast_config(**overrides) -> ProsGANConfig:
    settings = dict(epochs=1, width=8, res_blocks=1, label_channels=8, lr=1e-3)
    settings.update(overrides)
    return ProsGANConfig(**settings)


@pytest.fixture(scope="module")
def splits():
    return create_dataset("synthetic", seed=0)


@pytest.fixture(scope="module")
def pool():
    return torch.eye(CLASSES)


@pytest.fixture(scope="module")
def trained(single_thread, splits, pool):
    """A victim, the stand-in prototype and a tanh-bounded generator trained for 8 epochs against them."""
    model = make_victim(splits.train)
    proto = StandInPrototype()
    G = train_prosgan(model, splits.train, proto, label_pool=pool, eps=EPS, bound="tanh",
                      config=fast_config(epochs=8, lr=2e-3))
    return model, proto, G


# ----------------------------------------------------------------------------------------- networks


@pytest.mark.parametrize("size", [16, 56])
def test_generator_and_discriminator_shapes(size):
    torch.manual_seed(0)
    G = ProsGANGenerator(FEATURES, size, width=8, res_blocks=2, label_channels=8)
    D = ProsGANDiscriminator(CLASSES, size, width=8)
    x = torch.rand(3, 3, size, size)
    feature = torch.randn(3, FEATURES)
    with torch.no_grad():
        x_t = G.decode_label(feature)
        t = G.raw(x, feature)
        fake = G(x, feature)
        out = D(fake)
    assert x_t.shape == (3, 3, size, size)
    assert t.shape == fake.shape == x.shape
    assert float(t.min()) >= -1.0 and float(t.max()) <= 1.0
    torch.testing.assert_close(fake, (t + 1) / 2)
    assert float(fake.min()) >= 0.0 and float(fake.max()) <= 1.0
    assert out.shape == (3, CLASSES + 1)  # raw LSGAN scores: no Sigmoid


def test_discriminator_is_a_spectral_norm_patchgan_with_a_raw_c_plus_1_head():
    for size, layers, kernel in ((8, 1, 4), (28, 2, 7), (56, 3, 7), (32, 2, 8)):
        D = ProsGANDiscriminator(CLASSES, size, width=4)
        convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == layers + 1
        assert all(hasattr(c, "parametrizations") and "weight" in c.parametrizations for c in convs[:-1])
        assert convs[-1].kernel_size == (kernel, kernel) and convs[-1].bias is None
        assert convs[-1].out_channels == CLASSES + 1


def test_architecture_at_224_pixels_is_the_papers():
    """The paper's code at 224 px: label decoder FC -> 128 x 14 x 14 and 4 up-convolutions (not a
    ~100 M-weight FC), width 64, 6 residual blocks; discriminator of 5 stride-2 layers + a 7x7 head."""
    G = ProsGANGenerator(512, 224)
    assert label_upsamplings(224) == 4 and label_upsamplings(56) == 2 and label_upsamplings(16) == 0
    label_weights = sum(p.numel() for m in (G.label_fc, G.label_up, G.label_out) for p in m.parameters())
    assert label_weights < 14_000_000  # 512 * 128 * 14 * 14 + biases + the up-convolutions
    assert G.label_fc[0].out_features == 128 * 14 * 14
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.label_up.modules()) == 4
    assert G.width == 64 and G.res_blocks == 6
    assert sum(p.numel() for p in G.parameters()) < 25_000_000
    D = ProsGANDiscriminator(38, 224)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and convs[0].out_channels == 64 and convs[-1].kernel_size == (7, 7)
    with torch.no_grad():  # the label map reaches the image size exactly
        assert G.decode_label(torch.randn(1, 512)).shape == (1, 3, 224, 224)


@pytest.mark.parametrize("size", [4, 18, 0])
def test_networks_reject_bad_image_sizes(size):
    with pytest.raises(ValueError, match="divisible by 4"):
        ProsGANGenerator(FEATURES, size)
    with pytest.raises(ValueError, match="divisible by 4"):
        ProsGANDiscriminator(CLASSES, size)


def test_generator_rejects_mismatched_inputs():
    G = ProsGANGenerator(FEATURES, 16, width=4)
    with pytest.raises(ValueError, match="images must be"):
        G(torch.rand(2, 3, 20, 20), torch.randn(2, FEATURES))
    with pytest.raises(ValueError, match="target features"):
        G(torch.rand(2, 3, 16, 16), torch.randn(2, FEATURES + 1))


# ----------------------------------------------------------------------------------------- generation


@pytest.mark.parametrize("eps", [8 / 255, 0.0])
def test_tanh_bound_stays_in_eps_ball_and_leaves_x_untouched(eps, pool):
    torch.manual_seed(0)
    G = ProsGANGenerator(FEATURES, 16, width=4, res_blocks=1, label_channels=4).train()
    proto = StandInPrototype().train()
    x = torch.rand(5, 3, 16, 16)
    x[0] = 0.0
    x[1] = 1.0  # the [0, 1] clamp matters at the borders
    clean = x.clone()
    x_adv = prosgan_generate(G, proto, x, pool[torch.tensor([0, 1, 2, 3, 0])], eps=eps, bound="tanh", batch_size=2)
    assert torch.equal(x, clean)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert G.training and proto.training  # modes restored


def test_unbounded_generation_is_the_generator_output_in_unit_range(pool):
    torch.manual_seed(0)
    G = ProsGANGenerator(FEATURES, 16, width=4, res_blocks=1, label_channels=4).eval()
    proto = StandInPrototype()
    x = torch.rand(4, 3, 16, 16)
    labels = pool[[0, 1, 2, 3]]
    with torch.no_grad():
        expected = G(x, proto(labels)[0])
    for eps in (None, 8 / 255):  # the paper's bound ignores eps
        x_adv = prosgan_generate(G, proto, x, labels, eps=eps, bound="none")
        torch.testing.assert_close(x_adv, expected)
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert float((x_adv - x).abs().max()) > 8 / 255  # an untrained G is far from x: no hidden clamp


def test_generate_rejects_bad_inputs(pool):
    G = ProsGANGenerator(FEATURES, 16, width=4)
    proto = StandInPrototype()
    x = torch.rand(4, 3, 16, 16)
    with pytest.raises(ValueError, match="target labels"):
        prosgan_generate(G, proto, x, pool[:3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prosgan_generate(G, proto, x * 2, pool)
    with pytest.raises(ValueError, match="eps"):
        prosgan_generate(G, proto, x, pool, eps=-0.1)
    with pytest.raises(ValueError, match="needs eps"):
        prosgan_generate(G, proto, x, pool, eps=None, bound="tanh")
    with pytest.raises(ValueError, match="bound must be"):
        prosgan_generate(G, proto, x, pool, bound="clip")


# ----------------------------------------------------------------------------------------- training


def test_training_moves_victim_codes_towards_the_target(trained, splits, pool):
    model, proto, G = trained
    x = splits.query.batch(slice(0, 40))
    labels = pool[torch.arange(40) % CLASSES]
    target = proto.target_code(labels)

    # the untrained generator: same seeded initialisation as inside train_prosgan
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G0 = ProsGANGenerator(FEATURES, 16, width=8, res_blocks=1, label_channels=8)

    def j_ham(images):
        with torch.no_grad():
            return float(1 - (model(images) * target).mean())

    start = j_ham(prosgan_generate(G0, proto, x, labels, eps=EPS, bound="tanh"))
    x_adv = prosgan_generate(G, proto, x, labels, eps=EPS, bound="tanh")
    assert float((x_adv - x).abs().max()) <= EPS + 1e-6
    assert j_ham(x_adv) < start - 0.1
    assert j_ham(x_adv) < j_ham(x) - 0.1
    clean_agreement = float((model.encode(x) == target).float().mean())
    adv_agreement = float((model.encode(x_adv) == target).float().mean())
    assert adv_agreement > clean_agreement + 0.1

    history = G.history
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert set(history[0]) >= {"epoch", "loss_g", "loss_d", "hash", "rec"}
    assert history[-1]["hash"] < history[0]["hash"]
    assert not G.training


def test_unbounded_training_reaches_the_target_and_stays_close_to_x(splits, pool):
    """The paper's setting: no budget; the reconstruction term alone keeps x_adv near x."""
    model = make_victim(splits.train)
    proto = StandInPrototype()
    G = train_prosgan(model, splits.train, proto, label_pool=pool, bound="none", eps=None,
                      config=fast_config(epochs=5))
    x = splits.query.batch(slice(0, 40))
    labels = pool[torch.arange(40) % CLASSES]
    target = proto.target_code(labels)
    x_adv = prosgan_generate(G, proto, x, labels, bound="none")
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    clean_agreement = float((model.encode(x) == target).float().mean())
    adv_agreement = float((model.encode(x_adv) == target).float().mean())
    assert adv_agreement > clean_agreement + 0.1
    assert G.history[-1]["rec"] < G.history[0]["rec"]  # the reconstruction term pulls G(x) towards x


def test_training_targets_follow_the_rule():
    pool = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    y = torch.tensor([[1.0, 0, 0]] * 200 + [[1.0, 1, 1]] * 5)
    g = torch.Generator().manual_seed(0)
    anyrule = draw_training_targets(y, pool, "any", g)
    assert (anyrule[:200] @ y[0] > 0).any()  # the public code's rule lets targets share labels
    zero = draw_training_targets(y, pool, "zero-overlap", g)
    assert ((zero[:200] @ y[0]) == 0).all()
    assert {tuple(r.tolist()) for r in zero[:200]} == {(0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}
    assert zero[200:].shape == (5, 3)  # a source overlapping every row falls back to any row


def test_training_restores_the_victim(splits, pool):
    model = make_victim(splits.train)
    model.train()
    model.hash_layer.weight.requires_grad_(False)  # a partly frozen model must stay partly frozen
    flags = [p.requires_grad for p in model.parameters()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    proto = StandInPrototype().train()
    train_prosgan(model, splits.train, proto, label_pool=pool, eps=EPS, config=fast_config(batch_size=60))
    assert model.training and proto.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert model.check_inputs is True
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert all(p.grad is None for p in model.parameters())


def test_training_is_deterministic_and_leaves_the_global_rng_alone(splits, pool):
    model = make_victim(splits.train)
    proto = StandInPrototype()
    config = fast_config(batch_size=60)
    torch.manual_seed(123)
    rng = torch.random.get_rng_state()
    a = train_prosgan(model, splits.train, proto, label_pool=pool, eps=EPS, config=config).state_dict()
    assert torch.equal(torch.random.get_rng_state(), rng)
    b = train_prosgan(model, splits.train, proto, label_pool=pool, eps=EPS, config=config).state_dict()
    zero = fast_config(batch_size=60, target_rule="zero-overlap")  # the target draw is seeded too
    z1 = train_prosgan(model, splits.train, proto, label_pool=pool, eps=EPS, bound="tanh", config=zero).state_dict()
    z2 = train_prosgan(model, splits.train, proto, label_pool=pool, eps=EPS, bound="tanh", config=zero).state_dict()
    assert all(torch.equal(z1[k], z2[k]) for k in z1)
    c = train_prosgan(model, splits.train, proto, label_pool=pool, eps=EPS, config=fast_config(batch_size=60, seed=1))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c.state_dict()[k]) for k in a)


def test_training_reads_datasets_without_batch_through_a_dataloader(splits, pool):
    model = make_victim(splits.train)
    proto = StandInPrototype()
    full = splits.train
    subset = full.subset(torch.arange(30))  # a SubsetImageDataset: no .batch, items (image, label, index)
    in_memory = TensorImageDataset(full.images[:30], full.labels[:30])
    config = fast_config(batch_size=10, epochs=2)
    a = train_prosgan(model, subset, proto, label_pool=pool, eps=EPS, config=config)
    b = train_prosgan(model, in_memory, proto, label_pool=pool, eps=EPS, config=config)
    assert len(a.history) == 2
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_batches_per_epoch_caps_the_generator_steps(splits, pool):
    model = make_victim(splits.train)
    full = train_prosgan(model, splits.train, StandInPrototype(), label_pool=pool, eps=EPS,
                         config=fast_config(batch_size=10, epochs=2))
    capped = train_prosgan(model, splits.train, StandInPrototype(), label_pool=pool, eps=EPS,
                           config=fast_config(batch_size=10, epochs=2, batches_per_epoch=3))
    assert [h["g_steps"] for h in capped.history] == [3, 3]
    assert [h["g_steps"] for h in full.history] == [-(-len(splits.train) // 10)] * 2


def test_learning_rate_is_constant_then_decays_linearly():
    from hashguard.attacks.prosgan_networks import _linear_decay

    factor = _linear_decay(4)
    assert [factor(e) for e in range(4)] == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])
    assert _linear_decay(1)(0) == 1.0
    assert _linear_decay(100)(49) == 1.0 and _linear_decay(100)(99) == pytest.approx(1 / 51)


@pytest.mark.parametrize(
    "config, message",
    [
        (ProsGANConfig(epochs=0), "epochs"),
        (ProsGANConfig(batch_size=0), "batch_size"),
        (ProsGANConfig(d_every=0), "d_every"),
        (ProsGANConfig(lr=0.0), "lr"),
        (ProsGANConfig(batches_per_epoch=0), "batches_per_epoch"),
        (ProsGANConfig(res_blocks=-1), "res_blocks"),
        (ProsGANConfig(label_channels=0), "label_channels"),
        (ProsGANConfig(target_rule="overlap"), "target_rule"),
    ],
)
def test_training_rejects_bad_configs(splits, pool, config, message):
    model = make_victim(splits.train)
    with pytest.raises(ValueError, match=message):
        train_prosgan(model, splits.train, StandInPrototype(), label_pool=pool, config=config)


def test_training_rejects_bad_inputs(splits, pool):
    model = make_victim(splits.train)
    proto = StandInPrototype()
    model.train()
    with pytest.raises(ValueError, match="label_pool has 5 columns"):
        train_prosgan(model, splits.train, proto, label_pool=torch.eye(5), config=fast_config())
    with pytest.raises(ValueError, match="label_pool"):
        train_prosgan(model, splits.train, proto, label_pool=torch.ones(CLASSES), config=fast_config())
    with pytest.raises(ValueError, match="eps"):
        train_prosgan(model, splits.train, proto, label_pool=pool, eps=-1.0, config=fast_config())
    with pytest.raises(ValueError, match="bound must be"):
        train_prosgan(model, splits.train, proto, label_pool=pool, bound="clip", config=fast_config())
    odd = TensorImageDataset(torch.zeros(6, 3, 18, 18, dtype=torch.uint8), splits.train.labels[:6])
    with pytest.raises(ValueError, match="divisible by 4"):
        train_prosgan(model, odd, proto, label_pool=pool, config=fast_config())
    wrong_bits = StandInPrototype(bits=BITS + 1)
    with pytest.raises(ValueError, match="victim's codes"):
        train_prosgan(model, splits.train, wrong_bits, label_pool=pool, config=fast_config())
    # a failure inside the loop still restores the victim
    assert model.training and all(p.requires_grad for p in model.parameters())
