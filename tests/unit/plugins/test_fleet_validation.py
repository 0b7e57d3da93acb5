import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.fleet_validation import (
    ChartIndex,
    oversized,
    validate,
)

ACCESS = {"meshfleet_kubeconfig": "/k", "meshfleet_context": "c"}


class AllCharts(ChartIndex):
    def missing(self, source, chart, version):
        return None


class NoCharts(ChartIndex):
    def missing(self, source, chart, version):
        return "no %s-%s" % (chart, version)


def check(playbook="install", charts=None, **variables):
    spec = dict(ACCESS, meshfleet_istio_version="1.31.0")
    if playbook == "upgrade":
        spec["meshfleet_target_version"] = "1.31.0"
    spec.update(variables)
    return validate(playbook, {"cluster2": spec}, charts=charts or AllCharts())


def one(messages):
    assert len(messages) == 1, messages
    return messages[0]


def test_a_good_spec_passes():
    assert check() == []
    assert check("upgrade", meshfleet_serial=[1, "50%", "100%"], meshfleet_max_fail_percentage=0,
                 meshfleet_gateways=[{"name": "gw", "kind": "ingress", "replicas": 3,
                                      "ports": [{"name": "http2", "port": 80, "targetPort": 8080}]}]) == []


@pytest.mark.parametrize("variables,expected", [
    ({"meshfleet_serial": 0}, "cluster2: meshfleet_serial is 0:"),
    ({"meshfleet_serial": [1, "0%"]}, "meshfleet_serial is [1, '0%']"),
    ({"meshfleet_serial": "150%"}, "meshfleet_serial is '150%'"),
    ({"meshfleet_max_fail_percentage": 150}, "meshfleet_max_fail_percentage is 150"),
    ({"meshfleet_istio_version": "latest"}, "meshfleet_istio_version is 'latest': 'latest' is not an Istio version"),
    ({"meshfleet_istio_version": "1.30"}, "meshfleet_istio_version is '1.30'"),
    ({"meshfleet_istio_version": "1.31.7"}, "newest known 1.31 release is 1.31.1"),
    ({"meshfleet_gateways": [{"name": "gw", "kind": "ingress", "replicas": -1}]},
     "meshfleet_gateways[0].replicas is -1"),
    ({"meshfleet_gateways": [{"name": "gw", "kind": "ingress", "replicas": 9}]},
     "meshfleet_gateways[0].replicas is 9"),
    ({"meshfleet_gateways": [{"name": "gw", "kind": "ingress", "ports": [{"name": "x", "port": 70000}]}]},
     "meshfleet_gateways[0].ports[0].port is 70000"),
    ({"meshfleet_gateways": [{"name": "Bad_Name", "kind": "ingress"}]},
     "meshfleet_gateways[0].name is 'Bad_Name'"),
    ({"meshfleet_gateways": [{"name": "gw", "kind": "sideways"}]}, "meshfleet_gateways[0].kind is 'sideways'"),
    ({"meshfleet_gateways": [{"name": "gw", "kind": "ingress", "replica": 2}]}, "unknown key(s) replica"),
    ({"meshfleet_application_namespaces": ["kube-system"]},
     "meshfleet_application_namespaces[0] is 'kube-system'"),
    ({"meshfleet_application_namespaces": ["istio-system"]}, "namespace of Istio's layout"),
    ({"meshfleet_application_namespaces": ["Shop"]}, "namespace names must be DNS labels"),
    ({"meshfleet_stable_tag": "1-31-0"}, "meshfleet_stable_tag is '1-31-0'"),
    ({"meshfleet_stable_tag": "Prod_Stable"}, "meshfleet_stable_tag is 'Prod_Stable': a revision tag must be a DNS label"),
    ({"meshfleet_stable_tag": "default"}, "meshfleet_stable_tag is 'default'"),
    ({"meshfleet_chart_source": {"type": "ftp"}}, "meshfleet_chart_source is"),
    ({"meshfleet_kubeconfig": ""}, "meshfleet_kubeconfig is ''"),
    ({"meshfleet_mtls_mode": "strict"}, "meshfleet_mtls_mode is 'strict'"),
])
def test_install_refuses_with_the_users_variable(variables, expected):
    message = one(check(**variables))
    assert message.startswith("cluster2: ")
    assert expected in message
    assert "istiod_" not in message.replace("gateways_autoscale_max", "")


