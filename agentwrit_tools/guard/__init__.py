"""The guard: one tool call, one credential (layer 4 of the design). Framework-neutral.

* :func:`scoped_tool` / :func:`wrap_tool` / :meth:`ScopedTool.wrap` — declare a tool and the scope template(s)
  each call needs; the JSON schema comes from the signature and docstring.
* :class:`Task` — runs calls for one task under its ceiling: validate → render → check the ceiling → mint
  exactly that scope under a broker-enforced ceiling → gate on the verified claims → run → release.
* :class:`ToolResult` — what a call produced; ``content`` is the text for the model.
* :class:`Policy` — whether refusals and errors become messages for the model or exceptions, and which calls
  need a person's yes first (:meth:`Policy.with_approval`; tools can also say ``approval=True``).
* :class:`ApprovalRequest` / :class:`Approval` — what an approver is shown (tool, canonical arguments, exact
  scopes) and its answer, bound to exactly that call, single-use and short-lived; :func:`cli_approver` asks in
  a terminal.
* :func:`current_credential` — the running call's credential, for code that cannot take a parameter.
* :class:`CallMinter` / :class:`AsyncCallMinter` — where a task's calls get credentials, when not from its own
  launcher (the pipeline delegates them from a stage's token).

The per-call flow is written once, free of I/O (``_flow``), and carried out by a sync and an async driver
(``_drivers``); adapters (OpenAI, LangChain) only translate formats around :meth:`Task.call`/:meth:`Task.acall`.
"""

from __future__ import annotations

from ._approval import Approval, ApprovalLedger, ApprovalRequest, ApprovalRules, Approver
from ._approvers import CliApprover, cli_approver
from ._context import current_credential
from ._effects import AsyncCallMinter, CallMinter
from ._policy import Policy
from ._result import DENIAL_KINDS, ERROR_KINDS, ErrorKind, ToolResult
from ._task import Task
from ._tool import ScopedTool, scoped_tool, wrap_tool

__all__ = [
    "DENIAL_KINDS",
    "ERROR_KINDS",
    "Approval",
    "ApprovalLedger",
    "ApprovalRequest",
    "ApprovalRules",
    "Approver",
    "AsyncCallMinter",
    "CallMinter",
    "CliApprover",
    "ErrorKind",
    "Policy",
    "ScopedTool",
    "Task",
    "ToolResult",
    "cli_approver",
    "current_credential",
    "scoped_tool",
    "wrap_tool",
]
