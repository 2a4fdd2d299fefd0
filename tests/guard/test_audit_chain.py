"""The audit chain: append, verify, and every kind of tampering done directly in the database."""

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from nexus.core.errors import InvalidInputError
from nexus.guard.chain import GENESIS, AuditRecord, Checkpoint, entry_hash, verify_chain
from nexus.store.audit import append, append_many, checkpoint, count, decision_records, entries, verify
from nexus.store.models import AuditCheckpoint, AuditEntry

KEY = "k" * 40


def _fill(store, n=6):
    with store.session() as s:
        append_many(s, [AuditRecord("system", f"decision.click{i}", "sess-1", {"i": i, "x": [1.5, None]})
                        for i in range(1, n + 1)])


def _sql(store, stmt, **params):
    with store.engine.begin() as c:
        c.execute(text(stmt), params)


def test_append_links_and_verifies(store):
    _fill(store, 5)
    with store.session() as s:
        assert append(s, "tess", "client.read", "c1", {"why": "prep"}) == 6
        rows = entries(s)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    rep = verify(store, KEY)
    assert rep.ok, rep.problem
    assert (rep.entries, rep.head_seq, rep.head_hash) == (6, 6, rows[-1].hash)
    assert rep.unsigned_tail == 6


def test_entry_in_a_rolled_back_transaction_leaves_no_trace(store):
    _fill(store, 2)
    def failing_change():
        with store.session() as s:
            append(s, "system", "decision.click", "sess-1")
            raise RuntimeError("the change it records failed")

    with pytest.raises(RuntimeError):
        failing_change()
    with store.session() as s:
        assert append(s, "system", "decision.scene", "sess-1") == 3
    assert verify(store, KEY).ok


def test_payload_must_be_plain_json(store):
    with pytest.raises(InvalidInputError, match="not plain JSON"), store.session() as s:
        append(s, "system", "x", None, {"bad": float("nan")})
    with pytest.raises(InvalidInputError, match="has no actor"), store.session() as s:
        append_many(s, [{"action": "x"}])
    with pytest.raises(InvalidInputError, match=r"actor .* contains a NUL"), store.session() as s:
        append(s, "a\x00b", "x")  # PostgreSQL refuses NUL in text: refused the same way everywhere
    with pytest.raises(InvalidInputError, match="not valid Unicode"), store.session() as s:
        append(s, "a", "x", None, {"k": "\ud800"})
    with pytest.raises(InvalidInputError, match="shorten it to 64"), store.session() as s:
        append(s, "a" * 65, "x")
    with store.session() as s:
        assert count(s) == 0


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "match"),
    [
        ("UPDATE audit_entries SET payload = '{\"i\": 99, \"x\": [1.5, null]}' WHERE seq = 3", 3, "edited"),
        ("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 4", 4, "edited"),
        ("UPDATE audit_entries SET ts = '2001-01-01 00:00:00' WHERE seq = 2", 2, "edited"),
        ("DELETE FROM audit_entries WHERE seq = 3", 3, "missing"),
        ("DELETE FROM audit_entries WHERE seq IN (2, 3)", 2, "missing"),
        ("DELETE FROM audit_entries WHERE seq = 1", 1, "missing"),
    ],
    ids=["edit-payload", "edit-actor", "edit-time", "delete-one", "delete-two", "delete-first"],
)
def test_tampering_is_found_and_named(store, tamper, bad_seq, match):
    _fill(store, 6)
    _sql(store, tamper)
    rep = verify(store, KEY)
    assert not rep.ok
    assert rep.first_bad_seq == bad_seq
    assert match in rep.problem
    assert f"entry {bad_seq}" in rep.summary()


def test_reordering_is_found(store):
    _fill(store, 5)
    # swap entries 2 and 3 (renumbering them, as a reordering in place does)
    _sql(store, "UPDATE audit_entries SET seq = 100 WHERE seq = 2")
    _sql(store, "UPDATE audit_entries SET seq = 2 WHERE seq = 3")
    _sql(store, "UPDATE audit_entries SET seq = 3 WHERE seq = 100")
    rep = verify(store, KEY)
    assert not rep.ok and rep.first_bad_seq == 2


def test_insertion_with_recomputed_hashes_is_found_by_the_checkpoint(store):
    """An attacker who rehashes the whole chain after an insertion still cannot match the signed head."""
    _fill(store, 4)
    with store.session() as s:
        checkpoint(s, KEY)
    with store.session() as s:
        rows = entries(s)
        docs = [(r.ts, r.actor, r.action, r.subject, r.payload) for r in rows]
        docs.insert(2, (rows[1].ts, "system", "decision.forged", "sess-1", {}))
        s.execute(text("DELETE FROM audit_entries"))
        s.expunge_all()
        prev = GENESIS
        for i, (ts, actor, action, subject, payload) in enumerate(docs, 1):
            h = entry_hash(i, ts, actor, action, subject, payload, prev)
            s.add(AuditEntry(seq=i, ts=ts, actor=actor, action=action, subject=subject, payload=payload,
                             prev_hash=prev, hash=h))
            prev = h
    rep = verify(store, KEY)
    assert not rep.ok
    assert rep.first_bad_seq == 4 and "checkpoint" in rep.problem


