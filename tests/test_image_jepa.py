"""Image JEPA: augmentation, data loaders, models, optimisation and a tiny end-to-end run."""

import gzip
import json
import pickle
import struct

import numpy as np
import pytest
import torch

from jepa_agent.image.models import ImageJEPA, JointEmbeddingLoss, ResNet18, ViT, build_encoder
from jepa_agent.optim import LARS, WarmupCosine, build_optimizer, warmup_cosine_factor
from jepa_agent.precision import cpu_has_native_bf16, use_bf16
from jepa_agent.image.augment import AugmentConfig, TwoViews, augment, random_resized_crop_flip
from jepa_agent.image.data import load_cifar10, load_idx, load_mnist_like, pad_to, synthetic_images
from jepa_agent.image.train import main, make_config, train
from jepa_agent.image.probe import knn_accuracy, linear_probe

FAST = ["threads=1", "floors=false"]


# ---------------------------------------------------------------- augmentation
@pytest.mark.parametrize("channels", [1, 3])
def test_augment_shapes_and_ranges(channels):
    images = torch.randint(0, 256, (16, channels, 20, 20), dtype=torch.uint8)
    mean, std = (0.5,) * channels, (0.25,) * channels
    v1, v2 = TwoViews(mean, std)(images)
    assert v1.shape == v2.shape == (16, channels, 20, 20) and v1.dtype == torch.float32
    assert not torch.equal(v1, v2)  # two independent views
    lo, hi = (0 - 0.5) / 0.25, (1 - 0.5) / 0.25
    assert v1.min() >= lo - 1e-5 and v1.max() <= hi + 1e-5
    raw = augment(images.float() / 255, AugmentConfig(jitter_p=1.0, solarize_p=1.0, grayscale_p=1.0))
    assert raw.min() >= 0 and raw.max() <= 1


def test_full_crop_is_identity_and_flip_mirrors():
    x = torch.rand(4, 3, 8, 8)
    keep = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0)
    assert torch.allclose(random_resized_crop_flip(x, keep), x, atol=1e-5)
    flip = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=1.0)
    assert torch.allclose(random_resized_crop_flip(x, flip), x.flip(-1), atol=1e-5)


def test_augment_rejects_bad_input():
    with pytest.raises(ValueError, match="channels"):
        TwoViews((0.5,), (0.25,))(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        TwoViews((0.5,), (0.25,))(torch.zeros(8, 8, dtype=torch.uint8))


# ---------------------------------------------------------------- data
def _write_cifar(root, n_per_batch=6):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n_per_batch).tolist(), b"batch_label": name.encode()}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": n_per_batch}, f)


