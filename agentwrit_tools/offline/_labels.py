"""How the stand-in says what it is, everywhere it shows up.

A rule-based program answering on an OpenAI endpoint could be mistaken for a model in a demo recording or a
log. Every surface carries one of these labels so nobody is misled: the model id, the system fingerprint, the
HTTP ``Server`` header, the start-up banner, and the text of every answer.
"""

from __future__ import annotations

__all__ = ["CREATED", "MARKER", "MODEL_ID", "OWNED_BY", "SERVER_NAME", "SYSTEM_FINGERPRINT", "banner", "labelled"]

MODEL_ID = "agentwrit-stand-in"
"""The model id in every response and in ``GET /v1/models``; requests may name any model."""

SYSTEM_FINGERPRINT = "stand-in-rule-based-not-an-llm"
"""``system_fingerprint`` of chat completions: OpenAI uses it to identify the backend configuration."""

MARKER = "[stand-in model]"
"""Every final answer contains this, so a transcript shows which answers no language model wrote."""

OWNED_BY = "agentwrit-tools (rule-based stand-in, not a language model)"
SERVER_NAME = "agentwrit-stand-in"

CREATED = 1_700_000_000
"""The ``created`` timestamp of every response: fixed, so the same request gives byte-identical responses."""


def labelled(text: str) -> str:
    """``text`` with the marker in front, unless a rule's template already placed it somewhere."""
    return text if MARKER in text else f"{MARKER} {text}"


def banner(base_url: str, rule_count: int) -> str:
    """The one line logged (and printed by the CLI) when a stand-in starts listening."""
    return (
        f"agentwrit stand-in model (rule-based, not a language model) serving the OpenAI API at {base_url} "
        f"as model {MODEL_ID!r} with {rule_count} rule{'s' if rule_count != 1 else ''}"
    )
