"""Fixtures shared by every test that needs the local fleet of real clusters."""

import os
import uuid

import pytest

from localfleet import netns
from localfleet.fleet import Fleet
from tests.unit.conftest import link_collection

link_collection()


def _wanted_clusters() -> int:
    return int(os.environ.get("MESHFLEET_TEST_CLUSTERS", "3"))


@pytest.fixture(scope="session")
def fleet():
    """A running fleet, started for this session and stopped after it.

    MESHFLEET_REUSE_FLEET=1 keeps a fleet that is already up (and leaves it running), which
    makes repeated local runs fast; CI always starts a fresh one.
    """
    name = os.environ.get("MESHFLEET_FLEET", "test")
    reuse = os.environ.get("MESHFLEET_REUSE_FLEET") == "1"
    running = Fleet(name)
    if reuse and running.is_up(_wanted_clusters()):
        netns.enter(running.netns)
        yield running
        return
    running.down()
    running = Fleet(name)
    running.up(_wanted_clusters())
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
