"""pytest fixtures for tests against a local fleet (loaded with `-p localfleet.pytest_plugin`):
`fleet` (started for the session, one per pytest-xdist worker), `cluster` (its first cluster),
`k8s` (an API client for it) and `namespace` (a fresh namespace per test); `api_client` makes a
client for any cluster and identity of a fleet.

MESHFLEET_FLEET names the fleet (default `test`; worker gwN runs `<name>-gwN`),
MESHFLEET_TEST_CLUSTERS its size (default 3), MESHFLEET_REUSE_FLEET=1 keeps one that is up,
MESHFLEET_ISTIOD=real runs a real istiod (pilot-discovery) per istiod Deployment instead of the
stand-in (the suite's default is the stand-in: on real istiods it took 1.7 times as long, see
docs/local-fleet.md; localfleet/tests/fleet/test_real_istiod.py always runs real ones).
"""

import os
import uuid

import pytest

from . import netns
from .fleet import Fleet


def _wanted_clusters() -> int:
    return int(os.environ.get("MESHFLEET_TEST_CLUSTERS", "3"))


def real_istiod() -> bool:
    return os.environ.get("MESHFLEET_ISTIOD", "standin") == "real"


def fleet_name() -> str:
    """MESHFLEET_FLEET (default `test`); under pytest-xdist each worker has a fleet of its own."""
    name = os.environ.get("MESHFLEET_FLEET", "test")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{name}-{worker}" if worker else name


@pytest.fixture(scope="session")
def fleet():
    """A running fleet, started for this session (each xdist worker's own) and stopped after it.

    MESHFLEET_REUSE_FLEET=1 keeps a fleet that is already up (and leaves it running), which
    makes repeated local runs fast; CI always starts a fresh one.
    """
    name = fleet_name()
    reuse = os.environ.get("MESHFLEET_REUSE_FLEET") == "1"
    running = Fleet(name)
    if reuse and running.is_up(_wanted_clusters(), real_istiod()):
        netns.enter(running.netns)
        yield running
        return
    running.down()
    running = Fleet(name)
    running.up(_wanted_clusters(), real_istiod())
    yield running
    if not reuse:
        running.down()


@pytest.fixture(scope="session")
def cluster(fleet):
    return fleet.clusters[0]


def api_client(fleet, cluster_name, identity="admin"):
    from kubernetes import config

    context = cluster_name if identity == "admin" else f"{cluster_name}-{identity}"
    return config.new_client_from_config(config_file=str(fleet.kubeconfig), context=context)


@pytest.fixture(scope="session")
def k8s(fleet, cluster):
    """An API client for the first cluster, as the admin identity."""
    return api_client(fleet, cluster.spec.name)


@pytest.fixture
def namespace(k8s):
    """A fresh namespace for one test, deleted afterwards."""
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
