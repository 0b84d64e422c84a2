"""Google-style docstrings: the description for the model and one description per argument."""

from __future__ import annotations

from agentwrit_tools.guard._docstrings import parse_docstring


def test_summary_paragraphs_and_args() -> None:
    doc = parse_docstring(
        """Look up a ticket.

        Tickets come from the helpdesk,
        newest first.

        Args:
            ticket_id (str): The ticket's number.
            verbose: Add the history,
                oldest first.

                Even the deleted entries.
            *rest: ignored.

        Returns:
            The ticket.

        Raises:
            KeyError: no such ticket.
        """
    )
    assert doc.description == "Look up a ticket.\n\nTickets come from the helpdesk, newest first."
    assert doc.params == {
        "ticket_id": "The ticket's number.",
        "verbose": "Add the history, oldest first.\n\nEven the deleted entries.",
        "rest": "ignored.",
    }


def test_no_docstring_and_no_sections() -> None:
    assert parse_docstring(None).description == ""
    assert parse_docstring("").params == {}
    only = parse_docstring("Just this.")
    assert (only.description, only.params) == ("Just this.", {})


def test_other_header_words_in_text_are_not_sections() -> None:
    doc = parse_docstring(
        """Send a note.

        Warning: notes are visible to the patient.

        Arguments:
            text: What to say.
        """
    )
    assert doc.description == "Send a note.\n\nWarning: notes are visible to the patient."
    assert doc.params == {"text": "What to say."}
