"""Real model or stand-in: one decision, made from the environment, the same way in every demo.

``LLM_BASE_URL`` (any OpenAI-compatible endpoint) or ``OPENAI_API_KEY`` (OpenAI itself) selects a real model;
``LLM_MODEL`` names it. With neither set, the caller runs the stand-in. Keeping the rule here means the demos,
the notebooks and the README cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_REAL_MODEL", "STAND_IN_API_KEY", "ModelSettings", "model_settings_from_env"]

DEFAULT_REAL_MODEL = "gpt-4o-mini"
"""The model asked of a real endpoint when ``LLM_MODEL`` is not set."""

# Not secrets: the openai client insists on some key, the stand-in and many local servers ignore it.
STAND_IN_API_KEY = "stand-in"
_UNUSED_KEY = "unused"


@dataclass(frozen=True)
class ModelSettings:
    """Where an OpenAI client should go.

    Attributes:
        base_url: the endpoint, or ``None`` for the ``openai`` client's own default.
        api_key: the key to send (hidden from ``repr`` so settings can be logged).
        model: the model name to request.
        stand_in: ``True`` when this points at the rule-based stand-in, not a language model.
    """

    base_url: str | None
    api_key: str = field(repr=False)
    model: str
    stand_in: bool = False


def model_settings_from_env(environ: Mapping[str, str] | None = None) -> ModelSettings | None:
    """Settings for a real model when the environment configures one; ``None`` means "use the stand-in".

    Reads ``LLM_BASE_URL``, ``OPENAI_API_KEY`` and ``LLM_MODEL`` (empty counts as unset). A base URL without
    a key is accepted: many local OpenAI-compatible servers need none.

    Example::

        settings = model_settings_from_env()
        if settings is None:
            with StandInModel(rules) as model:
                run(model.settings)
        else:
            run(settings)
    """
    env = os.environ if environ is None else environ
    base_url = env.get("LLM_BASE_URL") or None
    api_key = env.get("OPENAI_API_KEY") or None
    if base_url is None and api_key is None:
        return None
    return ModelSettings(
        base_url=base_url,
        api_key=api_key or _UNUSED_KEY,
        model=env.get("LLM_MODEL") or DEFAULT_REAL_MODEL,
    )
