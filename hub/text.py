"""`Text`: a sentence in both languages the hub speaks, the one bilingual type of every layer
(problem details, a tap's reasons, the service catalogue, the window's screen).

It depends on nothing, so pure domain modules and the window agent use it as the routes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Language = Literal["zh-CN", "en"]


@dataclass(frozen=True)
class Text:
    """A sentence or a name in Chinese and English."""

    zh: str
    en: str

    def in_(self, language: str) -> str:
        """Chinese for zh-CN, English for anything else."""
        return self.zh if language == "zh-CN" else self.en
