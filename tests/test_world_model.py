"""World model: shapes, unroll contract, energy terms against their equations, checkpoints."""

import numpy as np
import pytest
import torch

from jepa_agent.encoders import ImpalaEncoder, ProfileEncoder
from jepa_agent.predictors import GRUPredictor
from jepa_agent.world_model import (
    FORMAT,
    FORMAT_VERSION,
    ModelConfig,
    WorldModel,
    checkpoint_dict,
    load_world_model,
)
from tworooms_env import core

TINY = dict(latent_dim=12, layout_dim=4, encoder_hidden=32, predictor_hidden=32, probe_hidden=16, rollout_steps=4,
            action_chunk=1, pred_coeff=1.0, onestep_coeff=1.0, onestep_stride=1)


def frames(b: int, t: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    wall_x, door_y = core.sample_layouts(rng, b)
    pos = np.stack([rng.uniform(6, 18, (b, t)), rng.uniform(6, 58, (b, t))], axis=-1)  # left room
    f = core.render_frames(pos.reshape(-1, 2), np.repeat(wall_x, t), np.repeat(door_y, t))
    return torch.from_numpy(f.reshape(b, t, 2, 65, 65))


@pytest.mark.parametrize("encoder, extra", [("profile", {}), ("coordconv", {"layout_dim": 0})])
def test_encode_shapes_and_unroll_contract(encoder, extra):
    torch.manual_seed(0)
    model = WorldModel({**TINY, "encoder": encoder, **extra}).eval()
    x = frames(3, 5)
    z = model.encode(x)
    assert z.shape == (3, 5, 12) and z.dtype == torch.float32
    assert torch.allclose(model.encode(x.float() / 255), z, atol=1e-4)  # uint8 and [0, 1] floats agree
    a = torch.randn(3, 7, 2)
    z_seq = model.unroll(z[:, 0], a)
    assert z_seq.shape == (3, 8, 12)
    assert torch.equal(z_seq[:, 0], z[:, 0])  # index 0 is z0 exactly
    assert torch.allclose(z_seq[:, 0], model.encode(x[:, 0]), atol=1e-6)  # = encode(x0), any batch size


def test_factored_layout_is_copied_and_distance_uses_agent_part():
    model = WorldModel(TINY).eval()
    z = model.encode(frames(2, 1)[:, 0])
    z_seq = model.unroll(z, torch.randn(2, 6, 2))
    assert torch.equal(z_seq[:, -1, model.agent_dim :], z[:, model.agent_dim :])  # walls do not move
    other = z.clone()
    other[:, model.agent_dim :] += 5.0
    assert torch.allclose(model.planning_distance(z, other), torch.zeros(2))


def test_action_chunk_unroll_shapes_and_errors():
    model = WorldModel({**TINY, "action_chunk": 2}).eval()
    z0 = torch.randn(4, 12)
    assert model.unroll(z0, torch.randn(4, 6, 2)).shape == (4, 4, 12)
    with pytest.raises(ValueError, match="multiple of action_chunk"):
        model.unroll(z0, torch.randn(4, 5, 2))
    with pytest.raises(ValueError, match="actions"):
        model.unroll(z0, torch.randn(4, 6, 3))


def test_energy_terms_equal_their_equations():
    torch.manual_seed(1)
    cfg = ModelConfig(**{**TINY, "rollout_steps": 3})
    model = WorldModel(cfg)
    b, t, d, a_dim = 5, 4, 12, model.agent_dim
    z = torch.randn(b, t, d)
    z[:, :, a_dim:] = z[:, :1, a_dim:]  # a static layout, as the encoder produces
    actions = torch.randn(b, t - 1, 2)
    _, terms = model.energy(z, actions)

    # eq. 9-11: autoregressive rollout from z_0, per-element MSE on the agent part, mean over steps
    z_hat, preds = z[:, 0], []
    for k in range(3):
        z_hat = model.predictor(z_hat, actions[:, k] / 2.45)
        preds.append(((z_hat[:, :a_dim] - z[:, k + 1, :a_dim]) ** 2).mean())
    assert torch.allclose(terms["pred"], torch.stack(preds).mean(), atol=1e-6)
    one = model.predictor(z[:, :-1].reshape(-1, d), actions.reshape(-1, 2) / 2.45)
    assert torch.allclose(terms["onestep"], ((one[:, :a_dim] - z[:, 1:, :a_dim].reshape(-1, a_dim)) ** 2).mean(), atol=1e-6)

    za = z[..., :a_dim].reshape(-1, a_dim)
    std = torch.sqrt(za.var(dim=0) + 1e-4)  # eq. 6 (unbiased variance)
    assert torch.allclose(terms["std"], torch.relu(1 - std).mean(), atol=1e-6)
    c = torch.cov(za.T)  # eq. 7, normalised by D (D - 1)
    off = c - torch.diag(torch.diag(c))
    assert torch.allclose(terms["cov"], off.pow(2).sum() / (a_dim * (a_dim - 1)), atol=1e-6)
    sim = ((z[:, 1:, :a_dim] - z[:, :-1, :a_dim]) ** 2).mean()  # eq. 12
    assert torch.allclose(terms["sim"], sim, atol=1e-6)
    idm_pred = model.idm.mlp(torch.cat([z[:, :-1, :a_dim], z[:, 1:, :a_dim]], dim=-1))
    assert torch.allclose(terms["idm"], ((idm_pred - actions) ** 2).mean(), atol=1e-6)
    expected = (terms["pred"] + terms["onestep"] + 16 * terms["std"] + 8 * terms["cov"] + 12 * terms["sim"]
                + terms["idm"] + 16 * terms["layout_std"] + 8 * terms["layout_cov"])
    assert torch.allclose(terms["energy"], expected, atol=1e-5)


def test_zero_coefficients_switch_terms_off():
    model = WorldModel({**TINY, "idm_coeff": 0.0, "std_coeff": 0.0})
    z = torch.randn(2, 5, 12)
    total, terms = model.energy(z, torch.randn(2, 4, 2))
    assert "idm" not in terms
    assert torch.allclose(total, terms["energy"])
    assert not torch.allclose(terms["energy"], terms["energy"] + 16 * terms["std"])  # std computed, not counted


def test_profile_fast_path_matches_frames():
    from training.data import profiles_from_positions

    rng = np.random.default_rng(3)
    wall_x, door_y = core.sample_layouts(rng, 40)
    pos = np.stack([rng.uniform(4.3, 59.7, 40), rng.uniform(4.3, 59.7, 40)], axis=1)
    rows, cols = profiles_from_positions(pos, wall_x, door_y)
    r2, c2 = ProfileEncoder.raw_profiles(torch.from_numpy(core.render_frames(pos, wall_x, door_y)))
    assert np.array_equal(rows, r2.numpy()) and np.array_equal(cols, c2.numpy())

    model = WorldModel(TINY)
    x = frames(2, 5, seed=4)
    actions = torch.randn(2, 4, 2)
    loss_frames, _ = model(x, actions)
    r, c = ProfileEncoder.raw_profiles(x.reshape(-1, 2, 65, 65))
    loss_prof, _ = model((r.reshape(2, 5, 2, 65), c.reshape(2, 5, 2, 65)), actions)
    assert torch.allclose(loss_frames, loss_prof)


def test_bad_inputs_raise_clear_errors():
    model = WorldModel(TINY)
    with pytest.raises(ValueError, match="65, 65"):
        model.encode(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="actions"):
        model(frames(2, 4), torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="unknown model config keys"):
        WorldModel({"latent_dims": 3})
    with pytest.raises(ValueError, match="multiple of action_chunk"):
        ModelConfig(rollout_steps=5, action_chunk=2)


def test_reference_sizes():
    enc = ImpalaEncoder(512)
    assert sum(p.numel() for p in enc.parameters()) == 1_426_096
    gru = GRUPredictor(512, 2, norm=enc.norm)
    assert sum(p.numel() for p in gru.cell.parameters()) == 792_576
    model = WorldModel({"encoder": "impala", "latent_dim": 512, "layout_dim": 0, "predictor": "gru"})
    assert model.predictor.norm is model.encoder.norm  # the reference shares the LayerNorm
    z = model.encode(frames(1, 2))
    assert z.shape == (1, 2, 512)


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = WorldModel(TINY).eval()
    path = tmp_path / "wm.pt"
    torch.save(checkpoint_dict(model, {"note": "test"}), path)
    loaded = load_world_model(path)
    x = frames(2, 1)[:, 0]
    assert torch.equal(loaded.encode(x), model.encode(x))
    assert not loaded.training

    ckpt = torch.load(path, weights_only=True)
    for change, message in (
        ({"format": "something-else"}, "format"),
        ({"format_version": FORMAT_VERSION + 1}, "format_version"),
    ):
        torch.save({**ckpt, **change}, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match=message):
            load_world_model(tmp_path / "bad.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a world-model checkpoint"):
        load_world_model(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_world_model(tmp_path / "missing.pt")
    assert ckpt["format"] == FORMAT


def test_shipped_checkpoint_loads_if_present():
    from jepa_agent.world_model import DEFAULT_CHECKPOINT

    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip("no shipped checkpoint yet")
    model = load_world_model()
    z = model.encode(frames(2, 1)[:, 0])
    assert model.unroll(z, torch.zeros(2, 4 * model.action_chunk, 2)).shape[-1] == model.latent_dim
    assert model.probe(z).shape == (2, 2)


def test_chunked_energy_matches_manual_rollout():
    torch.manual_seed(2)
    model = WorldModel({**TINY, "action_chunk": 2, "rollout_steps": 4})
    a_dim = model.agent_dim
    z = torch.randn(3, 5, 12)
    actions = torch.randn(3, 4, 2)
    _, terms = model.energy(z, actions)
    z_hat, preds = z[:, 0], []
    for c in range(2):  # two calls, each consuming two actions, targets at frames 2 and 4
        z_hat = model.predictor(z_hat, actions[:, 2 * c : 2 * c + 2].reshape(3, 4) / 2.45)
        preds.append(((z_hat[:, :a_dim] - z[:, 2 * c + 2, :a_dim]) ** 2).mean())
    assert torch.allclose(terms["pred"], torch.stack(preds).mean(), atol=1e-6)
    one = [model.predictor(z[:, t], actions[:, t : t + 2].reshape(3, 4) / 2.45) for t in range(3)]
    manual = torch.stack([((o[:, :a_dim] - z[:, t + 2, :a_dim]) ** 2).mean() for t, o in enumerate(one)]).mean()
    assert torch.allclose(terms["onestep"], manual, atol=1e-6)


def test_onestep_stride_subsamples_the_same_term():
    """onestep_stride n: the one-step term over starts offset, offset + n, ... with a random offset;
    averaged over the offsets it is the every-frame term (an unbiased subsample)."""
    torch.manual_seed(3)
    full = WorldModel({**TINY, "action_chunk": 1, "rollout_steps": 4})
    strided = WorldModel({**TINY, "action_chunk": 1, "rollout_steps": 4, "onestep_stride": 2})
    strided.load_state_dict(full.state_dict())
    z, actions = torch.randn(3, 5, 12), torch.randn(3, 4, 2)
    _, every = full.energy(z, actions)
    with torch.no_grad():
        per_start = [((strided.predictor(z[:, t], actions[:, t : t + 1].reshape(3, 2) / 2.45)[:, : full.agent_dim]
                       - z[:, t + 1, : full.agent_dim]) ** 2).mean() for t in range(4)]
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        _, terms = strided.energy(z, actions)
        value = float(terms["onestep"].detach())
        offset = 0 if abs(value - float((per_start[0] + per_start[2]) / 2)) < 1e-6 else 1
        assert abs(value - float((per_start[offset] + per_start[offset + 2]) / 2)) < 1e-6
        seen.add(offset)
    assert seen == {0, 1}
    assert torch.allclose(every["onestep"], torch.stack(per_start).mean(), atol=1e-6)
    with pytest.raises(ValueError, match="onestep_stride"):
        WorldModel({**TINY, "onestep_stride": 0})
