"""Evaluation of frozen image features: offline linear probe and k-NN (docs/reference.md#linear-probe and beyond).

- ``extract_features``: the encoder in eval mode (batch-norm running statistics), no augmentation.
- ``linear_probe``: multinomial logistic regression on standardised frozen features, trained to
  convergence with full-batch L-BFGS (deterministic; no lr or epoch count to tune).
- ``knn_accuracy``: weighted k-NN on cosine similarity (k = 20, weights exp(sim / 0.07), as in
  Wu et al. 2018 / DINO).
The floors use the same probe: raw pixels (``pixel_features``) and a random-init encoder.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from jepa_agent.precision import autocast, use_bf16


@torch.no_grad()
def extract_features(
    encoder: nn.Module, images: torch.Tensor, transform, batch_size: int = 1024, device: str | torch.device = "cpu",
    bf16: bool | None = None,
) -> torch.Tensor:
    """Features [N, feat_dim] (float32, on CPU) of uint8 images [N, C, H, W] via ``transform``.

    ``bf16``: autocast the encoder (None: what ``amp="auto"`` picks for ``device``)."""
    bf16 = use_bf16("auto", device) if bf16 is None else bf16
    was_training = encoder.training
    encoder.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = transform(images[start : start + batch_size].to(device))
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, bf16):
            out.append(encoder(x).float().cpu())
    encoder.train(was_training)
    return torch.cat(out)


def pixel_features(images: torch.Tensor, transform) -> torch.Tensor:
    """The raw-pixel floor: normalised pixels flattened to [N, C * H * W]."""
    return transform(images).flatten(1)


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    weight_decay: float = 1e-4,
    max_iter: int = 300,
) -> dict[str, float]:
    """Train a linear classifier to convergence on frozen features; returns train / test accuracy."""
    if train_x.dim() != 2 or test_x.dim() != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got {tuple(train_x.shape)}, {tuple(test_x.shape)}")
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xs, xt = (train_x - mean) / std, (test_x - mean) / std
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    clf = nn.Linear(xs.shape[1], num_classes)
    nn.init.zeros_(clf.weight), nn.init.zeros_(clf.bias)  # convex problem: a fixed start, a fixed answer
    opt = torch.optim.LBFGS(clf.parameters(), lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(clf(xs), train_y) + weight_decay * clf.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        train_acc = (clf(xs).argmax(1) == train_y).float().mean().item()
        test_acc = (clf(xt).argmax(1) == test_y).float().mean().item()
    return {"train_acc": train_acc, "test_acc": test_acc}


@torch.no_grad()
def knn_accuracy(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, k: int = 20,
    temperature: float = 0.07, chunk: int = 1024,
) -> float:
    """Weighted k-NN top-1 accuracy with cosine similarity; test points processed in chunks."""
    bank, num_classes = F.normalize(train_x, dim=1), int(train_y.max()) + 1
    correct = 0
    for start in range(0, len(test_x), chunk):
        q = F.normalize(test_x[start : start + chunk], dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(q), num_classes).scatter_add_(1, train_y[idx], torch.exp(sim / temperature))
        correct += (votes.argmax(1) == test_y[start : start + chunk]).sum().item()
    return correct / len(test_x)
