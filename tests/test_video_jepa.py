"""Moving MNIST generator, video JEPA model and losses, AP metric, training entry point."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
import torch

from jepa_agent.video.models import VideoJEPA, VideoModelConfig, average_precision
from jepa_agent.video import train as vj
from jepa_agent.video.moving_mnist import (
    CANVAS, DIGIT, DEFAULT_MNIST_DIR, INK_THRESHOLD, detection_maps, detection_maps_from_pixels,
    generate_moving_mnist, load_mnist_images,
)  # fmt: skip

HAVE_MNIST = any(DEFAULT_MNIST_DIR.glob("t10k-images-idx3-ubyte*"))
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"MNIST idx files not found in {DEFAULT_MNIST_DIR}")


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_mnist_images(DEFAULT_MNIST_DIR)[:500]


@pytest.fixture(scope="module")
def clips(digits):
    return generate_moving_mnist(digits, 12, np.random.default_rng(3))


# ---------------------------------------------------------------- generator
@needs_mnist
def test_same_seed_same_sequences_and_other_seed_differs(digits, clips):
    again = generate_moving_mnist(digits, 12, np.random.default_rng(3))
    other = generate_moving_mnist(digits, 12, np.random.default_rng(4))
    assert np.array_equal(clips.frames, again.frames) and np.array_equal(clips.boxes, again.boxes)
    assert not np.array_equal(clips.frames, other.frames)


@needs_mnist
def test_digits_stay_inside_and_move_at_constant_speed(clips):
    assert clips.frames.shape == (12, 20, CANVAS, CANVAS) and clips.frames.dtype == np.uint8
    assert clips.corners.min() >= 0 and clips.corners.max() <= CANVAS - DIGIT
    assert clips.boxes[..., :2].min() >= 0 and clips.boxes[..., 2:].max() <= CANVAS - 1
    step = np.abs(np.diff(clips.corners, axis=1)).max()
    assert step <= math.ceil(3.6) + 1  # never a jump: bouncing mirrors, it does not teleport


@needs_mnist
def test_recorded_positions_match_the_pixels(digits, clips):
    ink = digits >= INK_THRESHOLD
    for n in range(len(clips.frames)):
        for t in range(0, 20, 7):
            for d in range(2):
                x, y = clips.corners[n, t, d]
                patch = digits[clips.digit_ids[n, d]]
                # max-compositing: the frame holds at least the digit where the digit was drawn
                assert (clips.frames[n, t, y : y + DIGIT, x : x + DIGIT] >= patch).all()
                x0, y0, x1, y1 = clips.boxes[n, t, d]
                inked = np.argwhere(ink[clips.digit_ids[n, d]]) + [y, x]
                assert (inked.min(0) == [y0, x0]).all() and (inked.max(0) == [y1, x1]).all()
    # an empty frame plus the digit alone reproduces the recorded box from pixels
    alone = generate_moving_mnist(digits, 4, np.random.default_rng(0), num_digits=1)
    rows = np.argwhere((alone.frames[:, 0] >= INK_THRESHOLD).any(axis=2))
    assert rows[rows[:, 0] == 0, 1].min() == alone.boxes[0, 0, 0, 1]


def test_detection_maps_hand_example():
    boxes = np.array([[[4, 40, 16, 60], [40, 0, 50, 9]]])  # centres (10, 50) and (45, 4.5)
    maps = detection_maps(boxes)
    assert maps.shape == (1, 8, 8) and maps.sum() == 2
    assert maps[0, 6, 1] and maps[0, 0, 5]


@needs_mnist
def test_pixel_based_targets_mostly_agree_with_recorded_ones(clips):
    exact = detection_maps(clips.boxes)
    from_pixels = detection_maps_from_pixels(clips.frames[:4, :5])
    assert from_pixels.shape == exact[:4, :5].shape
    assert (from_pixels == exact[:4, :5]).mean() > 0.97


def test_bad_digits_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        generate_moving_mnist(np.zeros((3, 28, 28), dtype=np.float32), 2, np.random.default_rng(0))


# ---------------------------------------------------------------- AP
def test_average_precision_hand_example():
    # ranked: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg): P = 1 at R = 1/2, P = 2/3 at R = 1
    ap = average_precision(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # tied scores form one threshold: all at 0.5 -> precision 1/2 at recall 1
    assert average_precision(torch.full((4,), 0.5), torch.tensor([1, 0, 1, 0])) == pytest.approx(0.5)
    assert average_precision(torch.tensor([0.9, 0.1]), torch.tensor([1, 0])) == 1.0
    assert math.isnan(average_precision(torch.rand(5), torch.zeros(5)))


# ---------------------------------------------------------------- model
def small_model(**kw) -> VideoJEPA:
    cfg = dict(enc_hidden=8, dim=16, downsample=8, pred_hidden=8, pred_levels=1, projector="16-32-32", steps=3)
    torch.manual_seed(0)
    return VideoJEPA(VideoModelConfig(**(cfg | kw)))


def test_reference_sizes_match_spec():
    model = VideoJEPA(VideoModelConfig())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.encoder) == 89_280  # docs/reference.md#model: ~89.3k
    assert round(count(model.predictor) / 1e6, 2) == 2.03  # docs/reference.md#model: ~2.03M


@pytest.mark.parametrize("downsample", [1, 4, 8])
def test_shapes(downsample):
    model = small_model(downsample=downsample, pred_levels=1 if downsample == 8 else 2)
    x = torch.rand(2, 6, 1, 64, 64)
    s = model.encode(x)
    side = 64 // downsample
    assert s.shape == (2, 6, 16, side, side)
    assert model.predict(s).shape == (2, 4, 16, side, side)
    rollouts = model.unroll(s, 3)
    assert len(rollouts) == 3 and all(u.shape == s.shape for u in rollouts)
    assert model.detect(s).shape == (2, 6, 8, 8)
    assert model.decode(s).shape == x.shape


def test_rollout_structure():
    """Frame v of u^(k) is always the 1-step prediction; context frames are the real encodings."""
    model = small_model(context=2).eval()
    s = model.encode(torch.rand(2, 6, 1, 64, 64))
    u1, u2, u3 = model.unroll(s, 3)
    assert torch.equal(u3[:, :2], s[:, :2])
    torch.testing.assert_close(u1[:, 2], u3[:, 2])
    torch.testing.assert_close(u2[:, 3], u3[:, 3])  # 2-step for frame 3 from iteration 2 on
    assert not torch.allclose(u1[:, 3], u2[:, 3])


def test_unroll_matches_the_recursive_definition():
    """The unroll copies saturated frames instead of recomputing them; in eval mode (fixed BatchNorm
    statistics) that equals u^(k) = [s_<v, Pred(u^(k-1))] computed in full at every step."""
    model = small_model(context=2).eval()
    s = model.encode(torch.rand(2, 7, 1, 64, 64))
    u, naive = s, []
    for _ in range(5):  # more steps than predicted frames: the copy must not run past the clip
        u = torch.cat([s[:, :2], model.predict(u)], dim=1)
        naive.append(u)
    for fast, slow in zip(model.unroll(s, 5), naive):
        torch.testing.assert_close(fast, slow)


def test_pred_space_representation():
    """pred_space='representation' compares rollouts with the encodings themselves (the space the
    detection head reads), not their projections; an unknown space is an error."""
    model = small_model(pred_space="representation").eval()
    x, y = torch.rand(2, 6, 1, 64, 64), torch.zeros(2, 6, 8, 8)
    with torch.no_grad():
        s = model.encode(x)
        rollouts = model.unroll(s, model.cfg.steps)
        expected = torch.stack([(u[:, 2:] - s[:, 2:]).pow(2).mean() for u in rollouts]).mean()
        torch.testing.assert_close(model.losses(x, y)["pred"], expected)
    with pytest.raises(ValueError, match="pred_space"):
        small_model(pred_space="pixels")


def test_losses_and_detached_probes():
    model = small_model()
    x, y = torch.rand(3, 6, 1, 64, 64), (torch.rand(3, 6, 8, 8) < 0.05).float()
    losses = model.losses(x, y)
    assert set(losses) == {"loss", "pred", "std", "cov", "det", "recon"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    (losses["det"] + losses["recon"]).backward()  # the probes must not train the encoder
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.detector[1].weight.grad is not None
    with pytest.raises(ValueError, match="projector"):
        VideoJEPA(VideoModelConfig(dim=8))
    with pytest.raises(ValueError, match="x must be"):
        model.encode(torch.rand(2, 6, 64, 64))


def test_target_grad_false_detaches_the_targets_only():
    """target_grad=False: eq. 11 gives the same value, but the encoder is trained through the rollouts'
    inputs only. With a predictor that ignores its input, no gradient of L_pred reaches the encoder."""
    x, y = torch.rand(2, 6, 1, 64, 64), torch.zeros(2, 6, 8, 8)
    grads = {}
    for target_grad in (True, False):
        torch.manual_seed(0)
        model = small_model(pred_space="representation", target_grad=target_grad)
        torch.nn.init.zeros_(model.predictor.head.weight)  # predictions = the head's bias, whatever the input
        pred = model.losses(x, y)["pred"]
        pred.backward()
        grads[target_grad] = (pred.item(), [p.grad for p in model.encoder.parameters()])
    assert grads[True][0] == pytest.approx(grads[False][0])
    assert any(g is not None and g.abs().sum() > 0 for g in grads[True][1])
    assert all(g is None or g.abs().sum() == 0 for g in grads[False][1])


# ---------------------------------------------------------------- entry point
def tiny_args(tmp_path, **kw) -> dict[str, str]:
    args = dict(out_dir=str(tmp_path), iterations="6", batch_size="4", val_sequences="4", eval_batch="8",
                device="cpu", threads="1", mnist_dir=str(DEFAULT_MNIST_DIR), log_every="2")  # fmt: skip
    return args | {k: str(v) for k, v in kw.items()}


def test_cosine_schedule():
    cfg = vj.make_config("tiny", {"lr_schedule": "cosine", "warmup_iterations": "10", "iterations": "110"})
    factors = [vj.lr_factor(cfg, i) for i in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0  # linear warmup
    assert factors[60] == pytest.approx(0.5) and factors[-1] < 1e-3  # cosine to 0 at the last iteration
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert vj.lr_factor(vj.make_config("tiny"), 50) == 1.0  # constant: the reference
    with pytest.raises(ValueError, match="lr_schedule"):
        vj.train(dataclasses.replace(cfg, lr_schedule="step"), progress=False)


def test_unknown_config_key_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown config key"):
        vj.make_config("tiny", {"no_such_key": "1"})
    with pytest.raises(ValueError, match="unknown config key"):
        vj.main(["--preset", "tiny", "--learning-rate", "1"])
    with pytest.raises(ValueError, match="unknown preset"):
        vj.make_config("huge")
    assert vj.make_config("tiny", {"lr": "3e-3", "steps": "2"}).lr == 3e-3


@needs_mnist
def test_amp_setting(tmp_path):
    with pytest.raises(ValueError, match="'amp' expects one of auto, bf16, off, got 'fp16'"):
        vj.train(vj.make_config("tiny", tiny_args(tmp_path, amp="fp16")), progress=False)
    results = {amp: vj.train(vj.make_config("tiny", tiny_args(tmp_path / amp, amp=amp)), progress=False) for amp in ("off", "bf16")}
    for res in results.values():
        assert np.isfinite(res["mAP"]) and all(0 <= a <= 1 for a in res["AP"])
    # same seed and data: bf16 steps stay close to fp32 ones over a few iterations
    assert abs(results["bf16"]["val_recon"] - results["off"]["val_recon"]) < 0.1 * results["off"]["val_recon"]


@needs_mnist
def test_tiny_run_lowers_the_loss(tmp_path):
    cfg = vj.make_config("tiny", tiny_args(tmp_path, iterations=24, batch_size=8, log_every=4))
    results = vj.train(cfg, progress=False)
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert float(rows[-1]["loss"]) < 0.8 * float(rows[0]["loss"])
    assert len(results["AP"]) == 8 and all(0 <= a <= 1 for a in results["AP"])  # horizons 1..8
    assert (tmp_path / "figure4.png").exists() and (tmp_path / "figure4.gif").exists()
    model, state = vj.load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["format_version"] == vj.FORMAT_VERSION and state["config"]["iterations"] == 24


def test_pred_residual_predicts_a_change_from_the_last_context_frame():
    cfg = dataclasses.replace(VideoModelConfig(), enc_hidden=8, dim=16, pred_hidden=8, pred_levels=1,
                              projector="16-32-32", downsample=8, pred_residual=True)  # fmt: skip
    model = VideoJEPA(cfg).eval()
    u = torch.randn(2, 5, 16, 8, 8)
    delta = model._frames(model.predictor, torch.cat([u[:, 0:3], u[:, 1:4]], dim=2))
    assert torch.allclose(model.predict(u), u[:, 1:4] + delta, atol=1e-6)
    torch.nn.init.zeros_(model.predictor.head.weight)
    torch.nn.init.zeros_(model.predictor.head.bias)
    assert torch.equal(model.unroll(u, 3)[-1][:, 2:], u[:, 1:2].expand(-1, 3, -1, -1, -1))  # persistence


def test_boolean_overrides_are_parsed_strictly():
    assert vj.make_config("tiny", {"pred_residual": "true"}).pred_residual is True
    assert vj.make_config("tiny", {"pred_residual": "0"}).pred_residual is False
    with pytest.raises(ValueError, match=r"'pred_residual' expects a bool \(true/false\), got 'ture'"):
        vj.make_config("tiny", {"pred_residual": "ture"})
    with pytest.raises(ValueError, match="'batch_size' expects an int, got 'four'"):
        vj.make_config("tiny", {"batch_size": "four"})


def test_encoder_ap_is_evaluates_ap_encoder():
    """The benchmarks' encoder-only AP is the AP_encoder of the full evaluation, on the same frames."""
    torch.manual_seed(0)
    model = VideoJEPA(dataclasses.replace(VideoModelConfig(), enc_hidden=8, dim=16, pred_hidden=8, pred_levels=1,
                                          projector="16-32-32", downsample=8))  # fmt: skip
    frames = torch.rand(6, 4, 1, 64, 64)
    maps = (torch.rand(6, 4, 8, 8) < 0.1).float()
    maps[0, 0, 0, 0] = 1
    full = vj.evaluate(model, frames, maps, batch=4, device=torch.device("cpu"), bf16=False)
    assert vj.encoder_ap(model, frames, maps, 4, torch.device("cpu"), bf16=False) == pytest.approx(full["AP_encoder"])
    assert model.training  # both hand the model back in training mode


