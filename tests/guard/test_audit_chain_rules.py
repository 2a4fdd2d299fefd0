"""The audit chain's pure rules pinned by hand: the exact hashed document, the verifier's verdicts and wording."""

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nexus.core.errors import InvalidInputError
from nexus.guard.chain import (
    GENESIS,
    AuditRecord,
    Checkpoint,
    VerifyReport,
    _utc,
    canonical_json,
    check_record,
    entry_hash,
    normalise_payload,
    verify_chain,
)

TS = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)


class _E:
    def __init__(self, seq, prev, action="decision.click", payload=None):
        self.seq, self.ts, self.actor, self.action, self.subject = seq, TS, "system", action, "sess-1"
        self.payload, self.prev_hash = payload or {"i": seq}, prev
        self.hash = entry_hash(seq, self.ts, self.actor, self.action, self.subject, self.payload, prev)


def _chain(n):
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        out.append(_E(seq, prev))
        prev = out[-1].hash
    return out


def test_entry_hash_is_the_sha256_of_the_documented_canonical_json():
    # written out by hand: sorted keys, no spaces, UTC microseconds
    doc = ('{"action":"decision.click","actor":"system","payload":{"a":[1,2.5,null],"b":"é"},'
           f'"prev_hash":"{GENESIS}","seq":3,"subject":"sess-1","ts":"2026-03-04T05:06:07.000089+00:00"}}')
    want = hashlib.sha256(doc.encode("utf-8")).hexdigest()
    got = entry_hash(3, TS, "system", "decision.click", "sess-1", {"b": "é", "a": [1, 2.5, None]}, GENESIS)
    assert got == want
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'


def test_timestamps_in_another_zone_are_hashed_as_utc(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # a local zone that is not UTC
    time.tzset()
    try:
        local = TS.astimezone(timezone(timedelta(hours=2)))
        assert _utc(local).tzinfo == UTC and _utc(local) == TS
        assert entry_hash(1, local, "a", "b", None, {}, GENESIS) == entry_hash(1, TS, "a", "b", None, {}, GENESIS)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_records_and_payloads_are_checked_with_the_field_named():
    assert check_record(AuditRecord("system", "a.b", None)).subject is None  # no subject is fine
    with pytest.raises(InvalidInputError, match=r"Audit subject .*valid Unicode"):
        check_record(AuditRecord("system", "a.b", "x\ud800"))
    with pytest.raises(InvalidInputError, match=r"Audit action .*valid Unicode text: remove lone surrogates"):
        check_record(AuditRecord("system", "a\ud800"))
    with pytest.raises(InvalidInputError, match="must be a mapping, got list"):
        normalise_payload([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"Not an audit checkpoint .*nexus audit checkpoint"):
        Checkpoint.from_dict({"size": 1})


def test_gaps_name_the_missing_entries():
    c = _chain(6)
    one = verify_chain([c[0], c[2]])
    assert (one.ok, one.first_bad_seq) == (False, 2)
    assert one.problem == "entry 2 is missing (deleted); entry 3 follows entry 1."
    many = verify_chain([c[0], c[4]])
    assert many.first_bad_seq == 2
    assert many.problem == "entry 2–4 is missing (deleted); entry 5 follows entry 1."


def test_an_entry_out_of_order_is_named():
    c = _chain(3)
    r = verify_chain([c[0], c[1], c[0]])
    assert (r.ok, r.first_bad_seq, r.head_seq, r.entries) == (False, 1, 2, 3)
    assert r.problem == "entry 1 is out of order after entry 2."
    dup = verify_chain([c[0], c[1], c[1]])  # an entry copied: its seq repeats, nothing is missing
    assert (dup.ok, dup.first_bad_seq) == (False, 2)
    assert dup.problem == "entry 2 is out of order after entry 2."


def test_a_cut_or_rewritten_head_is_found():
    c = _chain(4)
    cut = verify_chain(c[:3], head=(4, c[3].hash))
    assert (cut.ok, cut.first_bad_seq) == (False, 4)
    assert cut.problem == "the log was cut: its head says 4 entries, the log ends at 3."
    other = verify_chain(c, head=(4, "f" * 64))
    assert (other.ok, other.first_bad_seq) == (False, 4)
    assert other.problem == "entry 4 does not match the recorded head of the chain."
    assert verify_chain(c, head=(4, c[3].hash)).ok


def test_report_forms():
    c = _chain(2)
    r = verify_chain(c)
    assert r.to_dict() == {"ok": True, "entries": 2, "head_seq": 2, "head_hash": c[1].hash, "first_bad_seq": None,
                           "problem": None, "checkpoints": 0, "unsigned_tail": 2}
    json.dumps(r.to_dict())
    assert r.summary() == (f"Audit chain OK: 2 entries, head 2 ({c[1].hash[:12]}…), 0 signed checkpoint(s), "
                           "2 entries after the last one.")
    bad = VerifyReport(False, 3, 2, "ab", 3, "entry 3 was edited.")
    assert bad.summary() == "Audit chain BROKEN at entry 3: entry 3 was edited."
