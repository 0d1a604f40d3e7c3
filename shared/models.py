"""Base classes for the pydantic models at Fanout's boundaries (STYLE habit 6).

Every model that crosses a boundary — a spec, a frozen plan, an HTTP body, an activity input or output,
a queue message, an agent task — derives from :class:`FrozenModel`: unknown fields are errors, instances
are immutable, and every field has a description.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Immutable, strict boundary model: ``extra="forbid"``, ``frozen=True``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)
