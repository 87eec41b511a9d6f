"""Where finished files and stage files live beyond this machine: local folders (the default)
or an S3-compatible bucket (AWS S3, MinIO, R2) through prefect-aws.

With `MPT_STORAGE__URL=s3://bucket/prefix`:
- every stage's Prefect result persists in the bucket (`result_block`), so a worker on any
  machine finds a stage another one finished;
- a stage's output files are uploaded beside it (`work/<path under the work dir>`), and a
  worker that gets a cached result whose files it lacks fetches them (`fetch_work_file`);
- publish uploads the finished files under `<prefix>/<path under the output root>`
  (`<task_id>/video.mp4`), which is what the catalog and the manifest name;
- the facade answers a file with a presigned URL (or streams it through).

Faults: an unreachable server, a timeout or a 5xx is a TransientError (the stage retries it
with backoff); refused credentials or a missing bucket fail at once, in one line naming
storage. Objects appear whole or not at all (S3 PUT and multipart completion are atomic), so
the catalog never names half an upload.
"""

from __future__ import annotations

import logging
import mimetypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from blocks.errors import StageError, TransientError
from blocks.settings import StorageSettings, get_settings

log = logging.getLogger(__name__)

# Subtitle types Python's table lacks: the facade and the objects' Content-Type agree.
mimetypes.add_type("application/x-subrip", ".srt")
mimetypes.add_type("text/x-ssa", ".ass")
MULTIPART_MB = 16  # larger files go up in parts of this size, several at once


class StorageError(StageError):
    """Storage refused us for a reason that retrying will not change."""


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))


def parse_url(url: str) -> Location | None:
    """`s3://bucket/prefix` → Location; `file://…` (or empty) → None: local folders."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return None
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"storage URL must be file://… or s3://bucket/prefix, not {url!r}")
    return Location(bucket=parsed.netloc, prefix=parsed.path.strip("/"))


def location() -> Location | None:
    return parse_url(get_settings().storage.url)


def enabled() -> bool:
    return location() is not None


def safe_key(relative: str) -> str | None:
    """A relative object path with the facade's traversal rules: no absolute paths, no `..`
    or `.`, no backslashes or NUL; None when it breaks one."""
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part in ("..", ".", "") for part in pure.parts):
        return None
    return str(pure)


# --- the client ----------------------------------------------------------------------------


def credentials(cfg: StorageSettings) -> Any:
    """prefect-aws credentials from the settings; without keys, boto3's own chain (the AWS
    environment, profiles, instance roles)."""
    from prefect_aws import AwsClientParameters, AwsCredentials

    params: dict[str, Any] = {}
    if cfg.endpoint_url:
        params["endpoint_url"] = cfg.endpoint_url
    params["config"] = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path" if cfg.endpoint_url else "auto"},
        "retries": {"max_attempts": 2, "mode": "standard"},
        "connect_timeout": cfg.timeout_s,
        "read_timeout": cfg.timeout_s,
    }
    return AwsCredentials(
        aws_access_key_id=cfg.access_key_id,
        aws_secret_access_key=cfg.secret_access_key,
        region_name=cfg.region,
        aws_client_parameters=AwsClientParameters(**params),
    )


_clients: dict[int, Any] = {}
_lock = threading.Lock()


def client() -> Any:
    """One boto3 S3 client per process (they are thread-safe)."""
    cfg = get_settings().storage
    key = hash((cfg.url, cfg.endpoint_url, cfg.region, cfg.access_key_id))
    with _lock:
        if key not in _clients:
            _clients[key] = credentials(cfg).get_s3_client()
        return _clients[key]


def result_storage() -> str | None:
    """What stages and flows give Prefect as `result_storage`: the saved S3Bucket block's
    slug (Prefect refuses an unsaved one), or None for local results."""
    if location() is None:
        return None
    return f"s3-bucket/{get_settings().storage.block}"


_saved: dict[tuple, str | None] = {}


def ensure_result_block() -> str | None:
    """Save the S3Bucket block results go to, from the settings (once per process, server
    and settings); what starts runs calls this before them: `mpt make`, `mpt batch`, the
    stack's set-up (`python -m deployments.setup`)."""
    loc = location()
    if loc is None:
        return None
    from prefect.settings import get_current_settings
    from prefect_aws import S3Bucket

    cfg = get_settings().storage
    secret = cfg.secret_access_key.get_secret_value() if cfg.secret_access_key else None
    key = (cfg.url, cfg.endpoint_url, cfg.region, cfg.access_key_id, secret, cfg.block)
    key += (cfg.keep_block, str(get_current_settings().api.url))
    if key not in _saved:
        if cfg.keep_block:
            S3Bucket.load(cfg.block)  # it must exist: fail here, in one line, if it does not
        else:
            S3Bucket(
                bucket_name=loc.bucket,
                bucket_folder=loc.key("results"),
                credentials=credentials(cfg),
            ).save(cfg.block, overwrite=True)
        _saved[key] = result_storage()
    return _saved[key]


