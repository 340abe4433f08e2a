"""The anchor builder's exact-label match: equal to a row-by-row comparison, without a (B, N, C) tensor."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch

from hashguard.codes import anchor_codes


def test_anchor_exact_match_needs_no_batch_by_reference_by_class_tensor():
    # 500 target labels against 20,000 reference rows of 100 classes: a (B, N, C) comparison
    # would hold 10^9 booleans (1 GB); the builder must stay far below that.
    script = textwrap.dedent(
        """
        import resource, torch
        from hashguard.codes import anchor_codes
        g = torch.Generator().manual_seed(0)
        ref_labels = (torch.rand(20000, 100, generator=g) < 0.03).float()
        ref_codes = torch.where(torch.rand(20000, 32, generator=g) < 0.5, -1.0, 1.0)
        targets = ref_labels[:500].clone()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        anchor_codes(targets, ref_codes, ref_labels, n_anchors=9)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    grown_mb = int(out.stdout.strip().splitlines()[-1])
    assert grown_mb < 400, f"anchor_codes grew the peak memory by {grown_mb} MB"


def test_anchor_exact_match_same_as_row_comparison():
    g = torch.Generator().manual_seed(1)
    ref_labels = (torch.rand(300, 6, generator=g) < 0.3).float()
    ref_codes = torch.where(torch.rand(300, 12, generator=g) < 0.5, -1.0, 1.0)
    targets = torch.cat([ref_labels[:40], torch.zeros(1, 6)])
    _, idx = anchor_codes(targets, ref_codes, ref_labels, n_anchors=5, seed=3, return_indices=True)
    for r in range(targets.shape[0]):
        exact = {j for j in range(300) if torch.equal(ref_labels[j], targets[r])}
        used = {int(j) for j in idx[r] if j >= 0}
        assert used <= exact and len(used) == min(5, len(exact))
