"""Service settings, read from `MPT_*` environment variables.

Nested groups use `__` (for example `MPT_OPENAI__API_KEY` in a later provider issue).
Paths default to places a single user owns, so one video needs no configuration at all.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
RESOURCES = REPO_ROOT / "resources"


def _default_work_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mpt"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MPT_", env_nested_delimiter="__", extra="ignore")

    work_dir: Path = Field(
        default_factory=_default_work_dir,
        description="Stage outputs and cached task results live here.",
    )
    output_root: Path = Field(
        default=Path("output"), description="Finished videos are published under this folder."
    )
    music_dir: Path = Field(
        default=RESOURCES / "music", description="Folder that `music=random` draws from."
    )
    max_script_words: int = Field(
        default=2000, ge=1, description="Longer scripts are refused before any work starts."
    )
    retries: int = Field(default=3, ge=0, description="Retries of a stage on a transient fault.")
    retry_base_delay_s: float = Field(
        default=2.0, ge=0, description="First retry delay; each retry doubles it, with jitter."
    )
    render_max_inputs: int = Field(
        default=8,
        ge=0,
        description="Timelines with more cuts are streamed segment by segment into the "
        "encoder, so memory stays flat however long the video.",
    )
    ffmpeg_timeout_s: float = Field(
        default=1800, gt=0, description="An ffmpeg run longer than this is killed and fails."
    )

    @property
    def results_dir(self) -> Path:
        return self.work_dir / "results"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def export_prefect_defaults() -> None:
    """Point Prefect's result storage at our work dir unless the environment says otherwise."""
    # Telemetry off: it writes to the ephemeral server's SQLite at start-up and races it.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault(
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(Settings().results_dir.expanduser())
    )
