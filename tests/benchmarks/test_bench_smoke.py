"""``python -m benchmarks --quick`` end to end: every benchmark runs and every promised figure is written.

Figures are not compared with thresholds: a smoke run measures tiny samples on whatever machine runs the
tests, so only presence and type are checked. The real figures come from ``make bench``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

REQUIRED_KEYS = (
    "crypto_floor_us",
    "raw_ed25519_verify_us",
    "official_mint_release_ms_p50",
    "official_mint_release_ms_p99",
    "ours_mint_release_ms_p50",
    "ours_mint_release_ms_p99",
    "wrapped_call_overhead_ms_p50",
    "wrapped_call_overhead_ms_p99",
    "async_calls_per_s_c1",
    "async_calls_per_s_c8",
    "async_calls_per_s_c64",
    "local_verify_us_p50",
    "cached_verify_us_p50",
    "remote_validate_ms_p50",
    "overhang_ms_p50",
    "exposure_ratio_p50",
    "revocation_check_us_at_10",
    "revocation_check_us_at_100k",
    "audit_query_ms_at_10k",
    "audit_query_ms_at_1m",
    "broker_rss_mb_10k_agents",
    "mcp_guarded_call_ms_p50",
    "mcp_bare_call_ms_p50",
    "mcp_guard_overhead_ms_p50",
    "pop_mint_release_ms_p50",
    "bearer_mint_release_ms_p50",
    "pop_proof_make_us_p50",
    "pop_resource_check_us_p50",
    "bearer_resource_check_us_p50",
    "pop_check_overhead_us_p50",
    "replicas_cycles_per_s_sqlite",
    "replicas_cycles_per_s_pg1",
    "replicas_cycles_per_s_pg2",
    "replicas_scaling_pg2_over_pg1",
    "revocation_propagation_notify_ms_p50",
    "revocation_propagation_notify_ms_p99",
    "revocation_propagation_poll_ms_p50",
    "revocation_propagation_poll_ms_p99",
    # the per-call fast path, side by side with the official client and with its own fallback
    "fastpath_wrapped_call_ms_p50",
    "fastpath_official_ms_p50",
    "fastpath_off_wrapped_call_ms_p50",
    "fastpath_wrapped_vs_official_p50_ratio",
    "fastpath_wrapped_vs_crypto_floor",
    "fastpath_on_vs_off_p50_ratio",
    "fastpath_round_trips_per_call",
    "reference_wrapped_call_ms_p50",
    "reference_wrapped_vs_official_p50_ratio",
    "reference_round_trips_per_call",
    "async_call_latency_ms_c64_p50",
    "async_call_latency_ms_c64_p99",
    "async_call_p99_vs_p50_c64",
    "async_call_errors_c64",
    "pipeline_call_round_trips",
    "pipeline_call_ms_p50",
    "reference_pipeline_call_round_trips",
    "audit_query_1m_vs_10k_ratio",
)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_writes_every_required_figure(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(results)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    figures = json.loads(results.read_text(encoding="utf-8"))
    missing = [key for key in REQUIRED_KEYS if key not in figures]
    assert not missing, f"missing figures: {missing}"
    for key in REQUIRED_KEYS:
        value = figures[key]
        assert isinstance(value, (int, float)), (key, value)
        assert not isinstance(value, bool), (key, value)
        assert math.isfinite(value), (key, value)
    assert figures["_meta"]["mode"] == "quick"
    # Counts, not timings: even a smoke run must show the fast path's round trips and no failed call.
    assert figures["fastpath_round_trips_per_call"] == 2
    assert figures["reference_round_trips_per_call"] == 3
    assert figures["pipeline_call_round_trips"] == 3
    assert figures["async_call_errors_c64"] == 0
    assert results.with_suffix(".png").stat().st_size > 0
