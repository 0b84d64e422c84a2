"""A seeded run of guarded tool calls while things break, and the audit of what it left behind.

The run: batches of calls, each batch one :class:`~agentwrit_tools.Task` (sync with a ``Broker`` or async with an
``AsyncBroker``), every call planned from the seed — the tool returns, raises, overruns its timeout, is cancelled
(async), or restarts the broker from inside its body. All broker traffic goes through :class:`FaultProxy`, which
resets connections, answers 5xx, stalls past the client's timeout and truncates answers, before or after the broker
did the work. Between batches the broker may also be restarted on the same database.

The audit (faults off, straight to the broker, never through the proxy):

1. every tool body that ran held a verified credential: the credential parameter *is* ``current_credential()``,
   its jti has a ``minted`` trace event for exactly the call's rendered scope, its verified claims carry that scope,
   and the broker's audit log has the ``token_issued`` event for that jti and scope;
2. right after the run, the only live tokens of the run's tasks are those the trace reported as ``release_failed``
   (with the right ``exp``) and those whose registration answer the proxy swallowed (issued, never held by anyone);
3. every token the client ever held and did not report is already dead at the broker;
4. after the longest TTL, nothing of the run is alive.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from fault_proxy import FaultPlan, FaultProxy

from agentwrit_tools import AsyncBroker, Broker, RetryPolicy, Task, current_credential, scoped_tool
from agentwrit_tools.broker import EmbeddedBroker
from agentwrit_tools.guard import ScopedTool

SCOPE = "read:records:{patient_id}"
CEILING = "read:records:*"
TOOL_TIMEOUT = 0.1
SLOW = 0.3
CLIENT_TIMEOUT = 1.0

KINDS = ("ok", "raise", "slow", "cancel", "restart")


@dataclass(frozen=True)
class RunConfig:
    """What a run does; everything random in it derives from ``seed``.

    Attributes:
        seed: the run's seed.
        calls: how many tool calls.
        ttl: each credential's lifetime (short, so leftovers die within the test).
        batch: calls per task.
        fault_rate: probability that one broker request is faulted by the proxy.
        restarts: broker restarts between batches (on top of those planned during calls).
        strict_verify: the client verifies every token with the broker (remote mode) instead of locally.
        weights: relative frequency of each call kind (``cancel`` applies to async batches only; ``restart`` restarts
            the broker while that call is in progress).
    """

    seed: int
    calls: int
    ttl: int = 3
    batch: int = 25
    fault_rate: float = 0.1
    restarts: int = 2
    strict_verify: bool = False
    weights: dict[str, float] = field(
        default_factory=lambda: {"ok": 60, "raise": 14, "slow": 10, "cancel": 14, "restart": 0.6}
    )


@dataclass
class BodyRecord:
    patient_id: str
    jti: str
    scope: tuple[str, ...]
    same_as_context: bool
    token: str


class Ledger:
    """Everything the run saw, thread-safe (sync tool bodies with a timeout run in worker threads)."""

    def __init__(self) -> None:
        self.bodies: list[BodyRecord] = []
        self.held: dict[str, str] = {}  # jti -> token, every credential the client was handed
        self.planned: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.cancelled = 0
        self.events: list[Any] = []
        self.task_ids: list[str] = []
        self._lock = threading.Lock()

    def body(self, patient_id: str, credential: Any) -> None:
        record = BodyRecord(
            patient_id,
            credential.claims.jti,
            tuple(credential.claims.scope),
            current_credential() is credential,
            credential.access_token,
        )
        with self._lock:
            self.bodies.append(record)

    def hold(self, credential: Any) -> None:
        with self._lock:
            self.held[credential.claims.jti] = credential.access_token


class RecordingMinter:
    """The task's launcher, noting every credential it hands out (so none can go unseen)."""

    def __init__(self, launcher: Any, ledger: Ledger) -> None:
        self.launcher = launcher
        self.ledger = ledger

    def mint(self, scope: Sequence[str], *, ttl: int | None = None) -> Any:
        credential = self.launcher.mint(scope, ttl=ttl)
        self.ledger.hold(credential)
        return credential


