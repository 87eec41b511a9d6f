"""Provider blocks saved on the Prefect server (the UI's Blocks page), named `block:NAME`.

`block:NAME` is the block saved under NAME among the block types of one kind (LLM, voice,
stock footage); `block:TYPE-SLUG/NAME` names its type too, as Prefect's own
`Block.load("slug/name")` does, for a name saved under several types. Every failure is one
line (`BadInput`): no such block, a block of another kind, or no Prefect server to ask.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from prefect.blocks.core import Block

from blocks.errors import BadInput

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

PREFIX = "block:"
B = TypeVar("B", bound=Block)


def is_saved(name: str) -> bool:
    """Whether a provider name refers to a saved block rather than a built-in provider."""
    return name.startswith(PREFIX)


def saved_label(block: Block, default: str) -> str:
    """How reports name a provider: `block:NAME` for a saved block, else `default`."""
    name = block._block_document_name
    return f"{PREFIX}{name}" if name else default


def digest(block: Block) -> str:
    """What a saved block holds (keys show only as "***"), in twelve hex digits: part of the
    cache key of the stages it serves, so editing it in the UI makes them again."""
    fields = json.dumps(block.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(fields.encode()).hexdigest()[:12]


def load_saved(ref: str, types: Sequence[type[B]], kind: str) -> B:
    """The block `ref` (`block:NAME` or `block:TYPE-SLUG/NAME`) names, one of `types`."""
    import httpx
    from prefect.client.orchestration import get_client
    from pydantic import ValidationError

    by_slug = {t.get_block_type_slug(): t for t in types}
    # Prefect's names are lowercase letters, digits and dashes.
    slug, _, name = ref.removeprefix(PREFIX).strip().lower().rpartition("/")
    if not name:
        raise BadInput(f"'{ref}': name a saved {kind} block as block:NAME")
    if slug and slug not in by_slug:
        raise BadInput(f"'{ref}': {slug} is none of the {kind} block types ({', '.join(by_slug)})")
    try:
        with get_client(sync_client=True) as client:
            found = {
                d.block_type.slug: d.block_type.name
                for d in _documents(client, [name], None)
                if d.block_type
            }
            ours = [s for s in found if s in by_slug and (not slug or s == slug)]
            if not ours:
                others = [found[s] for s in found if s not in by_slug]
                if others:
                    names = ", ".join(t.get_block_type_name() for t in types)
                    raise BadInput(
                        f"'{ref}' has block type {others[0]}; {kind} blocks have types: {names}"
                    )
                raise BadInput(_not_found(client, ref, name, list(by_slug), kind))
            if len(ours) > 1:
                raise BadInput(
                    f"'{ref}' is saved as several {kind} block types; name one: "
                    + ", ".join(f"block:{s}/{name}" for s in ours)
                )
        # Prefect's own loader; `_sync` keeps it synchronous when an event loop is running.
        return by_slug[ours[0]].load(name, _sync=True)
    except BadInput:
        raise
    except ValidationError as exc:
        raise BadInput(f"'{ref}' does not fit its block type: {exc.errors()[0]['msg']}") from None
    except ValueError as exc:  # Block.load: deleted meanwhile; get_client: no URL, no ephemeral
        if "Unable to find block document" in str(exc):
            raise BadInput(f"no {kind} block named '{name}' on the Prefect server") from None
        raise BadInput(_no_server(ref, str(exc))) from None
    except httpx.HTTPStatusError as exc:
        raise BadInput(_no_server(ref, f"it answered {exc.response.status_code}")) from None
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        raise BadInput(_no_server(ref, type(exc).__name__)) from None


def _documents(
    client: SyncPrefectClient, names: list[str] | None, slugs: list[str] | None
) -> list[Any]:
    """Saved (non-anonymous) block documents by name and/or block type, without secrets."""
    from prefect.client.schemas.filters import (
        BlockDocumentFilter,
        BlockDocumentFilterName,
        BlockTypeFilter,
        BlockTypeFilterSlug,
    )
    from prefect.client.schemas.objects import BlockDocument

    body: dict[str, Any] = {"include_secrets": False}
    if names is not None:
        query = BlockDocumentFilter(name=BlockDocumentFilterName(any_=names))
        body["block_documents"] = query.model_dump(mode="json")
    if slugs is not None:
        body["block_types"] = BlockTypeFilter(slug=BlockTypeFilterSlug(any_=slugs)).model_dump(
            mode="json"
        )
    # The client has no method that filters by name: Prefect's REST route does.
    reply = client.request("POST", "/block_documents/filter", json=body)
    return BlockDocument.model_validate_list(reply.json())


def _not_found(client: SyncPrefectClient, ref: str, name: str, slugs: list[str], kind: str) -> str:
    saved = sorted({f"block:{d.name}" for d in _documents(client, None, slugs)})
    listing = ", ".join(saved) if saved else "none"
    message = f"no {kind} block named '{name}' ({ref}); saved {kind} blocks: {listing}"
    if not _api_url():
        message += f"; {ref} needs the Prefect server it is saved on: set PREFECT_API_URL"
    return message


def _api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def _no_server(ref: str, why: str) -> str:
    where = _api_url() or "none set"
    return f"{ref} needs the Prefect server it is saved on (PREFECT_API_URL: {where}; {why})"
