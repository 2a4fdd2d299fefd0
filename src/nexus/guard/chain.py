"""The tamper-evident audit chain, pure: canonical entries, their hashes, signed checkpoints, verification.

Each entry is hashed as ``sha256(canonical JSON of {seq, ts, actor, action, subject, payload, prev_hash})``,
and ``prev_hash`` is the hash of the entry before (``GENESIS`` for the first), so editing, deleting, inserting or
reordering an entry breaks a link. Anyone can recompute a SHA-256 chain, so a *checkpoint* (after the signed tree
heads of RFC 6962, Certificate Transparency) fixes the head: an HMAC-SHA256 with the facility's secret key over
``{size, head_hash, ts}``. An entry before the last checkpoint cannot be changed, and the tail cannot be cut below
it, without the key. Storage lives in :mod:`nexus.store.audit`; this module never touches a database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from nexus.core.errors import InvalidInputError

GENESIS = "0" * 64
"""``prev_hash`` of the first entry."""


class EntryLike(Protocol):
    """What the verifier reads of an entry (a database row or a plain object)."""

    seq: int
    ts: datetime
    actor: str
    action: str
    subject: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditRecord:
    """One thing to write to the audit log (before it gets a ``seq`` and a hash).

    Attributes
    ----------
    actor : str
        ``system``, a staff username, ``client:<id>`` or ``break-glass:<username>``.
    action : str
        Dotted verb, e.g. ``decision.click``, ``consent.grant``, ``client.export``.
    subject : str or None
        What it is about: a session id or a client id (pseudonymous ids only, never names).
    payload : dict
        JSON data: inputs, rule and result. Never free text written by the client (journal, intake).
    """

    actor: str
    action: str
    subject: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


_FIELD_MAX = {"actor": 64, "action": 64, "subject": 128}


def check_record(record: AuditRecord) -> AuditRecord:
    """Check the text fields of a record fit their columns, on every database (no NUL, valid UTF-8, length).

    Raises
    ------
    InvalidInputError
        Naming the field and what to change.
    """
    for name, top in _FIELD_MAX.items():
        value = getattr(record, name)
        if value is None and name == "subject":
            continue
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"Audit {name} must be a non-empty string, got {value!r}.")
        if len(value) > top:
            raise InvalidInputError(f"Audit {name} is {len(value)} characters long: shorten it to {top} at most.")
        if "\x00" in value:
            raise InvalidInputError(f"Audit {name} {value!r} contains a NUL character: remove it.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(
                f"Audit {name} {value!r} is not valid Unicode text: remove lone surrogates."
            ) from None
    return record


def _utc(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns: they were written as UTC
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def canonical_ts(ts: datetime) -> str:
    """The timestamp as hashed: UTC ISO 8601 with microseconds."""
    return _utc(ts).isoformat(timespec="microseconds")


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces, UTF-8, no NaN): equal data give equal text."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"Audit payload is not plain JSON ({exc}): pass str, int, finite float, bool, None, lists and dicts."
        ) from None


def normalise_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The payload as it will read back from the database (tuples become lists, keys strings)."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InvalidInputError(f"Audit payload must be a mapping, got {type(payload).__name__}: pass a dict.")
    text = canonical_json(dict(payload))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(
            "Audit payload has text that is not valid Unicode (a lone surrogate): remove it."
        ) from None
    out: dict[str, Any] = json.loads(text)
    return out


def entry_hash(
    seq: int, ts: datetime, actor: str, action: str, subject: str | None, payload: Mapping[str, Any], prev_hash: str
) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry, including the hash of the entry before it."""
    doc = {
        "seq": int(seq),
        "ts": canonical_ts(ts),
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def key_id(key: str) -> str:
    """A short public name of a signing key (first 16 hex digits of its SHA-256): shows which key signed."""
    return hashlib.sha256(b"nexus-audit-key:" + key.encode("utf-8")).hexdigest()[:16]


def checkpoint_message(size: int, head_hash: str, ts: datetime) -> bytes:
    """The bytes a checkpoint signs."""
    return canonical_json({"size": int(size), "head_hash": head_hash, "ts": canonical_ts(ts)}).encode("utf-8")


def sign_checkpoint(key: str, size: int, head_hash: str, ts: datetime) -> str:
    """HMAC-SHA256 (hex) of a checkpoint with ``key`` (the facility's ``NEXUS_SECRET_KEY``)."""
    if not key:
        raise InvalidInputError("No signing key for audit checkpoints: set NEXUS_SECRET_KEY.")
    return hmac.new(key.encode("utf-8"), checkpoint_message(size, head_hash, ts), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """A signed head of the chain: ``size`` entries, the last one hashing to ``head_hash``."""

    size: int
    head_hash: str
    ts: datetime
    key_id: str
    signature: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _utc(self.ts))

    def to_dict(self) -> dict[str, Any]:
        """JSON form, to keep outside the database (a copy the database's owner cannot rewrite)."""
        return {"size": self.size, "head_hash": self.head_hash, "ts": canonical_ts(self.ts),
                "key_id": self.key_id, "signature": self.signature}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checkpoint:
        """Read :meth:`to_dict`'s form back."""
        try:
            return cls(size=int(d["size"]), head_hash=str(d["head_hash"]), ts=datetime.fromisoformat(str(d["ts"])),
                       key_id=str(d["key_id"]), signature=str(d["signature"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"Not an audit checkpoint ({exc!r}): expected the JSON written by 'nexus audit checkpoint'."
            ) from None

    def valid(self, key: str) -> bool:
        """Whether the signature is right for ``key``."""
        return hmac.compare_digest(self.signature, sign_checkpoint(key, self.size, self.head_hash, self.ts))


@dataclass
class VerifyReport:
    """Result of :func:`verify_chain`.

    Attributes
    ----------
    ok : bool
        No problem found.
    entries : int
        Entries read.
    head_seq, head_hash : int, str
        The last entry read (0 and ``GENESIS`` for an empty log).
    first_bad_seq : int or None
        The first entry found bad (missing, edited, out of place), or the checkpoint's size for a cut tail.
    problem : str or None
        What is wrong, in one sentence.
    checkpoints : int
        Checkpoints checked.
    unsigned_tail : int
        Entries after the last valid checkpoint (their integrity rests on the hashes alone).
    """

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints: int = 0
    unsigned_tail: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``nexus audit verify --json``)."""
        return {"ok": self.ok, "entries": self.entries, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "first_bad_seq": self.first_bad_seq, "problem": self.problem, "checkpoints": self.checkpoints,
                "unsigned_tail": self.unsigned_tail}

    def summary(self) -> str:
        """One line for people."""
        if self.ok:
            return (f"Audit chain OK: {self.entries} entries, head {self.head_seq} ({self.head_hash[:12]}…), "
                    f"{self.checkpoints} signed checkpoint(s), {self.unsigned_tail} entries after the last one.")
        return f"Audit chain BROKEN at entry {self.first_bad_seq}: {self.problem}"


def verify_chain(
    entries: Iterable[EntryLike],
    checkpoints: Iterable[Checkpoint] = (),
    *,
    key: str | None = None,
    head: tuple[int, str] | None = None,
) -> VerifyReport:
    """Check every link of the chain, then each checkpoint; stop at the first problem.

    Parameters
    ----------
    entries : iterable
        Entries in ``seq`` order (as the database returns them with ``ORDER BY seq``).
    checkpoints : iterable of Checkpoint
        Signed heads to check the chain against (from the database, or kept elsewhere).
    key : str or None
        The signing key; without it, checkpoint signatures are not checked (only their hashes).
    head : (seq, hash) or None
        The recorded head of the chain (``audit_head``); a head beyond the last entry means a cut tail.

    Notes
    -----
    Problems found, in the order they are looked for, per entry: a ``seq`` gap (entries deleted), a ``prev_hash``
    that is not the hash of the entry before (inserted or reordered), a hash that does not match the content
    (edited). Then for each checkpoint: a bad signature (forged, or another key), fewer entries than it signed
    (tail cut), or a different hash at its size (rewritten).
    """
    prev_seq, prev_hash, n = 0, GENESIS, 0
    hashes_at: dict[int, str] = {}
    cps = sorted(checkpoints, key=lambda c: c.size)
    wanted = {c.size for c in cps}

    def bad(seq: int | None, problem: str) -> VerifyReport:
        return VerifyReport(False, n, prev_seq, prev_hash, seq, problem)

    for e in entries:
        n += 1
        if e.seq != prev_seq + 1:
            if e.seq > prev_seq + 1:
                gap = f"{prev_seq + 1}" if e.seq == prev_seq + 2 else f"{prev_seq + 1}–{e.seq - 1}"
                return bad(prev_seq + 1, f"entry {gap} is missing (deleted); entry {e.seq} follows entry {prev_seq}.")
            return bad(e.seq, f"entry {e.seq} is out of order after entry {prev_seq}.")
        if e.prev_hash != prev_hash:
            return bad(e.seq, f"entry {e.seq} does not link to entry {prev_seq} (inserted, reordered or rewritten).")
        h = entry_hash(e.seq, e.ts, e.actor, e.action, e.subject, e.payload, e.prev_hash)
        if h != e.hash:
            return bad(e.seq, f"entry {e.seq} ({e.action} by {e.actor}) was edited: its hash does not match it.")
        prev_seq, prev_hash = e.seq, e.hash
        if e.seq in wanted:
            hashes_at[e.seq] = e.hash

    signed_to = 0
    for cp in cps:
        if key is not None and not cp.valid(key):
            return bad(cp.size, f"checkpoint at size {cp.size} has a bad signature (forged, or signed with another "
                                f"key than NEXUS_SECRET_KEY: key id {cp.key_id}, expected {key_id(key)}).")
        if cp.size > prev_seq:
            return bad(cp.size, f"the log was cut: a signed checkpoint covers {cp.size} entries, "
                                f"the log ends at entry {prev_seq}.")
        if cp.size > 0 and hashes_at.get(cp.size) != cp.head_hash:
            return bad(cp.size, f"entry {cp.size} differs from the signed checkpoint (the chain was rewritten).")
        signed_to = max(signed_to, cp.size)
    if head is not None and head[0] > prev_seq:
        return bad(prev_seq + 1, f"the log was cut: its head says {head[0]} entries, the log ends at {prev_seq}.")
    if head is not None and head[0] == prev_seq and head[1] != prev_hash:
        return bad(prev_seq, f"entry {prev_seq} does not match the recorded head of the chain.")
    return VerifyReport(True, n, prev_seq, prev_hash, checkpoints=len(cps), unsigned_tail=prev_seq - signed_to)
