"""Service settings, read from `MPT_*` environment variables.

Nested groups use `__` (for example `MPT_OPENAI__API_KEY` in a later provider issue).
Paths default to places a single user owns, so one video needs no configuration at all.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, create_model, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from resources import FOLDER as RESOURCES


def _default_work_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mpt"


def _names(value: object) -> object:
    """`openai, ollama` (as env vars give it) or a list (as TOML gives it) → a list."""
    if isinstance(value, str):
        return [v.strip().lower() for v in value.split(",") if v.strip()]
    return value


class Chain(BaseModel):
    """A failover order of provider names."""

    providers: Annotated[list[str], NoDecode] = []
    _split = field_validator("providers", mode="before")(_names)


class Provider(BaseModel):
    """One network provider's connection settings. Every base URL is configurable, so a
    proxy, a gateway or a self-hosted server can stand in for the public endpoint."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str | None = None
    timeout_s: float = Field(60.0, gt=0)


class AzureProvider(Provider):
    deployment: str | None = None
    api_version: str = "2024-10-21"


def _provider(name: str, base_url: str | None, model: str | None) -> type[Provider]:
    """A Provider whose defaults are this provider's public endpoint and a default model.

    Defaults live on the class, not the field, so setting only MPT_X__API_KEY keeps them.
    """
    fields = {"base_url": (str | None, base_url), "model": (str | None, model)}
    return create_model(name, __base__=Provider, **fields)


OpenAIProvider = _provider("OpenAIProvider", "https://api.openai.com/v1", "gpt-4o-mini")
GeminiProvider = _provider("GeminiProvider", None, "gemini-2.0-flash")
OllamaProvider = _provider("OllamaProvider", "http://127.0.0.1:11434", "llama3.2")
DeepSeekProvider = _provider("DeepSeekProvider", "https://api.deepseek.com", "deepseek-chat")
MoonshotProvider = _provider("MoonshotProvider", "https://api.moonshot.cn/v1", "moonshot-v1-8k")
PexelsProvider = _provider("PexelsProvider", "https://api.pexels.com", None)
PixabayProvider = _provider("PixabayProvider", "https://pixabay.com/api", None)
AzureSpeechProvider = _provider(
    "AzureSpeechProvider", "https://eastus.tts.speech.microsoft.com", None
)


class SoVITSProvider(Provider):
    base_url: str | None = "http://127.0.0.1:9880"
    ref_audio_path: str = ""
    prompt_text: str = ""
    prompt_lang: str = "en"
    text_lang: str = "en"


QwenProvider = _provider(
    "QwenProvider", "https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen-plus"
)


DEFAULT_DATABASE_URL = "postgresql://mpt:mpt@127.0.0.1:5432/mpt"


class ApiSettings(BaseModel):
    """The REST facade's limits; every one is refused with a 422 or 429 naming it."""

    rate_limit_per_min: int = Field(60, ge=1, description="Creates per key per minute.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body.")
    max_topic_chars: int = Field(300, ge=1, le=500)
    max_script_chars: int = Field(20_000, ge=1, le=100_000)
    max_video_count: int = Field(3, ge=1, le=5)
    prefect_timeout_s: float = Field(5.0, gt=0, description="Each call to the Prefect API.")
    state_ttl_s: float = Field(
        1.0, ge=0, description="How long a run's Prefect state is reused between reads."
    )
    reconcile_every_s: float = Field(
        10.0, ge=0, description="How often open runs are checked against Prefect; 0: never."
    )
    max_batch_rows: int = Field(1000, ge=1, description="Rows in one batch or campaign.")
    signing_key: SecretStr | None = Field(
        None,
        description="Key of the HMAC in signed file URLs; unset, each facade process makes "
        "one at start (its URLs then end with it).",
    )
    signed_url_ttl_s: int = Field(3600, ge=60, le=7 * 86400, description="Signed URLs' life.")
    max_upload_mb: float = Field(
        50, gt=0, description="Largest uploaded file (a campaign's rows, music, footage)."
    )
    input_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Extra folders a request may name for music, materials or narration "
        "(the output root and the music folder always may).",
    )

    @field_validator("input_roots", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(v.strip()) for v in value.split(",") if v.strip()]
        return value


