"""Form drafts: the fields of a form whose session ended before it was sent, kept for its account.

One draft per (account, page path); a newer one replaces it. Stored in `form_drafts`:

- the page path only as a keyed blind token (a doctor's draft of a visit would otherwise name the
  patient in plaintext next to the account);
- the fields as JSON sealed with the account sealing of `ehr.services.accounts` (AES-256-GCM
  under the shared data key, associated data binding the account and the page): a blob copied to
  another account's row or another page's row fails to open;
- an absolute expiry (`EHR_FORM_DRAFT_HOURS`, 24): an expired draft is never returned, and expired
  drafts of every account are deleted whenever a new one is kept.

`take` returns a draft once and deletes it; `discard_all` drops an account's drafts (logout).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ehr.crypto.envelope import IntegrityFailure
from ehr.services import accounts
from ehr.store.access import INTERNAL
from ehr.store.runtime import Store
from ehr.store.schema import form_drafts

MAX_FIELDS = 500
MAX_BYTES = 256 * 1024  # of the JSON of the fields: a long visit form is a few kilobytes
_HOUR = 3_600_000_000
log = logging.getLogger("ehr.drafts")


def _path_token(store: Store, account_id: str, path: str) -> bytes:
    return store.blind.token("form-draft.path", f"{account_id}\x1f{path}")


def _purpose(path: str) -> str:
    return f"form-draft|{path}"


def keep(store: Store, account_id: str, path: str, fields: dict[str, str], *, now: int, hours: int) -> bool:
    """Keep `fields` as the account's draft of the page `path` (replacing an older one).
    False (nothing written) when there is nothing to keep or it is too large to be a form."""
    if not fields or len(fields) > MAX_FIELDS:
        return False
    text = json.dumps({"v": 1, "fields": fields}, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_BYTES:
        return False
    token = _path_token(store, account_id, path)
    where = and_(form_drafts.c.account_id == account_id, form_drafts.c.path_hash == token)
    try:
        with store.writing(INTERNAL) as uow:
            key = accounts.shared_key(uow, store.keys)
            uow.execute(delete(form_drafts).where(form_drafts.c.expires_at <= now))
            uow.execute(delete(form_drafts).where(where))
            uow.execute(insert(form_drafts).values(
                account_id=account_id, path_hash=token, key_id=key.key_id,
                blob=accounts.seal(key, account_id, text, _purpose(path)), created_at=now, expires_at=now + hours * _HOUR,
            ))
    except IntegrityError:
        return False  # the same form sent twice at once: the other request kept it
    return True


def take(store: Store, account_id: str, path: str, *, now: int) -> dict[str, str] | None:
    """The account's draft of `path`, deleted as it is returned (once, even to two tabs at once);
    None when there is none or it has expired (an expired one is deleted too)."""
    token = _path_token(store, account_id, path)
    where = and_(form_drafts.c.account_id == account_id, form_drafts.c.path_hash == token)
    with store.reading(INTERNAL) as uow:
        found = uow.execute(select(form_drafts.c.key_id).where(where)).first()
    if found is None:  # the usual case: no write transaction for a page view
        return None
    with store.writing(INTERNAL) as uow:
        row = uow.execute(select(form_drafts).where(where)).mappings().first()
        if row is None or uow.execute(delete(form_drafts).where(where)).rowcount != 1:
            return None  # another request took it first
        if row["expires_at"] <= now:
            return None
        try:
            text = accounts.unseal(store.keys.by_id(uow, row["key_id"]), account_id, row["blob"], _purpose(path))
        except IntegrityFailure:
            log.warning("a form draft failed authentication and was discarded")
            return None  # moved to another account's or page's row, or altered: never shown
    payload: Any = json.loads(text)
    fields = payload.get("fields") if isinstance(payload, dict) else None
    if not isinstance(fields, dict):
        return None
    return {str(k): str(v) for k, v in fields.items()}


def discard_all(store: Store, account_id: str) -> None:
    """Forget every draft of the account (it logged out)."""
    with store.writing(INTERNAL) as uow:
        uow.execute(delete(form_drafts).where(form_drafts.c.account_id == account_id))
