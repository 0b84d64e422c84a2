"""Aggregation windows for refusals of requests that proved nothing (broker._denials), on a fake clock."""

from __future__ import annotations

from agentwrit_tools.broker._denials import OTHER_SOURCES, DenialWindows


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.ns = 1_700_000_000_000_000_000

    def mono(self) -> float:
        return self.now

    def wall(self) -> int:
        self.ns += 1_000
        return self.ns


def _windows(window: float = 10.0, **options: int) -> tuple[DenialWindows, Clock]:
    clock = Clock()
    return DenialWindows(window, clock=clock.mono, wall=clock.wall, **options), clock


def test_the_first_refusal_is_written_and_the_rest_of_the_window_counted() -> None:
    windows, clock = _windows()
    assert windows.admit("10.0.0.1", "admin_auth_failed") is True
    assert [windows.admit("10.0.0.1", "admin_auth_failed") for _ in range(5)] == [False] * 5
    assert windows.admit("10.0.0.1", "app_auth_failed") is True  # another kind, its own window
    assert windows.admit("10.0.0.2", "admin_auth_failed") is True  # another source, its own window
    assert windows.close() == []  # nothing is over yet
    clock.now += 10
    closed = windows.close()
    assert [(w.source, w.event_type, w.suppressed) for w in closed] == [("10.0.0.1", "admin_auth_failed", 5)]
    assert closed[0].first_ns < closed[0].last_ns
    assert len(windows) == 0  # windows that counted nothing are dropped silently
    assert windows.admit("10.0.0.1", "admin_auth_failed") is True  # a new window opens


def test_sources_beyond_the_limit_share_one_window() -> None:
    windows, _ = _windows(max_windows=3)
    assert all(windows.admit(f"10.0.0.{i}", "token_auth_failed") for i in range(3))
    assert windows.admit("10.0.0.99", "token_auth_failed") is True  # opens the shared window
    assert [windows.admit(f"10.1.0.{i}", "token_auth_failed") for i in range(50)] == [False] * 50
    assert len(windows) == 4
    [shared] = windows.close(everything=True)
    assert (shared.source, shared.suppressed) == (OTHER_SOURCES, 50)


def test_window_zero_writes_everything() -> None:
    windows, _ = _windows(window=0)
    assert all(windows.admit("10.0.0.1", "admin_auth_failed") for _ in range(10))
    assert windows.close(everything=True) == []


def test_the_peer_is_an_address_or_unknown() -> None:
    from agentwrit_tools.broker._denials import peer_of

    assert peer_of(("127.0.0.1", 5000)) == "127.0.0.1"
    assert peer_of(["::1", 1]) == "::1"
    for client in (None, (), ("evil\u202ehost", 1), ("10.0.0.1, 10.0.0.2", 0)):
        assert peer_of(client) == "unknown"
