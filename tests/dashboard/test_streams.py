"""The SSE plumbing: hub fan-out across threads, and streams that end with their login."""

from __future__ import annotations

import asyncio
import threading

from hipsense.dashboard.accounts.login_sessions import end_session, start_session
from hipsense.dashboard.accounts.therapists import add_therapist
from hipsense.dashboard.live_hub import LiveHub, Update
from hipsense.dashboard.web import DashboardContext, streams
from hipsense.dashboard.web.auth import SESSION_COOKIE


class FakeRequest:
    def __init__(self, token: str) -> None:
        self.cookies = {SESSION_COOKIE: token}

    async def is_disconnected(self) -> bool:
        return False


def test_a_stream_ends_when_its_login_ends(sqlite_engine, monkeypatch):
    monkeypatch.setattr(streams, "SESSION_RECHECK_S", 0.0)
    ana = add_therapist(sqlite_engine, "ana", "correct horse battery")
    token, _ = start_session(sqlite_engine, ana.id)
    context = DashboardContext(engine=sqlite_engine, sse_poll_s=0.01)

    async def consume() -> int:
        seen = 0
        async for _ in streams._updates(FakeRequest(token), context, "p-0001"):
            seen += 1
            if seen == 3:
                end_session(sqlite_engine, token)  # logged out in another tab
            assert seen < 50, "the stream outlived its login"
        return seen

    assert asyncio.run(consume()) == 3


def test_updates_published_on_another_thread_reach_the_subscribers_of_that_patient():
    hub = LiveHub()

    async def listen() -> list[Update]:
        mine, everyone = hub.subscribe("p-0001"), hub.subscribe(None)
        thread = threading.Thread(target=lambda: [hub.publish(Update("live", patient, {"n": n}))
                                                  for n, patient in enumerate(["p-0002", "p-0001"])])
        thread.start()
        got = [await asyncio.wait_for(mine.get(), 2)]
        got += [await asyncio.wait_for(everyone.get(), 2) for _ in range(2)]
        thread.join()
        return got

    got = asyncio.run(listen())
    assert [(u.patient, u.data["n"]) for u in got] == [("p-0001", 1), ("p-0002", 0), ("p-0001", 1)]
    assert hub.last_live("p-0001", max_age_s=5) == {"n": 1}


def test_the_patient_list_is_cued_only_by_the_therapists_own_patients(sqlite_engine):
    """Ben's page must not learn when Ana's patients exercise (it did: every "stored" and "live"
    of any patient cued every therapist's list)."""
    from hipsense.dashboard.accounts.therapists import assign_patient

    ana = add_therapist(sqlite_engine, "ana", "correct horse battery")
    ben = add_therapist(sqlite_engine, "ben", "correct horse battery")
    assign_patient(sqlite_engine, "p-0001", "ana")
    assign_patient(sqlite_engine, "p-0002", "ben")
    token, _ = start_session(sqlite_engine, ben.id)
    context = DashboardContext(engine=sqlite_engine, hub=LiveHub(), sse_poll_s=0.01)

    async def cues_for_ben(patients: list[str]) -> list[str]:
        events: list[str] = []

        async def consume() -> None:
            async for event in streams.table_cues(FakeRequest(token), context, ben.id):
                events.append(event)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)  # subscribed, and ben's patients read
        for n, patient in enumerate(patients):
            context.hub.publish(Update("stored", patient, {}))
            context.hub.publish(Update("live", patient, {"n": n}))
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return [e for e in events if "changed" in e]

    assert asyncio.run(cues_for_ben(["p-0001", "p-0001"])) == []  # ana's patient: nothing
    assert any("changed" in e for e in asyncio.run(cues_for_ben(["p-0002"])))  # ben's own: cued
    assert ana.id != ben.id
