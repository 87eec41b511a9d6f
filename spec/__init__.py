"""The contract at the bottom of the layers: what a request holds (the video spec, its
subtitle style, a campaign's rows), the options they choose from, a run's states, and what
the REST facade answers. Pydantic only; nothing of Prefect or of the rest of the project.
"""

from spec.campaign import Campaign, RowProblem
from spec.errors import BadInput, first_error
from spec.form import Group
from spec.options import (
    Aspect,
    Background,
    Concat,
    Encoder,
    Fit,
    Position,
    Preset,
    Resolution,
    Transition,
)
from spec.runs import ENDED, SETTLED, Kind, RunState, state_of
from spec.subtitles import SubtitleStyle
from spec.video import RenderOptions, VideoSpec

__all__ = [
    "ENDED",
    "SETTLED",
    "Aspect",
    "Background",
    "BadInput",
    "Campaign",
    "Concat",
    "Encoder",
    "Fit",
    "Group",
    "Kind",
    "Position",
    "Preset",
    "RenderOptions",
    "Resolution",
    "RowProblem",
    "RunState",
    "SubtitleStyle",
    "Transition",
    "VideoSpec",
    "first_error",
    "state_of",
]
