"""Image JEPA pretraining with VICReg or SIGReg, judged by linear probes (paper 3 (i), docs/reference.md#image-jepa).

    python -m jepa_agent.image.train --preset cpu regulariser=sigreg
    python -m jepa_agent.image.train --preset cpu regulariser=vicreg projector=none     # Table 3 ablation
    python -m jepa_agent.image.train --preset reference data_root=~/data/cifar10         # GPU sizes
    python -m jepa_agent.image.train --preset cpu --out-dir outputs/image_jepa/run --resume   # or tworooms-image-jepa

Any ``--key-name value`` or ``key_name=value`` overrides a field of ``ImageJEPAConfig`` (unknown
keys are errors; ``--help`` lists them). Per epoch:
a checkpoint (config + format version, loads with ``weights_only=True``), a CSV row and the online
probe's test accuracy. After training: the offline linear probe and k-NN on frozen features, and
the floors (raw pixels, random-init encoder) in ``results.json``. Ctrl-C or SIGTERM saves the
checkpoint after the current step (mid-epoch: the step and the random state are kept) and exits
130 / 143; ``--resume`` continues exactly.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from jepa_agent.image.models import ImageJEPA, JointEmbeddingLoss, build_encoder
from jepa_agent.optim import WarmupCosine, build_optimizer
from jepa_agent.precision import autocast, check_amp, use_bf16
from jepa_agent.validation import load_checkpoint_file, run_cli, state_checksum, verify_state
from jepa_agent.image.augment import AugmentConfig, TwoViews
from training.config_checks import IMAGE_RANGES, check_device, check_ranges
from training.distributed import resolve_device
from training.interrupt import CsvLog, StopSignal, atomic_save, new_dir, remove_if_empty, truncate_csv
from jepa_agent.image.data import ImageData, load_dataset, pad_to
from jepa_agent.image.probe import extract_features, knn_accuracy, linear_probe, pixel_features
from tworooms_env.cli import ConfigCLI

FORMAT_VERSION = 1


@dataclass
class ImageJEPAConfig:
    """Every setting of a run; saved in each checkpoint and in results.json."""

    # data
    dataset: Literal["fashion_mnist", "mnist", "cifar10", "synthetic"] = "fashion_mnist"  # image data set
    data_root: str = ""  # folder of the data set ("": the Debian Fashion-MNIST folder)
    pad_to: int = 0  # zero-pad images to this size (0: native size)
    train_limit: int = 0  # use the first N training images (0: all), for quick checks
    test_limit: int = 0  # use the first N test images (0: all)
    synthetic_size: int = 512  # images of the synthetic data set (per split)
    # model
    arch: Literal["resnet18", "vit_s"] = "resnet18"  # backbone: a ResNet or a small ViT
    width: int = 16  # channels of the first ResNet stage (ViT: embedding width / 12)
    blocks: str = "2-2-2-2"  # ResNet blocks per stage
    stem_padding: int = 1  # 2 is the reference's 34 x 34 stem (docs/reference.md#backbones-and-losses)
    patch_size: int = 4  # ViT patch size (px)
    projector: str = "1024-1024-128"  # hidden/output sizes after the features; "none": no projector
    channels_last: bool = True  # channels-last memory format (faster convolutions on CPUs)
    amp: Literal["auto", "bf16", "off"] = "auto"  # bf16 autocast: auto (CUDA, and CPUs with native bf16: ~2x faster) | bf16 | off
    # loss (Tables 2-3 ablations: sigreg_lambda, std_coeff / cov_coeff, projector)
    regulariser: Literal["sigreg", "vicreg"] = "sigreg"  # the joint-embedding regulariser
    sigreg_lambda: float = 10.0  # SIGReg: weight of the Gaussianity test against the invariance term
    num_slices: int = 256  # SIGReg: random 1-D projections per step
    num_knots: int = 17  # SIGReg: quadrature points of the characteristic-function test
    std_coeff: float = 1.0  # VICReg: weight of the variance term
    cov_coeff: float = 100.0  # VICReg: weight of the covariance term
    # optimisation
    optimizer: Literal["lars", "adamw"] = "lars"  # optimiser of the encoder and projector
    lr: float = 0.3  # at batch 256; scaled linearly with batch_size
    probe_lr: float = 0.1  # learning rate of the online linear probe
    weight_decay: float = 1e-4  # weight decay of the optimiser
    batch_size: int = 256  # images per step (two views each)
    epochs: int = 16  # passes over the training set
    warmup_epochs: float = 1.0  # epochs of linear learning-rate warmup, then cosine decay
    # augmentation (the defaults of docs/reference.md#data-and-augmentations)
    crop_scale_min: float = 0.2  # smallest area share of a random resized crop
    flip_p: float = 0.5  # probability of a horizontal flip
    jitter_p: float = 0.8  # probability of colour jitter
    brightness: float = 0.4  # colour jitter: brightness strength
    contrast: float = 0.4  # colour jitter: contrast strength
    grayscale_p: float = 0.2  # probability of converting to grey
    solarize_p: float = 0.1  # probability of solarisation
    # evaluation
    eval_every: int = 1  # epochs between online-probe test evaluations
    knn_k: int = 20  # neighbours of the k-NN evaluation
    floors: bool = True  # also probe raw pixels and a random-init encoder
    # run
    seed: int = 42  # seed of the weights, the batches and the augmentations
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads (0: torch's default)
    stop_after: int = 0  # pause after this many epochs (0: run to the end); continue with --resume
    out_dir: str = "outputs/image_jepa/run"  # directory of the checkpoint, the logs and results.json

    def __post_init__(self) -> None:
        check_ranges(self, IMAGE_RANGES)  # lr > 0 (before batch scaling), batch_size >= 1, ... (stated there)
        check_device(self.device)
        check_amp(self.amp)
        for name, allowed in (("regulariser", ("sigreg", "vicreg")), ("optimizer", ("lars", "adamw")),
                              ("arch", ("resnet18", "vit_s"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")


PRESETS: dict[str, dict] = {
    # seconds on a CPU: the test suite's configuration
    "tiny": dict(dataset="synthetic", synthetic_size=256, width=4, blocks="1-1-1-1", projector="64-32",
                 batch_size=64, epochs=3, optimizer="adamw", lr=2e-3, probe_lr=1e-2, weight_decay=1e-4,
                 num_slices=64, warmup_epochs=0.5, knn_k=5, out_dir="outputs/image_jepa/tiny"),
    # <= 60 minutes on 2 CPU cores, Fashion-MNIST: a ResNet-10 (one block per stage) of width 32 (256-d
    # features), crops of 40-100 %, 16 epochs; bf16 autocast where the CPU has native bf16 (amp=auto)
    "cpu": dict(width=32, blocks="1-1-1-1", crop_scale_min=0.4, epochs=16, out_dir="outputs/image_jepa/cpu"),
    # the reference's sizes (docs/reference.md#image-jepa), for a GPU: CIFAR-10, ResNet-18 width 64,
    # 300 epochs, LARS 0.3, 10 warmup epochs
    "reference": dict(dataset="cifar10", width=64, stem_padding=2, projector="2048-2048-128", epochs=300,
                      warmup_epochs=10, num_knots=10, channels_last=False, out_dir="outputs/image_jepa/reference"),
}


@dataclass
class RunOptions:
    """Options of one invocation (not saved with the config)."""

    resume: bool = False  # continue from the checkpoint in --out-dir (out_dir/checkpoint.pt)


CLI = ConfigCLI(ImageJEPAConfig, prog="tworooms-image-jepa", description=__doc__.split("\n\n")[0], presets=PRESETS,
                default_preset="cpu", extra=RunOptions)


def make_config(preset: str = "cpu", overrides: Sequence[str] = ()) -> ImageJEPAConfig:
    """Preset values, then command-line ``overrides`` (``key=value`` or ``--key value``; see tworooms_env.cli)."""
    return CLI.parse(["--preset", preset, *overrides])


def load_data(cfg: ImageJEPAConfig) -> tuple[ImageData, ImageData]:
    train, test = (load_dataset(cfg.dataset, cfg.data_root, s, cfg.synthetic_size) for s in ("train", "test"))
    if cfg.pad_to:
        train, test = pad_to(train, cfg.pad_to), pad_to(test, cfg.pad_to)
    return train.subset(cfg.train_limit), test.subset(cfg.test_limit)


def build_model(cfg: ImageJEPAConfig, data: ImageData) -> ImageJEPA:
    _, c, h, _ = data.images.shape
    encoder = build_encoder(cfg.arch, c, h, cfg.width, cfg.blocks, cfg.stem_padding, cfg.patch_size)
    return ImageJEPA(encoder, "" if cfg.projector in ("", "none") else cfg.projector)


def augment_config(cfg: ImageJEPAConfig) -> AugmentConfig:
    return AugmentConfig(crop_scale=(cfg.crop_scale_min, 1.0), flip_p=cfg.flip_p, jitter_p=cfg.jitter_p,
                         brightness=cfg.brightness, contrast=cfg.contrast, grayscale_p=cfg.grayscale_p,
                         solarize_p=cfg.solarize_p)


class Run:
    """Everything a training run holds; ``state_dict`` / ``load`` make the checkpoint."""

    def __init__(self, cfg: ImageJEPAConfig, train: ImageData):
        self.cfg, self.device = cfg, resolve_device(cfg.device)
        self.bf16 = use_bf16(cfg.amp, self.device)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg, train).to(self.device)
        self.probe = nn.Linear(self.model.feat_dim, train.num_classes).to(self.device)
        self.loss_fn = JointEmbeddingLoss(cfg.regulariser, cfg.std_coeff, cfg.cov_coeff, cfg.sigreg_lambda,
                                          cfg.num_slices, cfg.num_knots, seed=cfg.seed).to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # two groups with their own base lrs; the schedule scales both (the reference overwrites the
        # probe's: docs/reference.md#optimiser-and-schedule)
        groups = [{"params": list(self.model.parameters()), "lr": cfg.lr * cfg.batch_size / 256},
                  {"params": list(self.probe.parameters()), "lr": cfg.probe_lr, "weight_decay": 0.0}]
        self.optimizer = build_optimizer(cfg.optimizer, groups, cfg.weight_decay)
        self.steps_per_epoch = len(train) // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"batch_size {cfg.batch_size} exceeds the {len(train)} training images")
        total = self.steps_per_epoch * cfg.epochs
        self.scheduler = WarmupCosine(self.optimizer, total, min(total, round(cfg.warmup_epochs * self.steps_per_epoch)))
        self.epoch, self.history = 0, []
        # an epoch interrupted by a signal: steps done, their loss sums and seconds, the RNG after them
        self.step_in_epoch, self.partial, self.rng_state = 0, {}, None

    def state_dict(self) -> dict:
        weights = self.model.state_dict()
        return {"format_version": FORMAT_VERSION, "config": dataclasses.asdict(self.cfg), "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch, "partial": dict(self.partial), "torch_rng": self.rng_state,
                "model": weights, "checksum": state_checksum(weights), "probe": self.probe.state_dict(),
                "loss_fn": self.loss_fn.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "history": self.history}

    def load(self, path: Path) -> None:
        ckpt = load_checkpoint_file(path, "image-JEPA checkpoint", self.device)
        if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
            got = ckpt.get("format_version") if isinstance(ckpt, dict) else type(ckpt).__name__
            raise ValueError(f"{path} has format {got!r}, expected {FORMAT_VERSION}")
        verify_state(ckpt["model"], path, ckpt.get("checksum"))
        # these may change between sessions; everything else must match the checkpoint
        free = ("epochs", "out_dir", "device", "amp", "threads", "num_threads", "stop_after", "floors", "eval_every")
        now = dataclasses.asdict(self.cfg)
        diff = {k: (v, now.get(k)) for k, v in ckpt["config"].items() if k not in free and now.get(k) != v}
        if diff:
            raise ValueError(f"cannot resume {path}: config differs (saved, now): {diff}")
        for name in ("model", "probe", "loss_fn", "optimizer", "scheduler"):
            getattr(self, name).load_state_dict(ckpt[name])
        self.epoch, self.history = ckpt["epoch"], ckpt["history"]
        self.step_in_epoch, self.partial = int(ckpt.get("step_in_epoch", 0)), dict(ckpt.get("partial") or {})
        self.rng_state = ckpt.get("torch_rng")


def train_epoch(run: Run, train: ImageData, views: TwoViews, bar: tqdm, stop: StopSignal | None = None) -> dict[str, float] | None:
    """One pass over the shuffled training set (drop_last); returns the epoch's mean losses, or None
    when ``stop`` was signalled mid-epoch (the run then holds what a resumed epoch continues from)."""
    cfg, dev, model = run.cfg, run.device, run.model
    torch.manual_seed(cfg.seed * 1000 + run.epoch)  # per-epoch seed: resuming replays the same batches
    order = torch.randperm(len(train))
    first = run.step_in_epoch
    if first:  # resumed mid-epoch: the augmentations continue from the saved random state
        torch.set_rng_state(run.rng_state)
    sums: dict[str, float] = {k: v for k, v in run.partial.items() if k != "seconds"}
    model.train()
    for it in range(first, run.steps_per_epoch):
        idx = order[it * cfg.batch_size : (it + 1) * cfg.batch_size]
        v1, v2 = views(train.images[idx].to(dev, non_blocking=True))
        x = torch.cat([v1, v2])  # one pass for both views: better use of the cores
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(dev, run.bf16):
            h, z = model(x)
            h1, (z1, z2) = h[: len(idx)], z.split(len(idx))
            terms = run.loss_fn(z1, z2)
            # online probe on detached features of the first view (docs/reference.md#linear-probe)
            terms["probe"] = F.cross_entropy(run.probe(h1.detach()).float(), train.labels[idx].to(dev))
        total = terms["loss"] + terms["probe"]
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss is not finite at epoch {run.epoch + 1}, step {it + 1} (terms "
                                     f"{ {k: float(v.detach()) for k, v in terms.items()} }); training stopped. The last "
                                     f"good checkpoint, if any, is in {cfg.out_dir} (not overwritten). Try a lower lr.")
        run.optimizer.zero_grad(set_to_none=True)
        total.backward()
        run.optimizer.step()
        run.scheduler.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v.item()
        bar.update(1)
        bar.set_postfix(loss=f"{terms['loss'].item():.4f}", probe=f"{terms['probe'].item():.3f}")
        if stop is not None and stop.stop and it + 1 < run.steps_per_epoch:
            run.step_in_epoch, run.partial, run.rng_state = it + 1, sums, torch.get_rng_state()
            return None
    run.step_in_epoch, run.rng_state = 0, None
    return {k: v / run.steps_per_epoch for k, v in sums.items()}


@torch.no_grad()
def online_probe_accuracy(run: Run, test: ImageData, views: TwoViews) -> float:
    feats = extract_features(run.model.encoder, test.images, views.test, device=run.device, bf16=run.bf16)
    predictions = run.probe(feats.to(run.device)).argmax(1).cpu()
    return (predictions == test.labels).float().mean().item()


def evaluate_features(encoder: nn.Module, train: ImageData, test: ImageData, views: TwoViews, cfg: ImageJEPAConfig,
                      device: torch.device) -> dict[str, float]:
    """Offline linear probe and k-NN on frozen encoder features."""
    bf16 = use_bf16(cfg.amp, device)
    f_train = extract_features(encoder, train.images, views.test, device=device, bf16=bf16)
    f_test = extract_features(encoder, test.images, views.test, device=device, bf16=bf16)
    probe = linear_probe(f_train, train.labels, f_test, test.labels)
    knn = knn_accuracy(f_train, train.labels, f_test, test.labels, k=min(cfg.knn_k, len(train)))
    return {"linear_probe_test_acc": probe["test_acc"], "linear_probe_train_acc": probe["train_acc"], "knn_test_acc": knn}


def floors(cfg: ImageJEPAConfig, train: ImageData, test: ImageData, views: TwoViews, device: torch.device) -> dict:
    """Raw-pixel linear probe and random-init encoder probe: what pretraining must beat."""
    pixels = linear_probe(pixel_features(train.images, views.test), train.labels,
                          pixel_features(test.images, views.test), test.labels)
    torch.manual_seed(cfg.seed)
    random_encoder = build_model(cfg, train).encoder.to(device)
    return {"raw_pixels": {"linear_probe_test_acc": pixels["test_acc"]},
            "random_init_encoder": evaluate_features(random_encoder, train, test, views, cfg, device)}


def train(cfg: ImageJEPAConfig, resume: bool = False) -> dict:
    """Pretrain, checkpoint every epoch, then probe; returns (and writes) the results."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    ckpt_path = out / "checkpoint.pt"
    if resume and not ckpt_path.is_file():
        raise FileNotFoundError(f"--resume: nothing to resume from (no checkpoint at {ckpt_path})")
    created = new_dir(out)
    try:
        train_data, test_data = load_data(cfg)
        views = TwoViews(train_data.mean, train_data.std, augment_config(cfg))
        run = Run(cfg, train_data)
        if resume:
            run.load(ckpt_path)
    except BaseException:
        remove_if_empty(out, created)  # nothing written: leave no empty out_dir behind
        raise
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    if resume:  # rows logged after that checkpoint come again
        truncate_csv(out / "log.csv", run.epoch, key="epoch")
    log = CsvLog(out / "log.csv", append=bool(resume))
    bar = tqdm(total=run.steps_per_epoch * cfg.epochs, initial=run.steps_per_epoch * run.epoch, desc=f"{cfg.regulariser}",
               unit="it", dynamic_ncols=True)
    with StopSignal() as stop:  # SIGINT / SIGTERM: save a checkpoint (mid-epoch too), then exit 130 / 143
        while run.epoch < cfg.epochs and not (cfg.stop_after and run.epoch >= cfg.stop_after) and not stop.stop:
            t0 = time.perf_counter() - run.partial.get("seconds", 0.0)
            losses = train_epoch(run, train_data, views, bar, stop)
            seconds = time.perf_counter() - t0
            if losses is None:  # interrupted mid-epoch
                run.partial["seconds"] = seconds
                atomic_save(run.state_dict(), ckpt_path)
                break
            run.partial = {}
            row = {"epoch": run.epoch + 1, **losses, "lr": run.optimizer.param_groups[0]["lr"], "train_seconds": seconds,
                   "images_per_s": 2 * run.steps_per_epoch * cfg.batch_size / seconds}
            if (run.epoch + 1) % cfg.eval_every == 0 or run.epoch + 1 == cfg.epochs:
                row["online_probe_test_acc"] = online_probe_accuracy(run, test_data, views)
            run.epoch += 1
            run.history.append(row)
            atomic_save(run.state_dict(), ckpt_path)
            log.write(row)
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    bar.close()
    if stop.stop:
        tqdm.write(f"interrupted at epoch {run.epoch}, step {run.step_in_epoch}: {ckpt_path} saved; continue with --resume")
        return {"config": dataclasses.asdict(cfg), "history": run.history, "stopped_at_epoch": run.epoch,
                "exit_code": stop.exit_code}
    if run.epoch < cfg.epochs:
        return {"config": dataclasses.asdict(cfg), "history": run.history, "stopped_at_epoch": run.epoch}
    t0 = time.perf_counter()
    results = {"config": dataclasses.asdict(cfg), "format_version": FORMAT_VERSION, "history": run.history,
               "train_seconds": sum(r["train_seconds"] for r in run.history),
               "final": evaluate_features(run.model.encoder, train_data, test_data, views, cfg, run.device)}
    if cfg.floors:
        results["floors"] = floors(cfg, train_data, test_data, views, run.device)
    results["eval_seconds"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv: list[str] | None = None) -> dict:
    """Train per the command line; returns the results (``cli`` turns them into an exit code)."""
    cfg, run = CLI.parse_all(argv)
    results = train(cfg, resume=run.resume)
    summary = {k: results[k] for k in ("final", "floors", "stopped_at_epoch") if k in results}
    print(json.dumps(summary, indent=2))
    return results


def cli(argv: list[str] | None = None) -> int:
    """The command line (``tworooms-image-jepa``): 0 when done, 2 for a user mistake (one ``error:``
    line), 1 for a diverged run, 130 / 143 after a signal."""
    return run_cli(lambda a: main(a).get("exit_code", 0), argv)


if __name__ == "__main__":
    sys.exit(cli())
