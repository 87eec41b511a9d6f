"""The LLM provider interface the script and terms stages call.

Concrete providers (OpenAI, Gemini, Ollama, ...) plug in here as blocks; the flow only ever
asks `configured_llm()` and talks to the `LLM` protocol, so adding one touches no flow code.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LLM(Protocol):
    name: str

    def write_script(self, topic: str, language: str, paragraphs: int) -> str:
        """Narration text for `topic` in `language`, plain prose, no markup."""
        ...

    def search_terms(self, script: str, count: int) -> list[str]:
        """`count` short English stock-footage search queries for `script`."""
        ...


def configured_llm() -> LLM | None:
    """The LLM chain built from settings, or None when no provider is configured.

    No network provider ships yet, so this is None until one is configured.
    """
    return None
