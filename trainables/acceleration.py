"""The GPU path's options, as benchmark settings every benchmark carries (``Protocol``): ``precision``,
``tf32`` and ``channels_last``, all off by default, so a space (or ``--set benchmark.precision=bf16``)
turns them on for a cluster without a code change, and they are part of the configuration on record.

- ``precision: bf16``: every training step (``Method.update`` and ``meta_update``) runs under
  ``torch.autocast`` of the run's device with bfloat16 (parameters, gradients and optimizer states stay
  fp32, as autocast does); evaluation stays fp32, so metrics are comparable across precisions.
- ``tf32``: TF32 matmuls and cuDNN convolutions during the training steps (CUDA only; set on entry and
  restored on exit, so nothing else in the process changes).
- ``channels_last``: the model's 4-D (convolution) weights stored channels-last (the image UNet), once,
  when the run builds the model.

``torch.compile`` is not an option here: methods copy models (teachers, modules), call them through
``torch.func`` and checkpoint their ``state_dict``, which a compiled wrapper renames; ``scripts/bench.py``
measures what it would buy on the paper networks first.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

@contextmanager
def training_steps(config, device: torch.device) -> Iterator[None]:
    """The context of a training step under ``config``'s ``precision`` and ``tf32`` settings (nothing at all
    when both are off: it wraps every step of the loop)."""
    if config.precision == "fp32" and not config.tf32:
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if config.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def prepare_model(model: nn.Module, config) -> nn.Module:
    """The model with its convolution weights channels-last when ``channels_last`` is set; else itself."""
    if config.channels_last and any(p.dim() == 4 for p in model.parameters()):
        model = model.to(memory_format=torch.channels_last)
    return model
