"""Evaluation: Wilson interval, PROTOCOL tasks, the runner and the eval.planning CLI."""

import json

import gymnasium as gym
import numpy as np
import pytest

import tworooms_env  # noqa: F401
from eval import planning
from eval.agents import Unavailable, make_agent
from eval.metrics import efficiency_summary, format_table, path_length, steps_to_success, summarize, wilson_interval
from eval.runner import run_episodes
from eval.tasks import protocol_tasks


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4) and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_protocol_tasks_match_the_env():
    tasks = protocol_tasks(seed=5, episodes=3, first=4)
    env = gym.make("TwoRooms-v0")
    for j, i in enumerate(tasks["index"]):
        _, info = env.reset(options={"task_seed": 5, "task_index": int(i)})
        assert (info["wall_x"], info["door_y"]) == (tasks["wall_x"][j], tasks["door_y"][j])
        np.testing.assert_allclose(info["position"], tasks["start"][j])
        np.testing.assert_allclose(info["goal"], tasks["goal"][j])


def test_runner_is_reproducible_and_scores_per_protocol():
    a = run_episodes(make_agent("random", seed=1), seed=3, indices=4, batch_size=3, max_steps=20, progress=False)
    b = run_episodes(make_agent("random", seed=1), seed=3, indices=4, batch_size=2, max_steps=20, progress=False)
    assert [r.index for r in a] == [0, 1, 2, 3]
    c = run_episodes(make_agent("random", seed=1), seed=3, indices=4, batch_size=3, max_steps=20, progress=False)
    assert [r.final_distance for r in a] == [r.final_distance for r in c]
    for r in a:
        assert r.success == (r.final_distance < 4.5) and r.min_distance <= r.final_distance
    summary = summarize([r.as_dict() for r in a])
    for key in ("success_rate", "success_ci", "episodes", "median_episode_seconds", "p90_episode_seconds",
                "success_any_rate", "strict_success_rate", "mean_final_distance"):
        assert key in summary
    table = format_table([{**summary, "method": "random"}, {"method": "gcbc", "unavailable": "no checkpoint"}])
    assert "not available: no checkpoint" in table


def test_unavailable_methods_say_why(tmp_path):
    with pytest.raises(Unavailable, match="GCBC"):
        make_agent("gcbc", gcbc_checkpoint=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="unknown agent"):
        make_agent("dqn")