def test_inserted_row_without_rehash_is_found(store):
    _fill(store, 3)
    _sql(store, "UPDATE audit_entries SET seq = seq + 10")
    _sql(store, "UPDATE audit_entries SET seq = seq - 9")
    row = dict(seq=1, ts=datetime.now(UTC), actor="mallory", action="decision.forged", subject=None,
               payload={}, prev_hash=GENESIS)
    row["hash"] = entry_hash(**row)
    with store.session() as s:
        s.add(AuditEntry(**row))
    rep = verify(store, KEY)
    # the forged first entry is self-consistent, but the old first entry no longer links to it
    assert not rep.ok
    assert rep.first_bad_seq == 2
    assert "does not link" in rep.problem


def test_truncated_tail_is_found(store):
    _fill(store, 6)
    with store.session() as s:
        checkpoint(s, KEY)
    _sql(store, "DELETE FROM audit_entries WHERE seq >= 5")
    rep = verify(store, KEY)
    assert not rep.ok and "cut" in rep.problem
    assert rep.first_bad_seq == 6


def test_truncation_found_by_head_even_before_any_checkpoint(store):
    _fill(store, 6)
    _sql(store, "DELETE FROM audit_entries WHERE seq = 6")
    rep = verify(store, KEY)
    assert not rep.ok and rep.first_bad_seq == 6 and "cut" in rep.problem


def test_truncation_with_head_and_checkpoints_also_removed_is_found_by_an_outside_checkpoint(store):
    _fill(store, 6)
    with store.session() as s:
        kept = Checkpoint.from_dict(checkpoint(s, KEY).to_dict())  # a copy kept outside the database
    _sql(store, "DELETE FROM audit_entries WHERE seq >= 4")
    _sql(store, "DELETE FROM audit_checkpoints")
    _sql(store, "DELETE FROM audit_head")
    assert verify(store, KEY).ok  # nothing in the database can tell ...
    rep = verify(store, KEY, [kept])  # ... the signed copy can
    assert not rep.ok and rep.first_bad_seq == 6


def test_forged_checkpoint_is_found(store):
    _fill(store, 3)
    with store.session() as s:
        checkpoint(s, KEY)
        s.execute(text("UPDATE audit_checkpoints SET size = 2"))
    rep = verify(store, KEY)
    assert not rep.ok and "bad signature" in rep.problem and rep.first_bad_seq == 2


def test_checkpoint_signed_with_another_key_is_refused(store):
    _fill(store, 3)
    with store.session() as s:
        checkpoint(s, KEY)
    assert verify(store, KEY).ok
    assert verify(store, "another key, quite long enough!!").problem.startswith("checkpoint at size 3 has a bad")


def test_checkpoint_is_idempotent_and_chain_continues(store):
    _fill(store, 2)
    with store.session() as s:
        a = checkpoint(s, KEY)
        b = checkpoint(s, KEY)
    assert a == b
    _fill(store, 2)
    with store.session() as s:
        c = checkpoint(s, KEY)
        assert s.scalars(select(AuditCheckpoint.size).order_by(AuditCheckpoint.size)).all() == [2, 4]
    assert c.size == 4 and c.valid(KEY) and not c.valid("x" * 40)
    rep = verify(store, KEY)
    assert rep.ok and rep.checkpoints == 2 and rep.unsigned_tail == 0


def test_concurrent_appends_get_unique_consecutive_seq(store):
    errors = []

    def writer(w):
        try:
            for i in range(15):
                with store.session() as s:
                    append(s, f"writer{w}", "decision.click", "sess", {"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.session() as s:
        assert count(s) == 60
        assert [e.seq for e in entries(s)] == list(range(1, 61))
    assert verify(store, KEY).ok


def test_decision_records_carry_inputs_and_rule(store):
    decisions = [{"t": 12.5, "session": 0, "kind": "click", "command": {"t": 12.55, "kind": "click", "level_db": -30},
                  "inputs": {"phase_deg": 1.2, "p_n3": 0.9}, "reason": "CLAS: up-state predicted"}]
    with store.session() as s:
        append_many(s, decision_records("sess-9", decisions))
        (e,) = entries(s, subjects=["sess-9"])
    assert e.action == "decision.click" and e.actor == "system"
    assert e.payload["inputs"] == {"phase_deg": 1.2, "p_n3": 0.9}
    assert e.payload["reason"] == "CLAS: up-state predicted"


def test_pure_verifier_on_plain_objects():
    class E:
        def __init__(self, seq, prev):
            self.seq, self.ts = seq, datetime(2026, 1, 1, tzinfo=UTC)
            self.actor, self.action, self.subject = "a", "b", None
            self.payload, self.prev_hash = {}, prev
            self.hash = entry_hash(seq, self.ts, "a", "b", None, {}, prev)

    e1 = E(1, GENESIS)
    e2 = E(2, e1.hash)
    assert verify_chain([e1, e2]).ok
    # naive timestamps (SQLite) are read as UTC
    e2.ts = datetime(2026, 1, 1)
    assert verify_chain([e1, e2]).ok
    e2.ts += timedelta(seconds=1)
    assert verify_chain([e1, e2]).first_bad_seq == 2
