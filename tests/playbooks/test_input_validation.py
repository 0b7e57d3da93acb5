"""Bad input on a populated fleet (revision 1-30-3 installed on every cluster): every case is
refused by the validation pass before the first request to any cluster, with a message naming
the cluster and the user's own meshfleet_* variable, and no write request reaches any apiserver.
Then unreachable clusters: the message says which API server could not be reached, in the play
output and in the fleet report. The tests run in file order and build on each other."""

import json

import pytest

from localfleet.pytest_plugin import api_client

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

OLD = "1-30-3"
INSTALL = {"meshfleet_istio_version": "1.30.3"}
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_canary_hosts": "cluster1",
           "meshfleet_prune_after": 0}
# Internal names a message must never show instead of the user's variable.
INTERNALS = ("istiod_stable_tag", "istiod_version", "gateways_list", "namespaces_applications",
             "Finalization of task args", "filter plugin", "argument_spec")


def alias_bomb(levels=9, width=9):
    """A YAML alias bomb of `levels` levels, each list using the one below `width` times."""
    lines = ["meshfleet_istiod_values:",
             "  l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels + 1):
        lines.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def populated(run_playbook, fleet):
    run = run_playbook("install", extra_vars=INSTALL)
    assert run.rc == 0, run.output[-4000:]
    return [c.spec.name for c in fleet.clusters]


def no_writes(clusters):
    return {name: [] for name in clusters}


def assert_refused(run, counter, clusters, *expected):
    assert run.rc != 0, run.output[-3000:]
    for text in expected:
        assert text in run.output, run.output[-5000:]
    assert "nothing was changed on any cluster" in run.output
    for internal in INTERNALS:
        assert internal not in run.output, (internal, run.output[-5000:])
    assert counter.writes() == no_writes(clusters)


@pytest.mark.parametrize("extra_vars,expected", [
    ({"meshfleet_gateways": [{"name": "istio-ingressgateway", "kind": "ingress", "replicas": -1}]},
     "meshfleet_gateways[0].replicas is -1"),
    ({"meshfleet_gateways": [{"name": "istio-ingressgateway", "kind": "ingress",
                              "ports": [{"name": "http2", "port": 70000, "targetPort": 8080}]}]},
     "meshfleet_gateways[0].ports[0].port is 70000"),
    ({"meshfleet_gateways": [{"name": "Ingress_GW", "kind": "ingress"}]},
     "meshfleet_gateways[0].name is 'Ingress_GW'"),
    ({"meshfleet_application_namespaces": ["shop", "kube-system"]},
     "meshfleet_application_namespaces[1] is 'kube-system'"),
    ({"meshfleet_serial": 0}, "meshfleet_serial is 0"),
    ({"meshfleet_max_fail_percentage": 150}, "meshfleet_max_fail_percentage is 150"),
    ({"meshfleet_istio_version": "1.30"}, "meshfleet_istio_version is '1.30'"),
    ({"meshfleet_istio_version": "latest"}, "meshfleet_istio_version is 'latest'"),
    ({"meshfleet_stable_tag": "1-30-3"}, "meshfleet_stable_tag is '1-30-3'"),
    ({"meshfleet_istio_version": "1.31.1"},
     "the istiod chart of Istio 1.31.1 is not available from meshfleet_chart_source"),
], ids=["replicas", "port", "gateway-name", "system-namespace", "serial", "fail-budget",
        "bare-minor", "latest", "revision-tag", "missing-chart"])
def test_install_refuses_bad_input_before_any_write(populated, run_playbook, write_counter,
                                                   extra_vars, expected):
    counter = write_counter()
    run = run_playbook("install", extra_vars=dict(INSTALL, **extra_vars))
    # every cluster has the problem: one message names them all
    assert_refused(run, counter, populated, f"{', '.join(populated)}: {expected}")


@pytest.mark.parametrize("extra_vars,expected", [
    ({"meshfleet_canary_tag": "prod-stable"},
     "meshfleet_canary_tag and meshfleet_stable_tag are both 'prod-stable'"),
    ({"meshfleet_target_version": "1.31.1"},
     "the istiod chart of Istio 1.31.1 is not available from meshfleet_chart_source"),
    ({"meshfleet_canary_namespaces": ["kube-system"]},
     "meshfleet_canary_namespaces[0] is 'kube-system'"),
    ({"meshfleet_health_timeout": 0}, "meshfleet_health_timeout is 0"),
], ids=["canary-is-stable", "missing-chart", "system-canary-namespace", "timeout"])
def test_upgrade_refuses_bad_input_before_any_write(populated, run_playbook, write_counter,
                                                   extra_vars, expected):
    counter = write_counter()
    run = run_playbook("upgrade", extra_vars=dict(UPGRADE, **extra_vars))
    assert_refused(run, counter, populated, expected)
    assert "Hold the run lock" not in run.output and "Record that the upgrade" not in run.output


def test_every_problem_of_every_cluster_is_listed_in_one_run(populated, run_playbook,
                                                             write_counter):
    counter = write_counter()
    host_vars = {
        populated[0]: {"meshfleet_application_namespaces": ["kube-system"]},
        populated[1]: {"meshfleet_gateways": [{"name": "istio-ingressgateway", "kind": "ingress",
                                               "replicas": -1}]},
    }
    run = run_playbook("install", extra_vars=INSTALL, host_vars=host_vars)
    assert_refused(run, counter, populated,
                   f"{populated[0]}: meshfleet_application_namespaces[0] is 'kube-system'",
                   f"{populated[1]}: meshfleet_gateways[0].replicas is -1",
                   "2 problem(s)")


def test_an_alias_bomb_fails_quickly_with_a_clear_message(populated, run_playbook,
                                                         write_counter, tmp_path):
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(alias_bomb())
    counter = write_counter()
    # generous: a hang (the alias bomb expanded) would take far longer, and then fail here
    run = run_playbook("upgrade", extra_vars=UPGRADE, extra_args=["-e", f"@{bomb}"], timeout=600)
    assert_refused(run, counter, populated,
                   "meshfleet_istiod_values is too large for a fleet spec value: it has more "
                   "than 10000 nodes")


def test_a_good_check_run_passes_the_validation(populated, run_playbook, write_counter):
    counter = write_counter()
    run = run_playbook("install", extra_vars=INSTALL, check=True)
    assert run.rc == 0, run.output[-4000:]
    task = "TASK [Check the fleet spec and the run's variables of every cluster]"
    assert f"{task} *" in run.output
    assert run.output.split(task)[1].split("TASK [")[0].strip("* \n").startswith(
        f"ok: [{populated[0]}]"), run.output[:3000]
    assert counter.writes() == no_writes(populated)


# ------------------------------------------------------------------ unreachable clusters

def apiserver_url(fleet, cluster):
    return api_client(fleet, cluster).configuration.host


def test_an_unreachable_cluster_is_reported_as_such(populated, run_playbook, fleet, tmp_path):
    down = populated[-1]
    url = apiserver_url(fleet, down)
    fleet.stop_component(down, "apiserver")
    try:
        run = run_playbook("install", extra_vars=INSTALL)
        status = run_playbook("status", extra_vars={"meshfleet_report_dir": str(tmp_path)})
    finally:
        fleet.start_component(down, "apiserver")
    message = (f"{down}: cannot reach the API server at {url} (connection refused): check "
               "meshfleet_kubeconfig / meshfleet_context of this cluster and that its API server "
               "is up")
    assert run.rc != 0
    assert message in run.output, run.output[-4000:]
    assert "Max retries exceeded" not in run.output
    assert run.failed_hosts() == [down], run.recap()
    assert status.rc != 0
    assert message in status.output
    report = json.loads((tmp_path / "fleet.json").read_text())
    assert report[down]["error"] == message
    assert message in (tmp_path / "fleet.md").read_text()


def test_cleanup(populated, run_playbook):
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output[-3000:]
