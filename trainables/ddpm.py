"""The ε-prediction diffusion the diffusion benchmarks share (images and action sequences alike): DDPM
forward noising at random timesteps, the per-sample denoising and distillation losses, and DDIM (η = 0)
sampling.

A benchmark passes its model as ``predict(x_t, t)`` -> predicted noise (conditioning bound in), and its
``alphas_cumprod`` already on ``device``. Every random draw comes from a CPU generator, in a fixed order
(timesteps, then noise), so a run gives the same numbers on every device.
"""

from __future__ import annotations

from typing import Callable

import torch
from diffusers import DDIMScheduler
from torch import nn

from trainables.benchmarks.base import randn

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> predicted noise


def noised(x0: torch.Tensor, alphas_cumprod: torch.Tensor, t_range: tuple[int, int], generator: torch.Generator,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, t, noise): one timestep per sample, uniform in [low, high), then Gaussian noise of x0's shape;
    x_t = √ᾱ_t x0 + √(1 − ᾱ_t) noise."""
    low, high = t_range
    t = torch.randint(low, high, (len(x0),), generator=generator).to(device)
    noise = randn(tuple(x0.shape), generator, device)
    a = alphas_cumprod[t].view(-1, *[1] * (x0.dim() - 1))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise, t, noise


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all but the first axis of the squared error, shape (B,)."""
    return ((pred - target) ** 2).flatten(1).mean(1)


def denoising_loss(predict: Predict, x0: torch.Tensor, alphas_cumprod: torch.Tensor, t_range: tuple[int, int],
                   generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Per-sample noise MSE of ``predict`` on x0 noised at random timesteps in ``t_range``."""
    x_t, t, noise = noised(x0, alphas_cumprod, t_range, generator, device)
    return per_sample_mse(predict(x_t, t), noise)


def distillation_loss(student: Predict, teacher: Predict, x0: torch.Tensor, alphas_cumprod: torch.Tensor,
                      t_range: tuple[int, int], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Per-sample MSE of the student's noise prediction onto the (frozen, no-grad) teacher's, at the same
    noised inputs."""
    x_t, t, _ = noised(x0, alphas_cumprod, t_range, generator, device)
    with torch.no_grad():
        target = teacher(x_t, t)
    return per_sample_mse(student(x_t, t), target)


def ddim_sampler(scheduler, steps: int, **options) -> DDIMScheduler:
    """A DDIM scheduler of ``steps`` steps on the training scheduler's noise schedule (``options``
    override its config, e.g. timestep_spacing)."""
    ddim = DDIMScheduler.from_config(scheduler.config, **options)
    ddim.set_timesteps(steps)
    return ddim


@torch.no_grad()
def ddim_sample(model: nn.Module, predict: Predict, sampler: DDIMScheduler, shape: tuple,
                generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """DDIM (η = 0) samples of ``shape`` from Gaussian noise, clipped to [-1, 1]; ``model`` (behind
    ``predict``) runs in eval mode and gets its training mode back."""
    x = randn(shape, generator, device)
    was_training = model.training
    model.eval()
    for t in sampler.timesteps:
        x = sampler.step(predict(x, t.to(device)), t, x).prev_sample
    model.train(was_training)
    return x.clamp(-1, 1)
