"""Chaos end to end (tests/deploy/chaos.py): Pis SIGKILLed at random moments and at chosen
points of the delivery path, their clocks stepped back, dashboard ingests SIGKILLed, the broker
restarted with and without its saved state; every result the Pis produced ends up in the
database exactly once, and no Pi ever forgot a result the database did not have.

SQLite with one dashboard instance, PostgreSQL with two (the shared subscription). Each runs
~12 s of chaos (``HIPSENSE_CHAOS_SECONDS``) with a seed printed in the failure message
(``HIPSENSE_CHAOS_SEED`` repeats it); benchmarks/soak_delivery.py runs it for minutes.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.dashboard.conftest import engine, postgres_url  # noqa: F401 - fixtures
from tests.deploy.chaos import BAD_OUTCOMES, BLOWS, Chaos, database_url

pytestmark = pytest.mark.slow


def test_every_result_is_stored_once_through_kills_and_broker_losses(fresh_deployment, engine, tmp_path):  # noqa: F811
    seed = int(os.environ.get("HIPSENSE_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    seconds = float(os.environ.get("HIPSENSE_CHAOS_SECONDS", "12"))
    instances = 2 if engine.dialect.name == "postgresql" else 1
    chaos = Chaos(fresh_deployment, tmp_path, database_url(engine), instances=instances, seed=seed)
    try:
        figures = chaos.run(seconds)
        verdict = chaos.verdict()
    finally:
        chaos.dispose()
    print("\n" + figures.summary())
    assert figures.violations == [], figures.summary()
    assert figures.checks >= 3, figures.summary()  # the chaos did strike
    assert [blow for blow in BLOWS if not figures.events[blow]] == [], figures.summary()  # every kind of it
    for patient, outcome in verdict.items():
        assert outcome["produced"] > 50, (patient, outcome, figures.summary())
        wrong = {key: outcome[key] for key in BAD_OUTCOMES if outcome[key]}
        assert wrong == {}, (patient, outcome, figures.summary())