@pytest.mark.parametrize("variables,expected", [
    ({"meshfleet_canary_tag": "prod-stable"}, "meshfleet_canary_tag and meshfleet_stable_tag are both"),
    ({"meshfleet_canary_tag": "1-30-dev"}, "meshfleet_canary_tag is '1-30-dev'"),
    ({"meshfleet_max_minor_jump": 3}, "meshfleet_max_minor_jump is 3"),
    ({"meshfleet_health_timeout": 0}, "meshfleet_health_timeout is 0"),
    ({"meshfleet_rollout_timeout": "soon"}, "meshfleet_rollout_timeout is 'soon'"),
    ({"meshfleet_lock_ttl": 5}, "meshfleet_lock_ttl is 5: it is a number of seconds; use a whole number from 12"),
    ({"meshfleet_canary_namespaces": ["kube-system"]}, "meshfleet_canary_namespaces[0] is 'kube-system'"),
    ({"meshfleet_target_version": "1.31"}, "not an Istio version"),
])
def test_upgrade_refuses_with_the_users_variable(variables, expected):
    assert expected in one(check("upgrade", **variables))


def test_system_namespaces_only_when_forced():
    assert check(meshfleet_application_namespaces=["kube-public"],
                 meshfleet_enrol_system_namespaces=True) == []
    assert check(meshfleet_application_namespaces=["istio-system"],
                 meshfleet_enrol_system_namespaces=True) != []


def test_every_problem_of_every_cluster_is_listed_and_shared_ones_once():
    clusters = {
        "cluster1": dict(ACCESS, meshfleet_istio_version="1.31.0", meshfleet_serial=0),
        "cluster2": dict(ACCESS, meshfleet_istio_version="1.31.0", meshfleet_serial=0,
                         meshfleet_gateways=[{"name": "gw", "kind": "ingress", "replicas": -1}]),
        "cluster3": dict(ACCESS, meshfleet_istio_version="1.31.0", meshfleet_serial=0,
                         meshfleet_application_namespaces=["kube-system"]),
    }
    messages = validate("install", clusters, charts=AllCharts())
    assert len(messages) == 3, messages
    assert messages[0].startswith("cluster1, cluster2, cluster3: meshfleet_serial is 0")
    assert any(m.startswith("cluster2: meshfleet_gateways[0].replicas") for m in messages)
    assert any(m.startswith("cluster3: meshfleet_application_namespaces[0]") for m in messages)


def test_missing_charts_are_named_with_the_version_variable():
    messages = validate("upgrade", {"c1": dict(ACCESS, meshfleet_target_version="1.31.1")},
                        charts=NoCharts())
    assert len(messages) == 3  # base, istiod, gateway
    assert all("meshfleet_chart_source" in m and "meshfleet_target_version" in m for m in messages)
    assert "the istiod chart of Istio 1.31.1" in messages[1]


def test_charts_in_a_directory(tmp_path):
    for chart in ("base", "istiod"):
        (tmp_path / f"{chart}-1.31.0.tgz").write_text("")
    source = {"type": "directory", "path": str(tmp_path)}
    messages = validate("install", {"c1": dict(ACCESS, meshfleet_istio_version="1.31.0",
                                               meshfleet_chart_source=source)})
    assert messages == ["c1: the gateway chart of Istio 1.31.0 is not available from "
                        "meshfleet_chart_source (%s/gateway-1.31.0.tgz is not there): publish it "
                        "there or choose a version the source has (meshfleet_istio_version)"
                        % tmp_path]


def test_charts_in_a_repository_index_read_once():
    reads = []

    def fetch(url):
        reads.append(url)
        return "entries:\n  base: [{version: 1.31.0}]\n  istiod: [{version: 1.31.0}]\n  gateway: [{version: 1.30.0}]\n"

    source = {"type": "repository", "url": "https://charts.example/"}
    clusters = {name: dict(ACCESS, meshfleet_istio_version="1.31.0", meshfleet_chart_source=source)
                for name in ("c1", "c2")}
    messages = validate("install", clusters, charts=ChartIndex(fetch))
    assert reads == ["https://charts.example/index.yaml"]
    assert messages == ["c1, c2: the gateway chart of Istio 1.31.0 is not available from "
                        "meshfleet_chart_source (the repository https://charts.example has no "
                        "gateway chart of version 1.31.0): publish it there or choose a version "
                        "the source has (meshfleet_istio_version)"]


def test_uninstall_checks_only_access_and_run_variables():
    assert validate("uninstall", {"c1": dict(ACCESS, meshfleet_istio_version="nonsense",
                                             meshfleet_force="maybe")}) == [
        "c1: meshfleet_force is 'maybe': it is a switch; use true or false"]


def alias_bomb(levels=9, width=9):
    node = ["lol"] * width
    for _level in range(levels):
        node = [node] * width
    return {"a": node}


def test_an_alias_bomb_is_refused_by_counting_with_a_budget():
    assert "more than 10000 nodes" in oversized(alias_bomb())
    assert oversized({"pilot": {"env": {"A": "1"}}}) is None


def test_deep_nesting_is_refused():
    value = {}
    for _level in range(40):
        value = {"x": value}
    assert "deeper than 32 levels" in oversized(value)