def classify(exc: BaseException, what: str) -> Exception:
    """A storage fault as ours: transient (retried) or not (one line, at once)."""
    from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    # Managed transfers wrap the client's error: classify the one underneath.
    if isinstance(exc, S3UploadFailedError | S3TransferFailedError) and exc.__context__:
        exc = exc.__context__
    if isinstance(exc, NoCredentialsError):
        return StorageError(f"storage: no credentials for {what} (MPT_STORAGE__ACCESS_KEY_ID)")
    if isinstance(exc, EndpointConnectionError | ConnectionError | ReadTimeoutError):
        return TransientError(f"storage unreachable during {what}: {exc}")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError"):
            return TransientError(f"storage answered {status} {code} during {what}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StorageError(f"storage refused the credentials ({code}) during {what}")
        if code in ("NoSuchBucket",):
            return StorageError(f"storage: no bucket {err.get('BucketName', '')} ({what})")
        return StorageError(f"storage: {code or status} during {what}")
    if isinstance(exc, BotoCoreError):
        return TransientError(f"storage fault during {what}: {exc}")
    return exc if isinstance(exc, Exception) else StageError(str(exc))


def media_type(path: Path | str) -> str:
    """A published file's Content-Type, by its name."""
    return mimetypes.guess_type(Path(path).name)[0] or "application/octet-stream"


def upload(path: Path, key: str, content_type: str | None = None) -> None:
    """One file up; above MULTIPART_MB in parts, several at once. The object appears only
    when the whole file is there."""
    from boto3.s3.transfer import TransferConfig

    loc = location()
    assert loc is not None
    extra = {"ContentType": content_type} if content_type else {}
    config = TransferConfig(
        multipart_threshold=MULTIPART_MB << 20, multipart_chunksize=MULTIPART_MB << 20
    )
    try:
        client().upload_file(str(path), loc.bucket, key, ExtraArgs=extra, Config=config)
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify(exc, f"upload of {path.name}") from None


def download(key: str, dest: Path) -> bool:
    """One object into `dest` (the caller's temporary name); False when there is no such
    object."""
    from botocore.exceptions import ClientError

    loc = location()
    assert loc is not None
    try:
        client().download_file(loc.bucket, key, str(dest))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise classify(exc, f"download of {key}") from None
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify(exc, f"download of {key}") from None
    return True


def head(key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    loc = location()
    assert loc is not None
    try:
        return client().head_object(Bucket=loc.bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise classify(exc, f"reading {key}") from None
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify(exc, f"reading {key}") from None


def presign(
    key: str, ttl_s: int, filename: str | None = None, media_type: str | None = None
) -> str:
    """A URL the object store itself answers (Range included) until it expires."""
    loc = location()
    assert loc is not None
    params: dict[str, Any] = {"Bucket": loc.bucket, "Key": key}
    if filename:
        params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
    if media_type:
        params["ResponseContentType"] = media_type
    return client().generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_s)


def iter_object(key: str, byte_range: str | None = None) -> tuple[dict[str, Any], Iterator[bytes]]:
    """The object's headers and its body in chunks (for streaming through the facade)."""
    loc = location()
    assert loc is not None
    args: dict[str, Any] = {"Bucket": loc.bucket, "Key": key}
    if byte_range:
        args["Range"] = byte_range
    try:
        obj = client().get_object(**args)
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify(exc, f"reading {key}") from None
    return obj, obj["Body"].iter_chunks(1 << 20)


# --- work files ------------------------------------------------------------------------------


def work_key(path: Path) -> str | None:
    """The object key of a file under the work dir (None for a file outside it)."""
    loc = location()
    work = get_settings().work_dir.resolve()
    try:
        relative = path.resolve().relative_to(work)
    except ValueError:
        return None
    return loc.key("work", relative.as_posix()) if loc else None


def output_key(path: Path) -> str | None:
    """The object key of a published file: its path under the output root."""
    loc = location()
    root = get_settings().output_root.resolve()
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        return None
    return loc.key(relative.as_posix()) if loc else None


def upload_work_files(paths: list[Path]) -> int:
    """Upload a stage's files (those not there yet); returns how many went up."""
    sent = 0
    for path in paths:
        key = work_key(path)
        if key is None or not path.is_file():
            continue
        try:
            info = head(key)
        except StorageError:  # without s3:ListBucket a missing key answers 403: upload it
            info = None
        if info is not None and info.get("ContentLength") == path.stat().st_size:
            continue
        upload(path, key)
        sent += 1
    return sent


def url_of(key: str) -> str:
    loc = location()
    assert loc is not None
    return f"s3://{loc.bucket}/{key}"