@needs_mnist
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_matches_an_uninterrupted_run(tmp_path, schedule):
    sched = dict(lr_schedule=schedule, warmup_iterations=2)
    straight = vj.make_config("tiny", tiny_args(tmp_path / "a", iterations=6, **sched))
    vj.train(straight, progress=False)
    paused = vj.train(vj.make_config("tiny", tiny_args(tmp_path / "b", iterations=6, stop_after=3, **sched)), progress=False)
    assert paused["paused_at"] == 3 and not (tmp_path / "b" / "results.json").exists()
    vj.main(["--preset", "tiny", "--resume", "--no-progress",
             *[f"{k}={v}" for k, v in tiny_args(tmp_path / "b", iterations=6, stop_after=0, **sched).items()]])  # fmt: skip
    a, _ = vj.load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b, state = vj.load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert state["iteration"] == 6
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, msg=name)
    rows = list(csv.DictReader((tmp_path / "b" / "log.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [2, 3, 4, 6]  # the first run's last row, then appended


@needs_mnist
def test_resume_from_an_older_optimizer_layout_is_a_clear_error(tmp_path):
    """Checkpoints written before the detection head got its own Adam group cannot be resumed silently."""
    cfg = vj.make_config("tiny", tiny_args(tmp_path, iterations=4, stop_after=2))
    vj.train(cfg, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    groups = state["optimizer"]["param_groups"]
    groups[0]["params"] += groups.pop(1)["params"]  # the old two-group layout
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="parameter groups"):
        vj.train(dataclasses.replace(cfg, stop_after=0), resume=True, progress=False)


@needs_mnist
def test_supervised_detection_ceiling_learns(tmp_path):
    """The ceiling benchmark trains encoder + head on the maps: its training loss falls, AP is scored."""
    import json

    from benchmarks import video_detection_ceiling

    out = tmp_path / "ceiling.jsonl"
    video_detection_ceiling.main(["--preset", "tiny", "iterations=30", "val_sequences=8", "threads=1",
                                  "--eval-every", "15", "--out", str(out)])  # fmt: skip
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [15, 30]
    assert lines[-1]["train_bce"] < 0.69 and 0 < lines[-1]["AP_encoder"] <= 1


@needs_mnist
def test_a_non_finite_loss_stops_training_with_a_clear_error(tmp_path, monkeypatch):
    losses = VideoJEPA.losses

    def poisoned(self, x, det_target):
        out = losses(self, x, det_target)
        return out | {"loss": out["loss"] * float("nan")}

    monkeypatch.setattr(VideoJEPA, "losses", poisoned)
    with pytest.raises(FloatingPointError, match="loss is not finite at iteration 1"):
        vj.train(vj.make_config("tiny", tiny_args(tmp_path)), progress=False)
