"""Events per bed read back from a simulation's journal: both spellings of a record, and old NaN lines."""

import json

from nexus.facility.simulate import _events_by_bed


def test_events_per_bed_count_compact_spaced_and_nan_lines(tmp_path):
    journal = tmp_path / "journal"
    journal.mkdir()
    lines = [
        # compact (orjson) lines, as written now: a grouped record counts its onsets
        b'{"kind":"event","session":"b\xc3\xa9d-1","description":"r_peak","onset":[1.0,2.0,3.0]}',
        b'{"kind":"event","session":"b\xc3\xa9d-1","description":"arousal","onset":4.0}',
        # a spaced json.dumps line of an older journal, with a bare NaN (not strict JSON)
        json.dumps({"kind": "event", "session": "bed-2", "description": "r_peak", "onset": [1.0, 2.0],
                    "rr_s": [float("nan"), 1.0]}).encode(),
        b'{"kind":"decision","session":"bed-2","description":"click","onset":5.0}',  # not an event
        b'{"kind":"event","session":"bed-2","descr',  # a torn last line (a crash): skipped
    ]
    (journal / "records.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert _events_by_bed(journal) == {"béd-1": {"r_peak": 3, "arousal": 1}, "bed-2": {"r_peak": 2}}