class StorageSettings(BaseModel):
    """Where stage results, stage files and finished videos live beyond this machine."""

    url: str = Field(
        "file://",
        description="file:// (local folders: the work dir and the output root) or "
        "s3://bucket/prefix (S3, MinIO, R2) through prefect-aws.",
    )
    endpoint_url: str | None = Field(
        None, description="An S3-compatible server's address (MinIO, R2); unset: AWS."
    )
    region: str | None = Field(None, description="The bucket's region; unset: boto3's.")
    access_key_id: str | None = Field(None, description="Unset: the AWS credential chain.")
    secret_access_key: SecretStr | None = None
    proxy: bool = Field(
        False,
        description="The facade streams objects through itself instead of redirecting to "
        "a presigned URL (for a bucket browsers cannot reach).",
    )
    block: str = Field(
        "mpt-storage",
        description="Name of the S3Bucket block that Prefect results persist to; made from "
        "these settings (or saved in the Prefect UI under this name with `keep_block`).",
    )
    keep_block: bool = Field(
        False, description="Use the saved block as it is instead of saving these settings."
    )
    timeout_s: float = Field(30, gt=0, description="Connect and read timeout per request.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not (value.startswith("file://") or value.startswith("s3://")) or value == "s3://":
            raise ValueError("storage URL must be file://... or s3://bucket/prefix")
        return value


class UpscaleSettings(BaseModel):
    """Neural upscaling of small materials (VideoSpec `upscale`)."""

    weights_dir: Path = Field(
        default=Path("models/upscale"),
        description="Folder of upscaler weights (.pth, .safetensors); nothing is downloaded.",
    )
    require_gpu: bool = Field(
        False, description="Refuse to upscale on the CPU instead of falling back to it."
    )
    pool: str = Field(
        "gpu",
        description="Work pool whose online worker upscales (deployment upscale/upscale); "
        "empty: always in-process.",
    )
    timeout_s: float = Field(
        3600, gt=0, description="How long a video waits for the gpu pool's upscale run."
    )
    batch: int = Field(0, ge=0, le=64, description="Frames per batch on the GPU; 0: by memory.")
    tile: int | None = Field(
        None,
        ge=64,
        description="Cut frames into tiles this wide; unset: only when they do not fit the device.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MPT_",
        env_nested_delimiter="__",
        extra="ignore",
        toml_file=os.environ.get("MPT_CONFIG_FILE", "mpt.toml"),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the optional TOML file (MPT_CONFIG_FILE, or ./mpt.toml).
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    llm: Chain = Field(default_factory=Chain, description="MPT_LLM__PROVIDERS=openai,ollama")
    openai: OpenAIProvider = Field(default_factory=OpenAIProvider)
    azure: AzureProvider = Field(default_factory=AzureProvider)
    gemini: GeminiProvider = Field(default_factory=GeminiProvider)
    ollama: OllamaProvider = Field(default_factory=OllamaProvider)
    deepseek: DeepSeekProvider = Field(default_factory=DeepSeekProvider)
    moonshot: MoonshotProvider = Field(default_factory=MoonshotProvider)
    qwen: QwenProvider = Field(default_factory=QwenProvider)
    compatible: Provider = Field(
        default_factory=Provider, description="Any OpenAI-compatible endpoint: base URL + model."
    )
    materials: Chain = Field(
        default_factory=lambda: Chain(providers=["local"]),
        description="MPT_MATERIALS__PROVIDERS=pexels,pixabay,local: where footage comes from, "
        "in order; procedural backgrounds always fill what is left.",
    )
    pexels: PexelsProvider = Field(default_factory=PexelsProvider)
    pixabay: PixabayProvider = Field(default_factory=PixabayProvider)
    redis_url: str | None = Field(None, description="Search-response cache; none: in-process.")
    search_ttl_s: int = Field(24 * 3600, ge=0, description="How long a search stays cached.")
    download_max_mb: float = Field(300, gt=0, description="A larger file is refused.")
    download_concurrency: int = Field(4, ge=1, le=16)
    download_timeout_s: float = Field(60, gt=0, description="Connect/read timeout per request.")
    max_stock_clips: int = Field(
        40,
        ge=1,
        le=200,
        description="Stock clips downloaded per video at most (each scene's best first).",
    )
    azure_speech: AzureSpeechProvider = Field(default_factory=AzureSpeechProvider)
    openai_tts_model: str = "gpt-4o-mini-tts"
    sovits: SoVITSProvider = Field(default_factory=SoVITSProvider)
    tts_fallback_voice: str | None = Field(
        "piper:en_US-joe-medium",
        description="Offline voice used when a network voice fails; empty: fail instead.",
    )
    llm_attempts: int = Field(
        3, ge=1, le=10, description="Tries per LLM provider on transient faults or bad output."
    )

    database_url: str | None = Field(
        None,
        description="PostgreSQL for the service's catalog (and Prefect's server under "
        "`make stack`); unset, runs report to no catalog.",
    )
    api: ApiSettings = Field(default_factory=ApiSettings)
    upscale: UpscaleSettings = Field(default_factory=UpscaleSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)

    work_dir: Path = Field(
        default_factory=_default_work_dir,
        description="Stage outputs and cached task results live here.",
    )
    output_root: Path = Field(
        default=Path("output"), description="Finished videos are published under this folder."
    )
    uploads_dir: Path = Field(
        default=Path("uploads"),
        description="Files users upload (music, footage, narration), a folder per owner; "
        "requests may name files in it.",
    )
    public_api_url: str | None = Field(
        None,
        description="The facade's address as browsers and agents reach it (signed URLs are "
        "absolute with it), e.g. https://videos.example.com.",
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
    review_timeout_h: float = Field(
        default=168,
        gt=0,
        description="A video awaiting review this long without a decision expires.",
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


# Our module loggers: each stage logs what it did at INFO (choices, files, timings, fallbacks).
LOGGERS = ("tasks", "blocks", "flows")


def export_prefect_defaults() -> None:
    """Prefect settings that must be in the environment before Prefect is imported: results
    in our work dir, and our loggers' records sent to the run's logs (the UI's Logs tab),
    unless the environment says otherwise."""
    # Telemetry off: it writes to the ephemeral server's SQLite at start-up and races it.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    extra = [n for n in os.environ.get("PREFECT_LOGGING_EXTRA_LOGGERS", "").split(",") if n]
    os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = ",".join(dict.fromkeys([*extra, *LOGGERS]))
    # Engines also run outside any flow run (benchmarks, the API's checks): no warning then.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    os.environ.setdefault(
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(Settings().results_dir.expanduser())
    )
