"""The inventory a local fleet writes: one host per cluster, the first one in group canary (the
group upgrade.yml takes as its canary wave by default)."""

import yaml

from localfleet.cluster import Cluster, ClusterSpec
from localfleet.fleet import Fleet, cluster_names, inventory_yaml


def fleet_of(count, tmp_path, monkeypatch):
    monkeypatch.setenv("MESHFLEET_STATE_DIR", str(tmp_path))
    fleet = Fleet("inv")
    fleet.clusters = [Cluster(ClusterSpec(name, index), tmp_path / name, tmp_path / "bin")
                      for index, name in enumerate(cluster_names(count))]
    return fleet


def test_every_cluster_is_a_host_and_the_first_is_the_canary(tmp_path, monkeypatch):
    inventory = yaml.safe_load(inventory_yaml(fleet_of(3, tmp_path, monkeypatch)))
    children = inventory["all"]["children"]
    assert list(children["localfleet"]["hosts"]) == ["cluster1", "cluster2", "cluster3"]
    assert children["localfleet"]["hosts"]["cluster2"] == {"meshfleet_context": "cluster2"}
    assert list(children["canary"]["hosts"]) == ["cluster1"]


def test_a_fleet_of_one_is_its_own_canary(tmp_path, monkeypatch):
    inventory = yaml.safe_load(inventory_yaml(fleet_of(1, tmp_path, monkeypatch)))
    assert list(inventory["all"]["children"]["canary"]["hosts"]) == ["cluster1"]
