"""Guarded tool calls while the broker connection and the broker itself fail: a seeded, reproducible sample.

See :mod:`fault_run` for what a run does and what its audit checks. The CI sample is a few hundred calls;
``make soak`` runs ten thousand (``AGENTWRIT_SOAK_CALLS``, ``AGENTWRIT_SOAK_SEED``) and prints the figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fault_run import RunConfig, fault_run

CI_CALLS = int(os.environ.get("AGENTWRIT_FAULT_CALLS", "300"))
CI_SEED = int(os.environ.get("AGENTWRIT_FAULT_SEED", "20240611"))


def _check(report: object) -> None:
    print(report.summary())  # type: ignore[attr-defined]  # the figures, visible with -s
    assert report.problems == [], "\n".join(report.problems[:30])  # type: ignore[attr-defined]


@pytest.mark.slow
def test_seeded_fault_sample_leaves_only_reported_credentials_alive(tmp_path: Path) -> None:
    config = RunConfig(seed=CI_SEED, calls=CI_CALLS)
    with fault_run(config, tmp_path / "broker.db") as run:
        report = run.run()
    _check(report)
    # The sample really exercised what it claims to.
    assert report.calls == CI_CALLS
    assert report.restarts >= config.restarts
    assert sum(report.injected.values()) >= 20, report.injected
    assert {"reset_before", "reset_after", "error_503", "error_500_after"} <= set(report.injected), report.injected
    for kind in ("raise", "slow", "cancel", "restart"):
        assert report.planned.get(kind, 0) > 0, report.planned
    assert report.bodies_run > CI_CALLS // 2
    assert report.live_after_ttl == 0


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("AGENTWRIT_SOAK_CALLS"), reason="the soak runs with make soak")
@pytest.mark.timeout(3600)
def test_fault_soak(tmp_path: Path) -> None:
    calls = int(os.environ["AGENTWRIT_SOAK_CALLS"])
    seed = int(os.environ.get("AGENTWRIT_SOAK_SEED", "7"))
    config = RunConfig(seed=seed, calls=calls, restarts=max(2, calls // 1000))
    with fault_run(config, tmp_path / "broker.db") as run:
        report = run.run()
    _check(report)
    assert report.live_after_ttl == 0


@pytest.mark.slow
def test_seeded_fault_sample_with_remote_verification(tmp_path: Path) -> None:
    """Every mint verifies its token with the broker (``validate``), so faults can land between issue and check."""
    config = RunConfig(seed=CI_SEED + 1, calls=CI_CALLS // 2, strict_verify=True, restarts=1)
    with fault_run(config, tmp_path / "broker.db") as run:
        report = run.run()
    _check(report)
    assert report.live_after_ttl == 0
