"""A conversation as the planner sees it, whichever OpenAI API it arrived through.

Chat completions send ``messages``; the Responses API sends ``input`` items. Both reduce to the same three kinds
of entry — what the user said, what the assistant said or called, what a tool returned — so the planner is
written once and knows nothing about either wire format.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

__all__ = ["AssistantTurn", "Conversation", "Entry", "MadeCall", "ToolOutput", "UserMessage"]


@dataclass(frozen=True)
class UserMessage:
    """Text the user wrote (text parts joined; images and files are not read)."""

    text: str


@dataclass(frozen=True)
class MadeCall:
    """A tool call the assistant made earlier in the conversation."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class AssistantTurn:
    """One assistant turn: text, tool calls, or both."""

    text: str = ""
    calls: tuple[MadeCall, ...] = ()


@dataclass(frozen=True)
class ToolOutput:
    """The result sent back for one tool call (a refusal by the guard is a result too)."""

    call_id: str
    output: str


Entry = UserMessage | AssistantTurn | ToolOutput


@dataclass(frozen=True)
class Conversation:
    """Entries in order; system and developer text is left out, the stand-in does not follow instructions."""

    entries: tuple[Entry, ...] = ()

    def latest_user(self) -> tuple[int, UserMessage] | None:
        """The last user message — the turn being answered — and its index."""
        for index in range(len(self.entries) - 1, -1, -1):
            entry = self.entries[index]
            if isinstance(entry, UserMessage):
                return index, entry
        return None

    def fingerprint(self) -> str:
        """A stable hash of the whole conversation, the seed of every id the stand-in hands out.

        Ids must differ between turns (a client matches results to calls by id) yet be the same for the same
        input, so a recorded exchange replays byte for byte. Hashing the conversation gives both.
        """
        canonical = json.dumps(
            [[type(entry).__name__, asdict(entry)] for entry in self.entries],
            sort_keys=True,
            ensure_ascii=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()
