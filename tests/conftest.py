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


def fleet_name() -> str:
    """MESHFLEET_FLEET (default `test`); under pytest-xdist each worker has a fleet of its own."""
    name = os.environ.get("MESHFLEET_FLEET", "test")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{name}-{worker}" if worker else name


# The slowest test files, slowest first (per-file durations of a CI run, docs/development-checks.md).
# With `--dist loadfile` the workers take files in this order, so the longest files start first and
# the short ones fill the gaps at the end.
SLOWEST_FIRST = (
    # Not slow, but it installs a base chart of its own, which needs a fleet without Istio: a
    # worker's first file runs on a fresh fleet.
    "tests/localfleet/test_real_api.py",
    "tests/playbooks/test_upgrade.py",
    "tests/playbooks/test_least_privilege.py",
    "tests/playbooks/test_run_lock.py",
    "tests/playbooks/test_install.py",
    "tests/playbooks/test_upgrade_failures.py",
    "tests/playbooks/test_controller_jobs.py",
    "tests/playbooks/test_dashboard.py",
    "tests/playbooks/test_workload_migrate.py",
    "tests/playbooks/test_upgrade_check_mode.py",
    "tests/playbooks/test_canary_kubeconfigs.py",
    "tests/playbooks/test_input_validation.py",
)


def _file_rank(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST)


def pytest_collection_modifyitems(items):
    """Slowest files first; a file's own tests keep their order (some build on each other)."""
    items.sort(key=_file_rank)


@pytest.fixture(scope="session")
def fleet():
    """A running fleet, started for this session (each xdist worker's own) and stopped after it.

    MESHFLEET_REUSE_FLEET=1 keeps a fleet that is already up (and leaves it running), which
    makes repeated local runs fast; CI always starts a fresh one.
    """
    name = fleet_name()
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
