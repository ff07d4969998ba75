"""The feature classifier behind a diffusion benchmark's ``fd`` and ``gen_acc``: trained once on the training
split and cached on disk (``cache_dir``), keyed by everything that changes its weights."""

from __future__ import annotations

import hashlib
import json
import pickle

import torch
from torch import nn

from trainables.benchmarks.base import cache_dir


def cached_classifier(bench) -> nn.Module:
    """Train the benchmark's feature classifier on its training split, or load it from the cache."""
    c = bench.config
    # the device type and torch version are part of the key: the same training on another kind of device
    # gives slightly different weights, and fd should be comparable within a cache
    key = {"benchmark": bench.name, "data": bench.data_fingerprint(), "epochs": c.classifier_epochs,
           "classes": bench.num_classes, "arch": repr(bench.make_classifier()), "version": 1,
           "device": bench.device.type, "torch": torch.__version__}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir(c) / f"{bench.name}-classifier-{digest}.pt"
    with torch.random.fork_rng(devices=[]):  # same initial weights whatever the caller's RNG state
        torch.manual_seed(0)
        net = bench.make_classifier().to(bench.device)
    if path.exists():
        try:
            net.load_state_dict(torch.load(path, map_location=bench.device, weights_only=True))
            return net.eval().requires_grad_(False)
        except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError):  # damaged: train again
            pass
    generator = torch.Generator().manual_seed(0)
    keep = bench.y_train < bench.num_classes
    x, y = bench.x_train[keep], bench.y_train[keep]
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    net.train()
    with torch.enable_grad():
        _fit(net, opt, bench, x, y, c.classifier_epochs, generator)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{id(net)}")
    torch.save(net.state_dict(), tmp)
    tmp.replace(path)
    return net.eval().requires_grad_(False)


def _fit(net, opt, bench, x, y, epochs: int, generator: torch.Generator) -> None:
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            logits = net(bench.to_pixels(x[idx]).to(bench.device))
            loss = nn.functional.cross_entropy(logits, y[idx].to(bench.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