class AsyncRecordingMinter(RecordingMinter):
    async def mint(self, scope: Sequence[str], *, ttl: int | None = None) -> Any:  # type: ignore[override]
        credential = await self.launcher.mint(scope, ttl=ttl)
        self.ledger.hold(credential)
        return credential


class RestartableBroker:
    """The real broker, restartable on the same database while the proxy keeps the client's address stable."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.secret = secrets.token_urlsafe(16)
        self.current = self._start()
        self.proxy: FaultProxy | None = None
        self.restarts = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _start(self) -> EmbeddedBroker:
        return EmbeddedBroker(db_path=self.db, admin_secret=self.secret, rate_limits=False).start()

    @property
    def address(self) -> tuple[str, int]:
        url = httpx.URL(self.current.url)
        return str(url.host), int(url.port or 80)

    def restart(self) -> None:
        with self._lock:
            self.current.stop()
            self.current = self._start()
            if self.proxy is not None:
                self.proxy.retarget(self.address)
            self.restarts += 1

    def kick(self, delay: float = 0.0) -> None:
        """Restart in the background after ``delay`` seconds: the call in progress goes on while the broker is down."""
        if self._thread is not None and self._thread.is_alive():
            return

        def later() -> None:
            time.sleep(delay)
            self.restart()

        self._thread = threading.Thread(target=later, name="broker-restart", daemon=True)
        self._thread.start()

    def settle(self) -> None:
        if self._thread is not None:
            self._thread.join(30)

    def stop(self) -> None:
        self.settle()
        self.current.stop()


@dataclass
class Report:
    """The figures of one run."""

    seed: int
    calls: int
    seconds: float = 0.0
    planned: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    upstream_refused: int = 0
    restarts: int = 0
    bodies_run: int = 0
    credentials_held: int = 0
    minted_events: int = 0
    mint_failed: int = 0
    release_failed: int = 0
    swallowed_registrations: int = 0
    live_after_batches: int = 0
    live_after_batches_reported: int = 0
    live_after_batches_swallowed: int = 0
    live_after_run: int = 0
    live_reported: int = 0
    live_swallowed: int = 0
    live_unexplained: list[str] = field(default_factory=list)
    live_after_ttl: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def faulty_calls(self) -> int:
        return self.calls - self.outcomes.get("ok", 0)

    def summary(self) -> str:
        return json.dumps(
            {k: v for k, v in self.__dict__.items() if k != "problems"} | {"problems": self.problems[:20]}
        )


def _jti_of(token: str) -> str | None:
    try:
        payload = token.split(".")[1]
        return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])
    except (IndexError, ValueError, KeyError):
        return None


def _swallowed_tokens(swallowed: list[Any]) -> dict[str, str]:
    """jti -> token of every registration the broker granted whose answer the proxy swallowed."""
    found: dict[str, str] = {}
    for item in swallowed:
        data = item.json()
        if item.path == "/v1/register" and item.status == 200 and isinstance(data, dict):
            jti = _jti_of(str(data.get("access_token", "")))
            if jti:
                found[jti] = str(data["access_token"])
    return found


class Plan:
    """The seeded plan of each call: its kind (and, for cancellations, when the cancel lands)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def kind(self, index: int, *, is_async: bool) -> str:
        if index == self.config.calls // 2:
            return "restart"  # at least one restart from inside a tool body, whatever the seed
        roll = random.Random(f"{self.config.seed}:call:{index}")
        weights = dict(self.config.weights)
        if not is_async:
            weights.pop("cancel", None)
        kinds = list(weights)
        return roll.choices(kinds, weights=[weights[k] for k in kinds])[0]

    def cancel_after(self, index: int) -> float:
        roll = random.Random(f"{self.config.seed}:cancel:{index}")
        return roll.choice([0.0, 0.001, 0.005, 0.02, 0.05, 0.15])

    def batch_is_async(self, batch: int) -> bool:
        return random.Random(f"{self.config.seed}:batch:{batch}").random() < 0.5


