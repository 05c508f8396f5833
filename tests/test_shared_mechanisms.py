"""The mechanisms every part shares: one schedule, one CSV log, one table writer, one polyline drawer."""

import csv

import numpy as np
import pytest
import torch

from eval.metrics import format_table, markdown_table
from jepa_agent.optim import WarmupCosine, warmup_cosine_factor
from training.interrupt import CsvLog, truncate_csv
from tworooms_env.rendering import draw_path


def test_csv_log_appends_and_widens_its_header(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLog(path)
    log.write({"epoch": 1, "loss": 0.5})
    log.write({"epoch": 2, "loss": 0.4, "probe": 0.9})  # a column that comes only now and then
    CsvLog(path).write({"epoch": 3, "loss": 0.3})  # reopened: the widened header is kept
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [r["probe"] for r in rows] == ["", "0.9", ""]
    assert truncate_csv(path, 2, key="epoch") == 1
    CsvLog(path, append=False).write({"step": 0})
    assert path.read_text().splitlines() == ["step", "0"]


def test_every_trainer_uses_the_one_schedule():
    import jepa_agent.video.train as video
    import training.world_model as wm

    assert wm.WarmupCosine is WarmupCosine and video.warmup_cosine_factor is warmup_cosine_factor
    cfg = video.VideoJEPAConfig(iterations=100, warmup_iterations=10, lr_schedule="cosine")
    assert [video.lr_factor(cfg, i) for i in (0, 9, 99)] == [warmup_cosine_factor(i, 100, 10) for i in (0, 9, 99)]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupCosine(opt, 20, 4, 0.1)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.25) and max(lrs) == pytest.approx(1.0) and lrs[-1] > 0.1


def test_markdown_tables_pad_short_rows_and_share_the_score_columns():
    assert markdown_table(["a", "b", "c"], [[1]]) == "| a | b | c |\n|---|---|---|\n| 1 | - | - |"
    row = {"method": "x", "uses": "u", "unavailable": "no checkpoint"}
    wide, narrow = format_table([row]), format_table([row], second=("data / budget", "uses"), p90=False)
    assert wide.splitlines()[0].count("|") == narrow.splitlines()[0].count("|") + 1
    assert "| x | u | not available: no checkpoint |" in narrow


def test_draw_path_blends_inside_the_canvas_and_skips_points_outside():
    img = np.zeros((20, 20, 3), dtype=np.uint8)
    colour = np.array([200.0, 100.0, 0.0])
    draw_path(img, np.array([[1.0, 1.0], [4.0, 1.0], [50.0, 50.0]]), scale=2, colour=colour, opacity=1.0)
    assert (img[3, 3] == [200, 100, 0]).all() and (img[3, 9] == [200, 100, 0]).all()
    assert img[:, :, 2].max() == 0 and img.shape == (20, 20, 3)
