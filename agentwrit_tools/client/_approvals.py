"""Recording a person's approval (or refusal) of a tool call in the broker's audit log — no I/O here.

Extension ``POST /v1/audit/approvals`` (app bearer): the guard reports each decision on a call that needed
approval — which tool, which scopes, the digest the approval was bound to, granted or refused and why, who decided
— and the broker appends it to its hash-chained audit log beside the credentials minted for the same task. A
broker without the extension (the reference contract, or ``--no-extensions``) answers 404: the flow then says
"not recorded" (False) and the caller's trace is the record.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._flows import Core
from ._steps import Call, Flow

__all__ = ["APPROVALS_PATH", "record_approval"]

APPROVALS_PATH = "/v1/audit/approvals"
_ABSENT = (404, 405)


def record_approval(core: Core, record: Mapping[str, object]) -> Flow[bool]:
    """Send ``record`` with the app session: True when the broker recorded it, False when it keeps no such records.

    Raises:
        ConfigurationError: no app credentials.
        ProblemError: the broker refused the record (400, 401, 403, 429…). BrokerUnavailable: no answer.
    """
    session = core.require_app()

    def build(bearer: str) -> Call:
        return Call("POST", APPROVALS_PATH, body=dict(record), bearer=bearer)

    response = yield from session.call(build, accept=_ABSENT)
    return response.status not in _ABSENT
