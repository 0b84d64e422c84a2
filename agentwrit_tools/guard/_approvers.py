"""Ready approvers: a prompt in the terminal.

An approver is any callable given an :class:`~agentwrit_tools.guard.ApprovalRequest` (sync or ``async``). The
others live where their framework does: LangGraph's interrupt in
:class:`agentwrit_tools.adapters.langchain.InterruptApprover`, a web button in the demo kit
(:class:`agentwrit_tools.demo.ApprovalDesk`).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..errors import ConfigurationError
from ..scopes import is_identifier
from ._approval import Approval, ApprovalRequest

__all__ = ["CliApprover", "cli_approver"]


class CliApprover:
    """Ask in a terminal: the tool, the exact arguments and scopes, then ``Approve? [y/N]``.

    Arguments are printed as ASCII-escaped JSON, so a model-chosen value cannot move the cursor, clear the line or
    fake the prompt with control characters. Anything but ``y``/``yes`` (end of input included) is a no; the
    guard's timeout bounds the wait.

    Args:
        stdin: where answers are read (default ``sys.stdin``).
        stdout: where the question is written (default ``sys.stderr``, so piped output stays clean).
        name: who is answering, as recorded in the audit log (a plain identifier).
    """

    def __init__(self, *, stdin: TextIO | None = None, stdout: TextIO | None = None, name: str = "cli") -> None:
        if not is_identifier(name):
            raise ConfigurationError("an approver is named by a plain identifier (letters, digits, _ . @ + -)")
        self._stdin = stdin
        self._stdout = stdout
        self.name = name

    def __call__(self, request: ApprovalRequest) -> Approval:
        out = self._stdout or sys.stderr
        arguments = json.dumps(json.loads(request.canonical_arguments), sort_keys=True, ensure_ascii=True)
        out.write(
            f"\nApproval needed before {request.tool} may run (task {request.task_id}).\n"
            f"  arguments: {arguments}\n"
            f"  scope:     {', '.join(request.scope)}\n"
            f"  digest:    {request.digest}\n"
            "Approve? [y/N] "
        )
        out.flush()
        line = (self._stdin or sys.stdin).readline()
        answer = line.strip().lower() in ("y", "yes")
        out.write("approved\n" if answer else "refused\n")
        return request.approve(self.name) if answer else request.deny(self.name)


def cli_approver(*, stdin: TextIO | None = None, stdout: TextIO | None = None, name: str = "cli") -> CliApprover:
    """A :class:`CliApprover`: ``Policy().with_approval(cli_approver(), scopes=["write:prescriptions:*"])``."""
    return CliApprover(stdin=stdin, stdout=stdout, name=name)
