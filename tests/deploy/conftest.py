"""Fixtures for the deployment tests: real brokers running the shipped config (the certificates,
``pki``, are tests/conftest.py's).

``broker`` is shared by a module's tests (starting Mosquitto and provisioning two patients
costs ~0.2 s, but the isolation tests only read the broker's state); tests that change the
accounts (revocation) start their own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from tests.deploy.broker import MOSQUITTO, DeployedBroker


@dataclass
class Deployment:
    broker: DeployedBroker
    dashboard_password: str
    a: tuple[str, str]  # patient id, password
    b: tuple[str, str]


def start_deployment(workdir, pki, labels=("clinic ref A-1001", "clinic ref B-2002")) -> Deployment:
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed (apt-get install mosquitto): the deployment tests need the real broker")
    dashboard_password = secrets.token_urlsafe(24)
    broker = DeployedBroker(workdir, pki, dashboard_password=dashboard_password)
    a, b = (broker.provision(label) for label in labels)
    broker.start()
    return Deployment(broker=broker, dashboard_password=dashboard_password, a=a, b=b)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pki):
    dep = start_deployment(tmp_path_factory.mktemp("deploy"), pki)
    yield dep
    dep.broker.stop()


@pytest.fixture
def fresh_deployment(tmp_path, pki):
    dep = start_deployment(tmp_path, pki)
    yield dep
    dep.broker.stop()
