"""Framework adapters (layer 5 of the design): OpenAI and LangChain formats around the guard.

Import the one you need — :mod:`agentwrit_tools.adapters.openai` or :mod:`agentwrit_tools.adapters.langchain`.
Nothing is imported here, so ``import agentwrit_tools`` never pulls in a framework. Adapters only translate
formats: what is minted, refused or told to the model is decided by :class:`~agentwrit_tools.Task` and its
:class:`~agentwrit_tools.Policy`.
"""

from __future__ import annotations

__all__: list[str] = []
