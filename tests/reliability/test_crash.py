"""Crash durability: kill -9 of gunicorn (master + 4 workers, the whole process group; never the
database server) at random moments during concurrent creates, updates and transaction bundles.

After each restart every acknowledged write (journalled, fsynced, by the clients) is read back by
version and compared with what was acknowledged; each bundle is all-or-nothing (all entries of an
acknowledged one exist, none of a refused one, all or none of one in flight at the kill); SQLite
passes `PRAGMA integrity_check` after every kill. Short tier: 20 trials; long tier: 1,000.
"""

from __future__ import annotations

import pytest

from reliability.conftest import CRASH_LONG, CRASH_SHORT, CrashOutcome, long_tier

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]


def _summary(outcome: CrashOutcome) -> str:
    run = outcome.run
    acked = sum(t.acknowledged for t in run.trials)
    ok = sum(t.bundles_ok for t in run.trials)
    refused = sum(t.bundles_refused for t in run.trials)
    flight = sum(t.bundles_in_flight for t in run.trials)
    killed = sorted({t.killed_processes for t in run.trials})
    restart = max(t.restart_s for t in run.trials)
    return (f"{outcome.dialect}: {len(run.trials)} kill -9 trials in {run.seconds:.1f}s; {acked} acknowledged single writes, "
            f"{ok} acknowledged bundles, {refused} refused, {flight} in flight at the kill; {run.checks} read-back checks; "
            f"processes killed per trial {killed}; slowest restart {restart:.2f}s; problems {len(run.problems)}")


def check(outcome: CrashOutcome, trials: int) -> None:
    run = outcome.run
    print("\n" + _summary(outcome))
    assert len(run.trials) == trials
    if outcome.dialect == "sqlite":
        assert outcome.checks_config == {"journal_mode": "wal", "synchronous": "2"}  # synchronous=FULL
        assert run.integrity == ["ok"] * trials
    else:
        assert outcome.checks_config == {"synchronous_commit": "on", "fsync": "on"}
    assert all(t.killed_processes >= 5 for t in run.trials)  # master + 4 workers, every time
    assert run.problems == []
    unexpected = [u for t in run.trials for u in t.unexpected]
    assert unexpected == [], unexpected[:20]
    assert not any(status >= 500 for t in run.trials for status in t.statuses)
    # The harness did real work: writes were acknowledged and bundles were caught mid-flight.
    assert sum(t.acknowledged for t in run.trials) >= 3 * trials
    assert sum(t.bundles_ok for t in run.trials) >= trials // 2
    assert sum(t.bundles_refused for t in run.trials) >= 1
    assert sum(t.bundles_in_flight for t in run.trials) >= 1


def test_kill_9_short_tier(crash_short: CrashOutcome) -> None:
    check(crash_short, CRASH_SHORT[0])


@long_tier
def test_kill_9_long_tier(crash_long: CrashOutcome) -> None:
    check(crash_long, CRASH_LONG[0])


def test_the_verifier_sees_lost_writes_and_partial_bundles(app, app_config, launcher, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Negative control: a journal that claims more than the server holds is caught."""
    import random

    from reliability.crash import Canaries, patient, sha, verify
    from reliability.server import server_env

    server = launcher.start(server_env(app_config), tmp_path / "gunicorn.log")
    try:
        with server.client(headers={"Content-Type": "application/fhir+json"}) as http:
            doc = http.post("/fhir/Patient", json=patient(Canaries.random(random.Random(1)), random.Random(2), "k-1")).json()
        real = {"trial": 0, "op": "write", "type": "Patient", "id": doc["id"], "vid": 1, "sha": sha(doc)}
        journal = [
            real,
            {**real, "vid": 2},  # a version never written: lost
            {**real, "sha": "0" * 64},  # altered
            {"trial": 0, "op": "bundle-sent", "bundle": "b1", "keys": [["Patient", "k-1", doc["id"]], ["Observation", "k-missing", None]]},
            {"trial": 0, "op": "bundle-ok", "bundle": "b1", "entries": []},  # acknowledged, but one entry is missing
            {"trial": 0, "op": "bundle-sent", "bundle": "b2", "keys": [["Patient", "k-1", doc["id"]]]},
            {"trial": 0, "op": "bundle-refused", "bundle": "b2", "status": 400},  # refused, yet its entry exists
            {"trial": 0, "op": "bundle-sent", "bundle": "b3", "keys": [["Patient", "k-1", doc["id"]], ["Patient", "k-missing", None]]},  # in flight: half
        ]
        problems, checks = verify(server, journal)
    finally:
        server.stop()
    assert checks == 6
    assert len(problems) == 5, problems
