"""Seconds per FTML meta-update, first order against second order (differentiating through the inner
step), on the same model, the same initial weights and the same batches; prints a Markdown table.
000 Appendix C.3 (Table 6) reports about 5 it/s first order and 1 it/s second order for its 37.45M-param
ImageNet UNet at batch 128 (64 support + 64 query), i.e. about 5x.

Each batch is 2B samples of one task (B support + B query, the size of a β = 1 replay-mixed batch), so
no teacher is needed; replay is off (it changes only where the samples come from).

    .venv/bin/python scripts/bench_second_order.py [--updates 20] [--device cpu] [--paper]

``--paper`` adds the UNet of the `imagenet32` benchmark (000's architecture) on random 32×32 images at
000's batch (64 + 64); use it on a GPU.
"""

from __future__ import annotations

import copy
import time

import click


def synthetic_imagenet32(device):
    """The `imagenet32` benchmark with random images in place of the dataset (the model is what counts)."""
    import torch

    from trainables.benchmarks.imagenet32 import ImageNet32, ImageNet32Config

    class Synthetic(ImageNet32):
        def load(self):
            g = torch.Generator().manual_seed(0)
            x = torch.randint(0, 256, (512, 3, 32, 32), generator=g, dtype=torch.uint8)
            y = torch.randint(0, 50, (512,), generator=g)
            return x, y, x[:64], y[:64]

    return Synthetic(ImageNet32Config(), device)


def time_updates(bench, model, batches, second_order: bool, warmup: int) -> float:
    """Seconds per update over ``batches`` (after ``warmup`` untimed ones)."""
    import torch

    from trainables.methods.ftml import FTML
    from trainables.params import build

    params = build(FTML.Params, {"second_order": second_order, "replay_ratio": 0.0, "inner_lr": 1e-4,
                                 "lr": 2e-4}, "methods.ftml")
    method = FTML(params, copy.deepcopy(model), bench, torch.Generator().manual_seed(0))
    method.begin_task(bench.tasks[0])
    sync = torch.cuda.synchronize if bench.device.type == "cuda" else (lambda: None)
    for b in batches[:warmup]:
        method.update(b)
    sync()
    start = time.perf_counter()
    for b in batches[warmup:]:
        method.update(b)
    sync()
    return (time.perf_counter() - start) / (len(batches) - warmup)


@click.command()
@click.option("--updates", default=20, show_default=True, help="timed updates per variant")
@click.option("--warmup", default=2, show_default=True, help="untimed updates first")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto")
@click.option("--threads", default=0, show_default=True, help="torch CPU threads (0: leave as is)")
@click.option("--paper", is_flag=True, help="also 000's ImageNet UNet (37M params) at batch 64 + 64")
def main(updates: int, warmup: int, device: str, threads: int, paper: bool) -> None:
    import torch

    from trainables.build import make_benchmark, resolve_device

    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    settings = [
        ("MLP 64-100-100-10 (permuted_digits)", make_benchmark("permuted_digits", {"preset": "tiny"}, str(dev)), 10),
        ("tiny UNet (split_digits_diffusion tiny)",
         make_benchmark("split_digits_diffusion", {"preset": "tiny"}, str(dev)), 16),
    ]
    if paper:
        settings.append(("ImageNet UNet (imagenet32, 000 Table 3)", synthetic_imagenet32(dev), 64))
    rows = []
    for label, bench, half in settings:
        torch.manual_seed(0)
        model = bench.make_model()
        n_params = sum(p.numel() for p in model.parameters())
        g = torch.Generator().manual_seed(1)
        batches = [{k: v.to(dev) for k, v in bench.train_sample(bench.tasks[0], 2 * half, g).items()}
                   for _ in range(warmup + updates)]
        first = time_updates(bench, model, batches, False, warmup)
        second = time_updates(bench, model, batches, True, warmup)
        rows.append((label, n_params, 2 * half, first, second))
    print(f"device: {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}, "
          f"{torch.get_num_threads()} threads), {updates} timed updates each, torch {torch.__version__}\n")
    print("| model | params | batch (support + query) | first order s/update | second order s/update | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, n, b, fo, so in rows:
        print(f"| {label} | {n / 1e6:.3f}M | {b // 2} + {b // 2} | {fo:.4f} | {so:.4f} | {so / fo:.2f}x |")


if __name__ == "__main__":
    main()
