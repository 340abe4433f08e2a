"""ATRDH, adversarial training of THA (Wang et al., SIGIR 2021, "Targeted attack and defense for
deep hashing"; docs/methods.md#atrdh).

Per batch: draw random target labels (uniform over the distinct training labels), take one Adam
step of a PrototypeNet with the circle loss against the current training sign codes B (lr 1e-4,
betas 0.5 / 0.999), and build targeted adversarial examples by PGD toward p = sign(P(y_t))
(minimise -(1/K) <p, h>), eps 8/255, step 2/255, 7 iterations, random start. The model is then
updated on

    L = L_ori(h) + adv_weight * mean_ij ( <h(x')_i, U_j>/K - S_ij )^2,   S_ij in {-1, +1},

the DPH-style term of the adversarial codes against the benign continuous buffer U of the training
set (the THA repo uses the DPH loss itself as L_ori; SAAT's copy uses the model's own loss and
adv_weight 2; we use the checkpoint's objective and adv_weight 1). Adam lr 1e-4, betas (0.5, 0.999),
x0.1 at T/2 and 3T/4, 100 epochs, batch 32.
"""

from __future__ import annotations

import torch

from ..attacks.targets import unique_labels
from ..codes.prototype import PrototypeNet, circle_prototype_loss
from ..hashing.base import similarity
from .base import Defense
from .registry import register_defense


@register_defense("atrdh")
class ATRDH(Defense):
    """ATRDH: targeted PGD toward a co-trained prototype code; L_ori + DPH-style adversarial term."""

    inner_targeted = True
    defaults = {"epochs": 100, "optimizer": "adam", "lr": 1e-4, "betas": (0.5, 0.999), "weight_decay": 0.0}

    @classmethod
    def method_defaults(cls):
        return {"adv_weight": 1.0, "prototype_lr": 1e-4, "prototype_hidden": 4096}

    def setup(self, model, train):
        device = model.device
        self.pool = unique_labels(self.objective.Y).to(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.prototype = PrototypeNet(self.pool.shape[1], model.bits, hidden=int(self.params["prototype_hidden"])).to(device)
        self.prototype_opt = torch.optim.Adam(self.prototype.parameters(), lr=self.params["prototype_lr"], betas=(0.5, 0.999))
        self.target_gen = torch.Generator().manual_seed(self.config.seed + 1)

    def inner_target_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Uniform draws (from the run's seed) among the distinct training labels."""
        pick = torch.randint(0, self.pool.shape[0], (y.shape[0],), generator=self.target_gen)
        return self.pool[pick.to(self.pool.device)]

    def reference(self, y, idx, target_labels=None):
        """One Adam step of the PrototypeNet on the batch's targets, then their prototype codes."""
        if target_labels is None:
            raise ValueError("ATRDH guides its inner attack toward target labels: pass target_labels")
        targets = target_labels
        self.prototype.train()
        _, h, _ = self.prototype(targets)
        loss = circle_prototype_loss(h, targets, self.B, self.objective.Y)
        self.prototype_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.prototype_opt.step()
        return self.prototype.codes(targets)

    def outer_loss(self, h_ben, h_adv, y, idx, ref):
        l_ori = self.objective(h_ben, y, idx)  # refreshes the benign buffer U first
        k = h_adv.shape[1]
        s = 2 * similarity(y, self.objective.Y) - 1
        adv = ((h_adv @ self.objective.U.clone().t()) / k - s).pow(2).mean()
        return l_ori + self.params["adv_weight"] * adv

    def extra_state(self):
        return {"prototype": self.prototype.state_dict(), "prototype_opt": self.prototype_opt.state_dict(),
                "target_gen": self.target_gen.get_state()}

    def load_extra_state(self, state):
        if state:
            self.prototype.load_state_dict(state["prototype"])
            self.prototype_opt.load_state_dict(state["prototype_opt"])
            self.target_gen.set_state(state["target_gen"])
