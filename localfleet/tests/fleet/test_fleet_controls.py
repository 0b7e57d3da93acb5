"""Starting and stopping fleets: clear errors, nothing left half-started."""

import pytest

from localfleet import netns
from localfleet.cluster import Cluster
from localfleet.fleet import Fleet, port_in_use
from localfleet.progress import FleetError

pytestmark = pytest.mark.fleet


def test_a_second_start_is_refused_while_the_fleet_runs(fleet):
    again = Fleet(fleet.name)
    with pytest.raises(FleetError, match="already running"):
        again.up(len(fleet.clusters))
    assert again.is_up(len(fleet.clusters))


def test_cluster_count_out_of_range_is_refused():
    with pytest.raises(FleetError, match="choose between 1 and 32"):
        Fleet("never-started").up(0)


def test_a_port_in_use_is_detected(fleet):
    apiserver_port = fleet.clusters[0].spec.apiserver_port
    assert port_in_use(apiserver_port)
    assert not port_in_use(apiserver_port + 7)


def test_a_failed_start_leaves_nothing_running(fleet, monkeypatch):
    real_command = Cluster.command

    def broken(self, component):
        argv = real_command(self, component)
        return argv + ["--no-such-flag"] if component == "kube-apiserver" else argv

    monkeypatch.setattr(Cluster, "command", broken)
    broken_fleet = Fleet("broken")
    try:
        with pytest.raises(FleetError, match="kube-apiserver exited during start-up"):
            broken_fleet.up(1)
        assert broken_fleet.clusters[0].pids["etcd"]
        assert broken_fleet.running() == []
        assert not netns.exists(broken_fleet.netns)
    finally:
        broken_fleet.down()
        netns.enter(fleet.netns)


def test_stopping_the_apiserver_fails_requests_until_it_is_restarted(fleet):
    target = fleet.clusters[-1]
    assert target.api_get("/readyz") == "ok"
    fleet.stop_component(target.spec.name, "apiserver")
    try:
        assert target.api_get("/readyz") is None
    finally:
        fleet.start_component(target.spec.name, "apiserver")
    assert target.api_get("/readyz") == "ok"
