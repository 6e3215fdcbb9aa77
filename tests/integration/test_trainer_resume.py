"""Resumable training (SPEC M10) under a real interruption: a subprocess is killed mid-run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from hydraquant.models.trainer import CVResult, cross_validate
from hydraquant.models.zoo import ModelSpec
from hydraquant.validation.splits import PurgedWalkForward

REPO_ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["f0", "f1", "f2"]


def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 800
    X = rng.normal(size=(n, len(FEATURES)))
    y = np.digitize(X[:, 0] + rng.normal(scale=0.8, size=n), [-0.5, 0.5])  # 3 classes
    t = np.arange(n, dtype=np.int64)
    return X, y, t, t + 4


def train(checkpoint_dir: Path | None, fingerprint: str, progress=False) -> CVResult:
    X, y, t, t_end = problem()
    spec = ModelSpec(
        kind="lightgbm",
        params={"n_estimators": 40, "num_leaves": 7},
        early_stopping_rounds=5,
        seed=3,
    )
    return cross_validate(
        X,
        y,
        spec=spec,
        splitter=PurgedWalkForward(n_splits=4, t=t, t_end=t_end),
        feature_names=FEATURES,
        times=(t, t_end),
        checkpoint_dir=checkpoint_dir,
        fingerprint=fingerprint,
        progress=progress,
    )


_KILLED_RUN = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.integration.test_trainer_resume import train

    def die_after_two(done, total):
        if done == 2:          # fold index 2 is next: the process dies before it finishes
            os._exit(1)

    train(Path({ckpt!r}), "cfg-1", progress=die_after_two)
    raise SystemExit("not killed")
    """
)


def test_killed_run_resumes_at_the_unfinished_fold(tmp_path):
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN.format(root=str(REPO_ROOT), ckpt=str(ckpt))],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert sorted(p.name for p in ckpt.iterdir() if p.name.startswith("fold_")) == [
        "fold_0",
        "fold_1",
    ]

    resumed = train(ckpt, "cfg-1")
    assert [f.resumed for f in resumed.folds] == [True, True, False, False]
    clean = train(None, "cfg-1")
    assert np.array_equal(resumed.oof, clean.oof, equal_nan=True)
    assert np.array_equal(resumed.oof_mask, clean.oof_mask)
    assert [f.best_iteration for f in resumed.folds] == [f.best_iteration for f in clean.folds]
    assert resumed.folds[0].metrics == clean.folds[0].metrics

    # the resumed run completed the checkpoint set: a third run loads everything
    third = train(ckpt, "cfg-1")
    assert all(f.resumed for f in third.folds)
    assert np.array_equal(third.oof, clean.oof, equal_nan=True)

    # a changed config/data fingerprint retrains every fold
    changed = train(ckpt, "cfg-2")
    assert not any(f.resumed for f in changed.folds)
    assert np.array_equal(changed.oof, clean.oof, equal_nan=True)


_KILLED_MID_WRITE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from hydraquant.models import zoo
    from tests.integration.test_trainer_resume import train

    original = zoo.LightGBMLearner.save
    calls = []

    def save_then_die(self, directory):
        out = original(self, directory)
        calls.append(directory)
        if len(calls) == 3:    # fold 2's model files are on disk, its fold.json is not
            os._exit(1)
        return out

    zoo.LightGBMLearner.save = save_then_die
    train(Path({ckpt!r}), "cfg-1")
    raise SystemExit("not killed")
    """
)


def test_kill_during_checkpoint_write_leaves_no_half_fold(tmp_path):
    ckpt = tmp_path / "ckpt"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE.format(root=str(REPO_ROOT), ckpt=str(ckpt))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    names = sorted(p.name for p in ckpt.iterdir())
    assert [n for n in names if n.startswith("fold_")] == ["fold_0", "fold_1"]
    partial = [ckpt / n for n in names if n.startswith(".fold_2")]
    assert partial and not (partial[0] / "fold.json").exists()  # the kill really hit mid-write

    resumed = train(ckpt, "cfg-1")
    assert [f.resumed for f in resumed.folds] == [True, True, False, False]
    assert not list(ckpt.glob(".fold_*"))
    assert np.array_equal(resumed.oof, train(None, "cfg-1").oof, equal_nan=True)
