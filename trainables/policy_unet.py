"""The diffusion policy's noise-prediction network: a 1D conditional U-Net over action sequences (000 C.2.1,
after Chi et al. 2023).

Input: a noised action sequence (B, T, D_a) and the diffusion timestep; output: the predicted noise, same
shape. Every residual block is FiLM-conditioned (per-channel scale and bias) on one global context vector:
a sinusoidal timestep embedding passed through a 2-layer Mish MLP (dim → 4·dim → dim), concatenated with the
flattened observation history (H·D_o). Encoder: one stage per width, two residual Conv1D blocks each and a
strided downsampling conv after every stage but the last; bottleneck: two residual blocks; decoder: one
stage per width but the widest, each concatenating the encoder's skip, two residual blocks and a transposed
-conv upsampling; then a Conv1D block and a 1×1 projection back to D_a. Multi-head self-attention over time
(written out as matmul-softmax, so forward-mode and double-backward work) follows the residual blocks of the
encoder levels in ``attention_levels`` (0-based), and the bottleneck's when the widest level is listed.
Widths [256, 512, 1024], kernel 5, 8 groups, timestep dim 512 and attention at levels 1-2 ("levels 2 and 3")
is the paper's network: 83.27M parameters with a 6×39 observation history, as 000 Table 6 counts (attention
in the decoder too would make 84.32M).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000.0) / (half - 1)))
        angles = t.float()[:, None] * freqs[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def conv_block(c_in: int, c_out: int, kernel: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(groups, c_out), nn.Mish())


class FiLMResidualBlock(nn.Module):
    """conv → FiLM(scale, bias from the context) → conv, plus a (1×1 when widths differ) residual."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.first = conv_block(c_in, c_out, kernel, groups)
        self.second = conv_block(c_out, c_out, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        return self.second(scale * self.first(x) + bias) + self.residual(x)


class TemporalAttention(nn.Module):
    """Pre-norm multi-head self-attention over the time axis with a residual connection."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        q, k, v = self.qkv(self.norm(x).transpose(1, 2)).view(b, t, 3, self.heads, c // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (b, heads, t, c/heads)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1)
        return x + self.out((weights @ v).transpose(1, 2).reshape(b, t, c)).transpose(1, 2)


class Stage(nn.Module):
    """Two FiLM residual blocks, optional attention."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int, heads: int | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([FiLMResidualBlock(c_in, c_out, cond_dim, kernel, groups),
                                     FiLMResidualBlock(c_out, c_out, cond_dim, kernel, groups)])
        self.attention = TemporalAttention(c_out, heads, groups) if heads else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, cond)
        return self.attention(x)


class ConditionalUnet1D(nn.Module):
    def __init__(self, action_dim: int, cond_dim: int, channels: list[int], kernel_size: int = 5,
                 groups: int = 8, time_dim: int = 256, attention_levels: list[int] = (), heads: int = 8) -> None:
        super().__init__()
        self.time_embedding = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, 4 * time_dim),
                                            nn.Mish(), nn.Linear(4 * time_dim, time_dim))
        context = time_dim + cond_dim
        last = len(channels) - 1

        def stage(c_in, c_out, level):
            return Stage(c_in, c_out, context, kernel_size, groups, heads if level in attention_levels else None)

        widths = [action_dim, *channels]
        self.down = nn.ModuleList([stage(widths[i], widths[i + 1], i) for i in range(len(channels))])
        self.downsample = nn.ModuleList([nn.Conv1d(c, c, 3, stride=2, padding=1) for c in channels[:-1]])
        self.mid = stage(channels[-1], channels[-1], last)
        self.up = nn.ModuleList([stage(2 * channels[i + 1], channels[i], None) for i in reversed(range(last))])
        self.upsample = nn.ModuleList([nn.ConvTranspose1d(channels[i], channels[i], 4, stride=2, padding=1)
                                       for i in reversed(range(last))])
        self.final = nn.Sequential(conv_block(channels[0], channels[0], kernel_size, groups),
                                   nn.Conv1d(channels[0], action_dim, 1))

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """actions (B, T, D_a), timesteps (B,) or scalar, cond (B, cond_dim) → predicted noise (B, T, D_a)."""
        x = actions.transpose(1, 2)
        timesteps = timesteps.expand(len(x)) if timesteps.dim() == 0 else timesteps
        context = torch.cat([self.time_embedding(timesteps), cond], dim=-1)
        skips = []
        for i, stage in enumerate(self.down):
            x = stage(x, context)
            skips.append(x)
            if i < len(self.downsample):
                x = self.downsample[i](x)
        x = self.mid(x, context)
        for stage, upsample in zip(self.up, self.upsample):
            x = upsample(stage(torch.cat([x, skips.pop()], dim=1), context))
        return self.final(x).transpose(1, 2)