def test_cli_on_four_episodes_writes_valid_json_and_csv(tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    code = planning.main([
        "--agent", "jepa-open-field", "--episodes", "4", "--seed", "11", "--batch-size", "4",
        "--planner-option", "num_samples=32", "--planner-option", "horizon=20", "--planner-option", "num_elites=4",
        "--planner-option", "iterations_first=2", "--planner-option", "iterations_later=1",
        "--json", str(out_json), "--csv", str(out_csv), "--no-progress",
        "--videos", "1", "--video-every", "20", "--video-dir", str(tmp_path / "videos"),
    ])
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["episodes"] == 4 and 0.0 <= data["success_rate"] <= 1.0
    assert len(data["success_ci"]) == 2 and data["median_episode_seconds"] > 0
    assert data["planner_config"]["num_samples"] == 32 and len(data["per_episode"]) == 4
    assert len(out_csv.read_text().strip().splitlines()) == 5
    printed = capsys.readouterr().out
    assert "success@end" in printed and "vs oracle median / p90" in printed and "within 50 / 100 / 200" in printed
    for key in ("steps_to_success_median", "steps_to_success_p90", "oracle_ratio_median", "oracle_ratio_p90",
                "success_within_50", "success_within_100", "success_within_200", "path_length_to_success_median"):
        assert key in data
    episode = data["per_episode"][0]
    assert episode["oracle_steps"] > 0 and episode["path_length"] >= 0 and "steps_to_success" in episode
    header = out_csv.read_text().splitlines()[0]
    assert "steps_to_success" in header and "oracle_steps" in header and "path_length_to_success" in header
    assert (tmp_path / "videos" / "jepa-open-field_seed11_task0.gif").stat().st_size > 0
    assert (tmp_path / "videos" / "jepa-open-field_seed11_grid.png").stat().st_size > 0


def test_ablations_cli_rows(tmp_path, capsys):
    from eval import ablations

    cheap = ["--planner-option", "num_samples=16", "--planner-option", "num_elites=4",
             "--planner-option", "iterations_first=2", "--planner-option", "iterations_later=1"]
    ablations.main(["--checkpoint", "true-dynamics", "--episodes", "2", "--rows", "planners", "--no-progress",
                    "--out-dir", str(tmp_path / "p"), *cheap])
    rows = json.loads((tmp_path / "p" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["MPPI (sum)", "CEM (sum)", "MPPI-last", "MPPI-stop"]
    assert all(r["episodes"] == 2 for r in rows)
    ablations.main(["--episodes", "2", "--rows", "ablations", "--no-progress", "--out-dir", str(tmp_path / "a")])
    rows = json.loads((tmp_path / "a" / "results.json").read_text())
    assert len(rows) == 4 and all("unavailable" in r for r in rows)  # rows without checkpoints say so
    assert "no-idm (MPPI)" in (tmp_path / "a" / "table.md").read_text()
    assert ablations.main(["--ablated", "no-dropout=x.pt", "--out-dir", str(tmp_path / "b")]) == 2
    assert "--ablated expects" in capsys.readouterr().err


def test_oracle_route_reaches_the_goal_from_a_stalled_state():
    from eval.baselines.scripted import OraclePolicy, oracle_route
    from tworooms_env import core

    wall_x, door_y = 30, 15
    face = core.WALL_HALF_WIDTH + core.CONTACT_MARGIN
    start = np.array([[wall_x + face, 50.0], [50.0, 10.0]])  # stalled across the wall; anywhere
    goal = np.array([[wall_x - 6.0, 50.0], [10.0, 55.0]])
    route = oracle_route(start, goal, wall_x, door_y, 90)
    assert route.shape == (2, 90, 2) and np.all(np.linalg.norm(route, axis=-1) <= core.MAX_STEP_NORM + 1e-5)
    walls = np.array([wall_x] * 2), np.array([door_y] * 2)
    end = core.rollout_positions(start, route, *walls)[:, -1]
    assert np.all(np.linalg.norm(end - goal, axis=1) < 1.0)
    # the same actions as the oracle baseline stepping in a control loop
    pos, oracle = start.copy(), OraclePolicy()
    for t in range(90):
        infos = [{"position": p, "goal": g, "wall_x": wall_x, "door_y": door_y} for p, g in zip(pos, goal)]
        a = oracle.act_batch(None, None, infos) * core.MAX_STEP_NORM
        assert np.allclose(a, route[:, t], atol=1e-4)
        pos = core.step_positions(pos, route[:, t], *walls)[0]


def test_diagnose_cli_on_one_task(tmp_path, capsys):
    from eval import diagnose
    from jepa_agent.world_model import PROFILE_CHECKPOINT

    out = tmp_path / "d.json"  # the profile model: its door route on this task is known to reach the goal
    assert diagnose.main(["--checkpoint", str(PROFILE_CHECKPOINT), "--seed", "1", "--tasks", "3", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["tasks"][0]
    assert set(row["cost"]) == {"plan", "door_route", "stay"} and row["door_route_true_end_distance"] < 4.5
    assert "task    3" in capsys.readouterr().out


def test_steps_to_success_and_path_length_on_hand_made_trajectories():
    goal = np.array([10.0, 0.0])
    path = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [6.0, 0.0], [8.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    assert steps_to_success(path, goal) == 3  # x = 6 at t = 3: |6 - 10| = 4 < 4.5 for the first time
    assert steps_to_success(path[:3], goal) is None
    assert steps_to_success(np.array([[10.0, 0.0], [0.0, 0.0]]), goal) is None  # t = 0 does not count
    assert path_length(path) == pytest.approx(20.0) and path_length(path, 4) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="trajectory"):
        steps_to_success(np.zeros(3), goal)


def test_efficiency_summary_of_hand_made_records():
    rows = [dict(steps_to_success=s, oracle_steps=o, path_length=50.0, path_length_to_success=p)
            for s, o, p in [(20, 20, 40.0), (60, 20, 90.0), (150, 30, 200.0), (None, 25, None)]]
    out = efficiency_summary(rows)
    assert out["reached"] == 3 and out["steps_to_success_median"] == 60
    assert out["oracle_ratio_median"] == pytest.approx(3.0)  # ratios 1, 3, 5 (the episode never reached is left out)
    assert out["oracle_ratio_p90"] == pytest.approx(np.percentile([1, 3, 5], 90))
    assert (out["success_within_50"], out["success_within_100"], out["success_within_200"]) == (0.25, 0.5, 0.75)
    assert out["path_length_to_success_median"] == 90.0
    assert efficiency_summary([{"final_distance": 1.0}]) == {}  # older records: no efficiency columns
    table = format_table([{**summarize([{**r, "final_distance": 1.0, "min_distance": 1.0, "seconds": 1.0} for r in rows]),
                           "method": "m"}])
    assert "3.00x / 4.60x" in table and "25 % / 50 % / 75 %" in table


def test_terminate_on_success_gives_the_same_success_at_any():
    opts = dict(planner_options=dict(num_samples=48, num_elites=6, horizon=60, iterations_first=6, iterations_later=2))
    runs = [run_episodes(make_agent("jepa-true-dynamics", **opts), seed=2, indices=3, batch_size=3, max_steps=80,
                         progress=False, terminate_on_success=stop) for stop in (False, True)]
    full, stopped = runs
    assert any(r.success_any for r in full)
    assert [r.success_any for r in full] == [r.success_any for r in stopped]
    assert [r.steps_to_success for r in full] == [r.steps_to_success for r in stopped]
    for r in stopped:
        if r.success_any:
            assert r.success and r.steps == r.steps_to_success
    oracle = run_episodes(make_agent("oracle"), seed=2, indices=3, progress=False, terminate_on_success=True)
    assert all(r.success and r.steps == r.oracle_steps == r.steps_to_success for r in oracle)
