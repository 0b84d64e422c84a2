"""The names other layers build on are exported, and only deliberate names are."""

from __future__ import annotations

import importlib
import re

import agentwrit_tools
import agentwrit_tools.client
import agentwrit_tools.errors

FIXED = {"Broker", "AsyncBroker", "Credential", "AsyncCredential", "Claims", "AgentWritError", "Task", "scoped_tool"}
GUARD = {
    "Policy",
    "ScopedTool",
    "ToolResult",
    "current_credential",
    "wrap_tool",
    "Approval",
    "ApprovalRequest",
    "cli_approver",
}
PIPELINE = {"Pipeline", "Stage", "Halt", "stage", "PipelineError", "DelegationRefused", "DelegationTooDeep"}
ERRORS = {
    "AccessDenied",
    "BrokerError",
    "BrokerUnavailable",
    "ConfigurationError",
    "CredentialReleased",
    "Forbidden",
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToolArguments",
    "NotFound",
    "ProblemError",
    "ProtocolError",
    "RateLimited",
    "ScopeError",
    "ScopeMismatch",
    "ScopeViolation",
    "ServerError",
    "TaskBudgetExhausted",
    "TokenInvalid",
    "TokenRevoked",
    "ToolError",
    "ToolTimeout",
    "TransportError",
    "Unauthorized",
    "UnsafeArgumentError",
}


def test_fixed_names_are_exported() -> None:
    assert set(agentwrit_tools.__all__) >= FIXED | ERRORS
    for name in agentwrit_tools.__all__:
        assert hasattr(agentwrit_tools, name), name


def test_all_is_exactly_what_is_meant() -> None:
    extra = {
        "AsyncTaskLauncher",
        "AsyncVerifier",
        "CredentialAuth",
        "DelegationRecord",
        "Problem",
        "RetryPolicy",
        "TaskLauncher",
        "Verifier",
        "__version__",
    }
    assert set(agentwrit_tools.__all__) == FIXED | GUARD | PIPELINE | ERRORS | extra
    assert len(set(agentwrit_tools.__all__)) == len(agentwrit_tools.__all__)


def test_every_error_is_rooted_at_agentwrit_error() -> None:
    for name in ERRORS:
        cls = getattr(agentwrit_tools, name)
        assert issubclass(cls, agentwrit_tools.AgentWritError), name
    assert agentwrit_tools.TransportError is agentwrit_tools.BrokerUnavailable


def test_client_and_errors_modules_export_what_they_define() -> None:
    for module in (agentwrit_tools.client, agentwrit_tools.errors):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_the_error_tree_is_drawn_for_every_error() -> None:
    doc = agentwrit_tools.errors.__doc__ or ""
    for name in agentwrit_tools.errors.__all__:
        value = getattr(agentwrit_tools.errors, name)
        if isinstance(value, type) and issubclass(value, Exception) and value.__name__ == name:
            assert name in doc, f"{name} is missing from the tree at the top of errors.py"


def _all_subclasses(root: type) -> set[type]:
    found: set[type] = set()
    todo = [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_error_anywhere_in_the_package_is_in_the_drawn_tree() -> None:
    # Import every layer that defines errors of its own, so their classes exist.
    modules = ("pipeline", "resource", "offline", "adapters.openai", "adapters.langchain", "guard", "client", "demo")
    for module in (*modules, "adapters.openai_agents", "adapters.mcp", "resource.mcp"):
        importlib.import_module(f"agentwrit_tools.{module}")
    doc = agentwrit_tools.errors.__doc__ or ""
    ours = {
        cls for cls in _all_subclasses(agentwrit_tools.AgentWritError) if cls.__module__.startswith("agentwrit_tools")
    }
    assert len(ours) > 20
    missing = sorted(cls.__name__ for cls in ours if not re.search(rf"\b{cls.__name__}\b", doc))
    assert not missing, f"errors.py's tree does not draw: {missing}"


def test_pipeline_names_are_exported_at_the_top() -> None:
    from agentwrit_tools import pipeline

    for name in ("Pipeline", "Stage", "Halt", "stage"):
        assert getattr(agentwrit_tools, name) is getattr(pipeline, name)