class FaultRun:
    def __init__(self, config: RunConfig, db: Path) -> None:
        self.config = config
        self.plan = Plan(config)
        self.ledger = Ledger()
        self.broker = RestartableBroker(db)
        self.app = self.broker.current.create_app(f"faults-{config.seed}", [CEILING])
        self.kinds: dict[str, str] = {}
        self.tools = self._tools()
        self.batch_live = self.batch_live_reported = self.batch_live_swallowed = 0
        self.batch_problems: list[str] = []
        self._proxy: Any = None

    def _tools(self) -> tuple[ScopedTool, ScopedTool]:
        ledger, kinds = self.ledger, self.kinds

        @scoped_tool(SCOPE, ttl=self.config.ttl, timeout=TOOL_TIMEOUT, name="read_record")
        def read_record(patient_id: str, credential: Any) -> str:
            ledger.body(patient_id, credential)
            kind = kinds[patient_id]
            if kind == "raise":
                raise RuntimeError("the records service failed")
            if kind == "slow":
                time.sleep(SLOW)
            return f"record {patient_id}"

        @scoped_tool(SCOPE, ttl=self.config.ttl, timeout=TOOL_TIMEOUT, name="read_record")
        async def aread_record(patient_id: str, credential: Any) -> str:
            ledger.body(patient_id, credential)
            kind = kinds[patient_id]
            if kind == "raise":
                raise RuntimeError("the records service failed")
            if kind in ("slow", "cancel"):
                await anyio.sleep(SLOW)
            return f"record {patient_id}"

        return read_record, aread_record

    # -- the run ----------------------------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "timeout": CLIENT_TIMEOUT,
            "retry": RetryPolicy(transport_retries=2, backoff=0.02, backoff_max=0.2),
            "strict_verify": self.config.strict_verify,
        }

    def _task(self, client: Broker | AsyncBroker, task_id: str) -> Task:
        launcher = client.task_launcher(
            CEILING, orch_id="orch-faults", task_id=task_id, ttl=120, max_ttl=self.config.ttl
        )
        minter = (
            AsyncRecordingMinter(launcher, self.ledger)
            if isinstance(client, AsyncBroker)
            else RecordingMinter(launcher, self.ledger)
        )
        self.ledger.task_ids.append(task_id)
        return Task(
            client, orch_id="orch-faults", task_id=task_id, ceiling=CEILING, budget=120, ttl=self.config.ttl,
            minter=minter,
        )  # fmt: skip

    def _batches(self) -> Iterator[tuple[int, range]]:
        size = self.config.batch
        for number, start in enumerate(range(0, self.config.calls, size)):
            yield number, range(start, min(start + size, self.config.calls))

    def _note(self, index: int, is_async: bool) -> str:
        kind = self.plan.kind(index, is_async=is_async)
        self.kinds[f"P-{index}"] = kind
        self.ledger.planned[kind] += 1
        if kind == "restart":  # lands during the mint, the body or the release of this very call
            self.broker.kick(self.plan.cancel_after(index))
        return kind

    def _after_batch(self, task_id: str, events: list[Any], proxy: FaultProxy) -> None:
        """Right after a task closed (well within the TTL): its live tokens must all be accounted for."""
        self.broker.settle()
        failed = {e.jti for e in events if e.type == "release_failed"}
        swallowed = set(_swallowed_tokens(proxy.swallowed))
        now = time.time()
        live = {jti for jti, (exp, revoked) in self._db_tokens([task_id]).items() if exp > now and not revoked}
        self.batch_live += len(live)
        self.batch_live_reported += len(live & failed)
        self.batch_live_swallowed += len(live & swallowed)
        for jti in sorted(live - failed - swallowed):
            self.batch_problems.append(f"{task_id}: jti {jti} alive right after the task, unreported, not swallowed")

    def _sync_batch(self, url: str, number: int, indices: range) -> None:
        with Broker(url, self.app.client_id, self.app.client_secret, **self._client_options()) as client:
            task = self._task(client, f"faults-{self.config.seed}-{number}")
            with task:
                for index in indices:
                    self._note(index, is_async=False)
                    result = task.call(self.tools[0], {"patient_id": f"P-{index}"})
                    self.ledger.outcomes["ok" if result.ok else str(result.error_kind)] += 1
            self.ledger.events.extend(task.events)
        self._after_batch(task.task_id, task.events, self._proxy)

    async def _async_batch(self, url: str, number: int, indices: range) -> None:
        async with AsyncBroker(url, self.app.client_id, self.app.client_secret, **self._client_options()) as client:
            task = self._task(client, f"faults-{self.config.seed}-{number}")
            async with task:
                for index in indices:
                    kind = self._note(index, is_async=True)
                    result = None
                    if kind == "cancel":
                        with anyio.move_on_after(self.plan.cancel_after(index)):
                            result = await task.acall(self.tools[1], {"patient_id": f"P-{index}"})
                    else:
                        result = await task.acall(self.tools[1], {"patient_id": f"P-{index}"})
                    if result is None:
                        self.ledger.outcomes["cancelled"] += 1
                    else:
                        self.ledger.outcomes["ok" if result.ok else str(result.error_kind)] += 1
            self.ledger.events.extend(task.events)
        self._after_batch(task.task_id, task.events, self._proxy)

    def run(self) -> Report:
        report = Report(self.config.seed, self.config.calls)
        started = time.monotonic()
        plan = FaultPlan(self.config.seed, rate=self.config.fault_rate)
        batches = list(self._batches())
        restart_after = {
            batches[int(len(batches) * (k + 1) / (self.config.restarts + 1)) - 1][0]
            for k in range(self.config.restarts)
            if batches
        }
        with FaultProxy(self.broker.address, plan, stall=CLIENT_TIMEOUT * 1.5) as proxy:
            self.broker.proxy = proxy
            self._proxy = proxy
            try:
                for number, indices in batches:
                    if self.plan.batch_is_async(number):
                        anyio.run(self._async_batch, proxy.url, number, indices)
                    else:
                        self._sync_batch(proxy.url, number, indices)
                    self.broker.settle()
                    if number in restart_after:
                        self.broker.restart()
                self.broker.settle()
                report.injected = dict(proxy.injected)
                report.upstream_refused = proxy.upstream_refused
                swallowed = list(proxy.swallowed)
            finally:
                self.broker.proxy = None
        report.seconds = round(time.monotonic() - started, 1)
        self._audit(report, swallowed)
        return report

    # -- the audit --------------------------------------------------------------------------------------------

    def _db_tokens(self, task_ids: Sequence[str] | None = None) -> dict[str, tuple[int, bool]]:
        """jti -> (exp, revoked) for every token of the run's tasks, read from the broker's own state."""
        task_ids = list(self.ledger.task_ids if task_ids is None else task_ids)

        def read(core: Any) -> dict[str, tuple[int, bool]]:
            marks = ",".join("?" * len(task_ids))
            rows = core.store.conn.execute(
                f"SELECT jti, sub, task_id, chain_root, exp FROM tokens WHERE task_id IN ({marks})",  # noqa: S608
                task_ids,
            ).fetchall()
            return {row[0]: (int(row[4]), core.revocations.is_revoked(*row[:4])) for row in rows}

        found: dict[str, tuple[int, bool]] = self.broker.current.call(read)
        return found

    def _issued_scopes(self) -> dict[str, str]:
        """jti -> the detail of its ``token_issued`` audit event."""
        task_ids = list(self.ledger.task_ids)

        def read(core: Any) -> dict[str, str]:
            marks = ",".join("?" * len(task_ids))
            rows = core.store.conn.execute(
                f"SELECT resource, detail FROM audit_events WHERE event_type = 'token_issued' AND task_id IN ({marks})",  # noqa: S608
                task_ids,
            ).fetchall()
            return {row[0]: row[1] for row in rows}

        found: dict[str, str] = self.broker.current.call(read)
        return found

    def _dead(self, client: httpx.Client, token: str) -> bool:
        body = client.post("/v1/token/validate", json={"token": token}).json()
        return body["valid"] is False

    def _audit(self, report: Report, swallowed: list[Any]) -> None:
        ledger = self.ledger
        events = ledger.events
        minted = {e.jti: e for e in events if e.type == "minted"}
        failed = {e.jti: e for e in events if e.type == "release_failed"}
        report.planned = dict(ledger.planned)
        report.outcomes = dict(ledger.outcomes)
        report.restarts = self.broker.restarts
        report.bodies_run = len(ledger.bodies)
        report.credentials_held = len(ledger.held)
        report.minted_events = len(minted)
        report.mint_failed = sum(e.type == "mint_failed" for e in events)
        report.release_failed = len(failed)
        swallowed_jtis = _swallowed_tokens(swallowed)
        report.swallowed_registrations = len(swallowed_jtis)
        report.live_after_batches = self.batch_live
        report.live_after_batches_reported = self.batch_live_reported
        report.live_after_batches_swallowed = self.batch_live_swallowed
        problems = report.problems
        problems.extend(self.batch_problems)

        # 1. every body ran with a verified credential of exactly its call's scope, issued by the broker
        issued = self._issued_scopes()
        for body in ledger.bodies:
            want = (f"read:records:{body.patient_id}",)
            event = minted.get(body.jti)
            if not body.same_as_context:
                problems.append(f"{body.patient_id}: credential parameter is not current_credential()")
            if event is None or tuple(event.scope) != want:
                problems.append(f"{body.patient_id}: jti {body.jti} has no minted event for {want}")
            if body.scope != want:
                problems.append(f"{body.patient_id}: verified scope {body.scope} != {want}")
            if not issued.get(body.jti, "").startswith(f"scope {want[0]},"):
                problems.append(f"{body.patient_id}: the broker has no token_issued for {body.jti} with {want}")
            if body.jti not in ledger.held:
                problems.append(f"{body.patient_id}: jti {body.jti} did not come from the task's minter")

        # 2. live right after the run: only reported release failures and swallowed registrations
        now = time.time()
        tokens = self._db_tokens()
        live = {jti for jti, (exp, revoked) in tokens.items() if exp > now and not revoked}
        report.live_after_run = len(live)
        report.live_reported = len(live & set(failed))
        report.live_swallowed = len(live & set(swallowed_jtis))
        report.live_unexplained = sorted(live - set(failed) - set(swallowed_jtis))
        for jti in report.live_unexplained:
            problems.append(f"jti {jti} is alive, was never reported as release_failed, and was not swallowed")
        for jti, event in failed.items():
            if jti in tokens and tokens[jti][0] != event.exp:
                problems.append(f"release_failed for {jti} says exp {event.exp}, the broker says {tokens[jti][0]}")

        # 3. every credential the client held and did not report is dead now
        with httpx.Client(base_url=self.broker.current.url, timeout=30) as direct:
            for jti, token in ledger.held.items():
                if jti not in failed and not self._dead(direct, token):
                    problems.append(f"jti {jti} was held, not reported, and is still valid")

            # 4. after the longest TTL nothing is alive, by the broker's state and by validate
            latest = max((tokens[jti][0] for jti in live), default=0)
            time.sleep(max(0.0, latest - time.time() + 1.1))
            after = {jti for jti, (exp, revoked) in self._db_tokens().items() if exp > time.time() and not revoked}
            report.live_after_ttl = len(after)
            for jti in after:
                problems.append(f"jti {jti} still alive after its TTL")
            for jti in live:
                token = ledger.held.get(jti) or swallowed_jtis.get(jti)
                if token is not None and not self._dead(direct, token):
                    problems.append(f"jti {jti} still validates after its TTL")

        for jti in set(ledger.held) - set(tokens):
            problems.append(f"jti {jti} was held by the client but the broker has no record of it")

    def close(self) -> None:
        self.broker.stop()


@contextmanager
def fault_run(config: RunConfig, db: Path) -> Iterator[FaultRun]:
    run = FaultRun(config, db)
    try:
        yield run
    finally:
        run.close()