def test_cifar10_loader_on_pickle_fixture(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    _write_cifar(folder)
    train, test = load_cifar10(tmp_path, "train"), load_cifar10(folder, "test")
    assert train.images.shape == (30, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (6, 3, 32, 32) and train.labels.dtype == torch.int64
    with open(folder / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    # channel-major layout: the first 1024 bytes are the red plane of image 0
    assert torch.equal(train.images[0, 0].flatten(), torch.from_numpy(first[b"data"][0, :1024]))
    assert train.labels[:6].tolist() == first[b"labels"]
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path / "missing", "train")
    with pytest.raises(ValueError, match="split"):
        load_cifar10(folder, "val")


def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_idx_loader_on_fixture(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(3, 28, 28)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    assert np.array_equal(load_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    data = load_mnist_like(tmp_path, "test")
    assert data.images.shape == (3, 1, 28, 28) and data.labels.tolist() == [7, 0, 9]
    assert pad_to(data, 32).images.shape == (3, 1, 32, 32)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4)
    with pytest.raises(ValueError, match="not a uint8 idx"):
        load_idx(tmp_path / "bad")


# ---------------------------------------------------------------- models, losses, optimisation
def test_encoders_and_projector_shapes():
    x = torch.randn(4, 1, 28, 28)
    assert ResNet18(1, width=4)(x).shape == (4, 32)
    vit = ViT(image_size=28, patch_size=7, in_channels=1, dim=32, depth=2, heads=4, mlp_dim=64)
    assert vit(x).shape == (4, 32)
    model = ImageJEPA(build_encoder("resnet18", 1, 28, width=4, blocks="1-1-1-1"), "64-16")
    h, z = model(x)
    assert h.shape == (4, 32) and z.shape == (4, 16)
    assert ImageJEPA(ResNet18(1, width=4), "")(x)[1].shape == (4, 32)  # no projector
    with pytest.raises(ValueError, match="arch"):
        build_encoder("vgg", 1, 28)


@pytest.mark.parametrize("reg", ["vicreg", "sigreg"])
def test_joint_embedding_loss_penalises_collapse(reg):
    torch.manual_seed(0)
    loss = JointEmbeddingLoss(reg, num_slices=32)
    spread = torch.randn(256, 16)
    collapsed = torch.zeros(256, 16)
    assert loss(collapsed, collapsed)["invariance"] == 0
    assert loss(collapsed, collapsed)["loss"] > loss(spread, spread)["loss"] + 0.1


def test_warmup_cosine_per_iteration():
    factors = [warmup_cosine_factor(s, 100, 10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)  # never lr 0 at step 0
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert warmup_cosine_factor(100, 100, 10) == pytest.approx(0.0)
    params = [torch.nn.Parameter(torch.ones(2, 2))]
    opt = build_optimizer("lars", [{"params": params, "lr": 0.4}, {"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.1}], 1e-4)
    sched = WarmupCosine(opt, 100, 10)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.04, 0.01])  # each group keeps its own base lr
    opt.step(), sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.08, 0.02])
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine_factor(0, 10, 20)


def test_lars_minimises_a_quadratic():
    w = torch.nn.Parameter(torch.full((4, 4), 3.0))
    b = torch.nn.Parameter(torch.full((4,), 3.0))
    opt = LARS([w, b], lr=0.5, weight_decay=0.0, eta=0.1)
    for _ in range(200):
        opt.zero_grad()
        (w.pow(2).sum() + b.pow(2).sum()).backward()
        opt.step()
    assert w.abs().max() < 0.5 and b.abs().max() < 0.1


def test_probes_separate_separable_features():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=gen)
    x = torch.nn.functional.one_hot(y, 3).float() * 4 + torch.randn(300, 3, generator=gen)
    assert linear_probe(x[:200], y[:200], x[200:], y[200:])["test_acc"] > 0.95
    assert knn_accuracy(x[:200], y[:200], x[200:], y[200:], k=5) > 0.95


def test_synthetic_images():
    data = synthetic_images(40, size=16, channels=3, num_classes=4)
    assert data.images.shape == (40, 3, 16, 16) and set(data.labels.tolist()) <= {0, 1, 2, 3}


# ---------------------------------------------------------------- configuration and the training loop
def test_unknown_config_key_and_bad_values_are_errors():
    with pytest.raises(ValueError, match="unknown config key 'lamda'"):
        make_config("tiny", ["lamda=3"])
    with pytest.raises(ValueError, match="cannot read 'epochs': use --key-name VALUE or key_name=VALUE"):
        make_config("tiny", ["epochs"])
    with pytest.raises(ValueError, match="preset"):
        make_config("huge")
    with pytest.raises(ValueError, match="regulariser"):
        train(make_config("tiny", ["regulariser=barlow", "out_dir=/tmp/unused"]))
    with pytest.raises(ValueError, match="'amp' expects one of auto, bf16, off, got 'fp16'"):
        make_config("tiny", ["amp=fp16"])


def test_amp_setting_decides_bf16():
    assert use_bf16("off", "cpu") is False and use_bf16("bf16", "cpu") is True
    assert use_bf16("auto", "cpu") is cpu_has_native_bf16()  # native bf16 only: emulated bf16 is slower
    with pytest.raises(ValueError, match="amp must be one of"):
        use_bf16("half", "cpu")


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_tiny_run_in_each_precision(tmp_path, amp):
    res = main(["--preset", "tiny", "epochs=2", f"amp={amp}", f"out_dir={tmp_path}", *FAST])
    assert res["history"][-1]["loss"] < res["history"][0]["loss"]
    assert all(np.isfinite(r["loss"]) for r in res["history"])


@pytest.mark.parametrize("reg", ["sigreg", "vicreg"])
def test_tiny_run_lowers_the_loss(tmp_path, reg):
    res = main(["--preset", "tiny", f"regulariser={reg}", "epochs=4", f"out_dir={tmp_path}", *FAST])
    losses = [row["loss"] for row in res["history"]]
    assert losses[-1] < losses[0]
    assert 0 <= res["final"]["linear_probe_test_acc"] <= 1 and 0 <= res["final"]["knn_test_acc"] <= 1
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["regulariser"] == reg and (tmp_path / "log.csv").is_file()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["format_version"] == 1 and ckpt["config"]["epochs"] == 4 and ckpt["epoch"] == 4


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    common = ["--preset", "tiny", "epochs=2", "eval_every=5", *FAST]
    full = main([*common, f"out_dir={tmp_path / 'full'}"])
    paused = main([*common, f"out_dir={tmp_path / 'split'}", "stop_after=1"])
    assert paused["stopped_at_epoch"] == 1 and "final" not in paused
    resumed = main([*common, f"out_dir={tmp_path / 'split'}", "--resume"])
    assert [r["loss"] for r in resumed["history"]] == pytest.approx([r["loss"] for r in full["history"]], rel=1e-5)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    with pytest.raises(ValueError, match="config differs"):
        main([*common, f"out_dir={tmp_path / 'split'}", "width=8", "--resume"])
