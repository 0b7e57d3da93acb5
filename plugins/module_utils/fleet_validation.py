# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The fleet spec and a run's variables, checked for every cluster before the first write.

Pure logic: the values come in as each cluster's `meshfleet_*` variables (templated), the
problems go out as messages that name the cluster, the user's own variable, the bad value and
what to do. Nothing here talks to a cluster; chart availability is checked where the charts
come from (a directory, or a Helm repository's index).

`oversized` bounds raw values (a YAML alias bomb expands to billions of nodes) by counting with
a budget, so it answers in milliseconds whatever the value's expanded size.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.meshfleet.istio.plugins.module_utils import catalogue, revisions

PLAYBOOKS = ("install", "upgrade", "rollback", "uninstall")

# Bounds of any meshfleet_* value (nodes: every dict, list and scalar counted once per place
# it appears; an alias counts again each time it is used, as the roles would see it).
MAX_NODES = 10000
MAX_DEPTH = 32

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
REVISION_SHAPED = re.compile(r"^\d+-\d+(-\d+|-dev)?$")
PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")

GATEWAY_KINDS = ("ingress", "egress", "eastwest")
GATEWAY_KEYS = ("name", "kind", "service_type", "ports", "replicas", "namespace")
SERVICE_TYPES = ("LoadBalancer", "NodePort", "ClusterIP")
PROTOCOLS = ("TCP", "UDP", "SCTP")
LAYOUT_NAMESPACES = ("istio-system", "istio-config", "istio-gateways", "istio-ingress",
                     "istio-egress", "istio-eastwest")
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
# The gateways role's HPA maximum (gateways_autoscale_max) unless the inventory sets another.
GATEWAY_AUTOSCALE_MAX = 5
MAX_SECONDS = 86400
RESERVED_TAGS = ("default",)

# The variables checked here (others are only bounded in size, never evaluated).
CHECKED = frozenset((
    "meshfleet_application_namespaces", "meshfleet_canary_contexts", "meshfleet_canary_namespaces",
    "meshfleet_canary_tag", "meshfleet_canary_wait", "meshfleet_chart_source",
    "meshfleet_cluster_name", "meshfleet_context", "meshfleet_default_sidecar",
    "meshfleet_enrol_system_namespaces", "meshfleet_force", "meshfleet_gateway_layout",
    "meshfleet_gateway_service_type", "meshfleet_gateways", "meshfleet_health_timeout",
    "meshfleet_hosts", "meshfleet_image_hub", "meshfleet_istio_version", "meshfleet_lock_ttl",
    "meshfleet_istiod_cluster_values", "meshfleet_istiod_values", "meshfleet_kubeconfig",
    "meshfleet_max_fail_percentage", "meshfleet_max_minor_jump", "meshfleet_mesh_resources",
    "meshfleet_migrate_batch", "meshfleet_mtls_mode", "meshfleet_network", "meshfleet_platform",
    "meshfleet_prune_after", "meshfleet_remove_crds", "meshfleet_rollback_revision",
    "meshfleet_rollout_timeout", "meshfleet_serial", "meshfleet_skip_converged",
    "meshfleet_stable_tag",
    "meshfleet_target_version", "meshfleet_trust_domain",
))

DEFAULT_CHART_SOURCE = {"type": "repository",
                        "url": "https://istio-release.storage.googleapis.com/charts"}


class Problems(object):
    """Problems found, each for one cluster; `messages()` joins the clusters that share one."""

    def __init__(self):
        self._found = []

    def add(self, cluster, text):
        if (cluster, text) not in self._found:
            self._found.append((cluster, text))

    def __len__(self):
        return len(self._found)

    def messages(self):
        clusters_of = {}
        for cluster, text in self._found:
            clusters_of.setdefault(text, []).append(cluster)
        return ["%s: %s" % (", ".join(clusters), text) for text, clusters in clusters_of.items()]


def show(value, limit=80):
    """A value as the user wrote it, shortened."""
    try:
        # single quotes: the message stays readable inside Ansible's JSON-quoted task results
        text = json.dumps(value, sort_keys=True, default=str).replace('"', "'")
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def oversized(value, max_nodes=MAX_NODES, max_depth=MAX_DEPTH):
    """Why `value` is too big or too deep to be a fleet spec value, or None.

    Counts with a budget and stops at the first bound passed, so an alias bomb (each level
    reusing the one below several times) is refused after `max_nodes` steps."""
    budget = [max_nodes]
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            return ("it has more than %d nodes (lists, mappings and values counted where they "
                    "are used; YAML aliases count each time)" % max_nodes)
        if depth > max_depth:
            return "it is nested deeper than %d levels" % max_depth
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node.keys() if not isinstance(k, str))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)
    return None


def _is_int(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.match(r"^\s*-?\d+\s*$", value) is not None


def _int_in(value, low, high):
    return _is_int(value) and low <= int(value) <= high


def _is_bool(value):
    return isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in (
        "true", "false", "yes", "no", "on", "off", "1", "0"))


class ClusterCheck(object):
    """The checks of one cluster's variables for one playbook."""

    def __init__(self, cluster, variables, playbook, problems, autoscale_max=GATEWAY_AUTOSCALE_MAX):
        self.cluster = cluster
        self.v = variables
        self.playbook = playbook
        self.problems = problems
        self.autoscale_max = autoscale_max

    def bad(self, variable, value, why, todo):
        self.problems.add(self.cluster, "%s is %s: %s; %s" % (variable, show(value), why, todo))

    def has(self, name):
        return name in self.v and self.v[name] is not None

    # ---------------------------------------------------------------- run variables

    def run_variables(self):
        self.serial()
        self.fail_percentage()
        self.seconds("meshfleet_rollout_timeout", 1, ("upgrade", "rollback"))
        # A lock renewed every sixth of its duration must outlast a few missed renewals.
        self.seconds("meshfleet_lock_ttl", 12, ("install", "upgrade", "rollback", "uninstall"))
        if self.has("meshfleet_migrate_batch") and self.playbook in ("upgrade", "rollback"):
            if not _int_in(self.v["meshfleet_migrate_batch"], 1, 1000):
                self.bad("meshfleet_migrate_batch", self.v["meshfleet_migrate_batch"],
                         "it is the number of workloads restarted at once",
                         "use a whole number from 1 to 1000 (default 1)")
        for name in ("meshfleet_force", "meshfleet_remove_crds", "meshfleet_default_sidecar",
                     "meshfleet_enrol_system_namespaces", "meshfleet_skip_converged"):
            if self.has(name) and not _is_bool(self.v[name]):
                self.bad(name, self.v[name], "it is a switch", "use true or false")
        if self.has("meshfleet_hosts") and not (isinstance(self.v["meshfleet_hosts"], str)
                                                and self.v["meshfleet_hosts"].strip()):
            self.bad("meshfleet_hosts", self.v["meshfleet_hosts"], "it is a host pattern",
                     "use a group or host pattern such as all, canary or wave1:wave2")

    def serial(self):
        if not self.has("meshfleet_serial"):
            return
        value = self.v["meshfleet_serial"]
        entries = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            entries = [None]
        for entry in entries:
            match = PERCENT.match(entry) if isinstance(entry, str) else None
            if match and 0 < float(match.group(1)) <= 100:
                continue
            if _is_int(entry) and int(entry) >= 1:
                continue
            self.bad("meshfleet_serial", value,
                     "each batch needs at least one cluster (%s is not a batch size)" % show(entry),
                     'use a whole number of clusters from 1, a percentage from 1% to 100%, or a '
                     'list of them such as [1, "50%", "100%"]')
            return

    def fail_percentage(self):
        if not self.has("meshfleet_max_fail_percentage"):
            return
        value = self.v["meshfleet_max_fail_percentage"]
        if not _int_in(value, 0, 100):
            self.bad("meshfleet_max_fail_percentage", value,
                     "it is the share of a batch's clusters that may fail before later batches "
                     "stop; above 100 no failure would ever stop the run",
                     "use a whole number from 0 (any failure stops the run) to 100")

    def seconds(self, name, low, playbooks, high=MAX_SECONDS):
        if self.playbook not in playbooks or not self.has(name):
            return
        if not _int_in(self.v[name], low, high):
            self.bad(name, self.v[name], "it is a number of seconds",
                     "use a whole number from %d to %d" % (low, high))

    # ---------------------------------------------------------------- access

    def access(self):
        for name, what in (("meshfleet_kubeconfig", "the path of this cluster's kubeconfig file"),
                           ("meshfleet_context", "the context of this cluster in that file")):
            value = self.v.get(name)
            if not isinstance(value, str) or not value.strip():
                self.problems.add(self.cluster, "%s is %s: set it to %s in the inventory "
                                  "(host_vars or the host's line)" % (
                                      name, "not set" if value is None else show(value), what))

    # ---------------------------------------------------------------- versions and tags

    def version(self, name, required):
        """The catalogue facts of the version in `name`, or None (reported)."""
        value = self.v.get(name)
        if value is None or value == "":
            if required:
                self.problems.add(self.cluster, "%s is not set: set the Istio version to %s, "
                                  "for example -e %s=1.31.0" % (
                                      name, "install" if name == "meshfleet_istio_version"
                                      else "move to", name))
            return None
        try:
            facts = catalogue.lookup(value)
            facts["revision"] = revisions.revision_name(value)
        except revisions.VersionError as error:
            self.bad(name, value, str(error),
                     "use a version of the catalogue such as 1.31.0 (docs/versions.md); "
                     "names such as latest or a bare minor are not versions")
            return None
        return facts

    def tags(self, revision):
        stable = self.v.get("meshfleet_stable_tag", "prod-stable")
        canary = self.v.get("meshfleet_canary_tag", "prod-canary")
        names = [("meshfleet_stable_tag", stable)]
        if self.playbook in ("upgrade", "rollback"):
            names.append(("meshfleet_canary_tag", canary))
        good = True
        for name, value in names:
            if not isinstance(value, str) or len(value) > 63 or not DNS_LABEL.match(value):
                self.bad(name, value, "a revision tag must be a DNS label",
                         "use lower-case letters, digits and '-', at most 63 characters, "
                         "such as prod-stable")
                good = False
            elif REVISION_SHAPED.match(value) or value == revision:
                self.bad(name, value, "it has the shape of a revision name (1-31-0), which the "
                         "tag's objects would collide with",
                         "name the tag after its role, such as prod-stable or prod-canary")
                good = False
            elif value in RESERVED_TAGS:
                self.bad(name, value, "meshfleet keeps the default tag with the stable revision "
                         "itself", "use another name, such as prod-stable")
                good = False
        if good and self.playbook in ("upgrade", "rollback") and stable == canary:
            self.problems.add(self.cluster, (
                "meshfleet_canary_tag and meshfleet_stable_tag are both %s: the canary tag would "
                "move the stable tag (and every enrolled namespace) to the new revision before the "
                "health gate; give them different names (defaults prod-canary and prod-stable)"
                % show(stable)))

    # ---------------------------------------------------------------- the layout

    def layout(self):
        layout = self.v.get("meshfleet_gateway_layout", "shared")
        if layout not in ("shared", "per_kind"):
            self.bad("meshfleet_gateway_layout", layout, "unknown layout", "use shared or per_kind")
        self.choice("meshfleet_gateway_service_type", SERVICE_TYPES)
        self.choice("meshfleet_mtls_mode", ("PERMISSIVE", "STRICT"))
        self.choice("meshfleet_platform", ("kubernetes", "openshift"))
        for name in ("meshfleet_trust_domain", "meshfleet_cluster_name"):
            value = self.v.get(name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                self.bad(name, value, "it may not be empty", "leave it out for the default or "
                         "give a name")
        network = self.v.get("meshfleet_network")
        if network is not None and not (isinstance(network, str) and len(network) <= 63
                                        and LABEL_VALUE.match(network)):
            self.bad("meshfleet_network", network, "it becomes the label "
                     "topology.istio.io/network", "use at most 63 letters, digits, '-', '_' or "
                     "'.', starting and ending with a letter or digit")
        for name in ("meshfleet_image_hub",):
            if self.has(name) and not isinstance(self.v[name], str):
                self.bad(name, self.v[name], "it is an image registry", "use a string such as "
                         "registry.example.com/istio")
        for name in ("meshfleet_istiod_values", "meshfleet_istiod_cluster_values"):
            if self.has(name) and not isinstance(self.v[name], dict):
                self.bad(name, self.v[name], "raw chart values are a mapping",
                         "write them as a YAML mapping such as {pilot: {env: {...}}}")
        self.gateways()
        self.mesh_resources()

    def choice(self, name, choices):
        if self.has(name) and self.v[name] not in choices:
            self.bad(name, self.v[name], "unknown value", "use one of %s" % ", ".join(choices))

    def list_of(self, name, what, todo):
        """The list in variable `name`, or None when it is not set or not a list (reported)."""
        if not self.has(name):
            return None
        value = self.v[name]
        if not isinstance(value, list):
            self.bad(name, value, "it is a list of %s" % what, todo)
            return None
        return value

    def gateways(self):
        gateways = self.list_of("meshfleet_gateways", "gateways", "write a list of {name, kind} "
                                "such as [{name: istio-ingressgateway, kind: ingress}]")
        if gateways is None:
            return
        seen = {}
        for index, gateway in enumerate(gateways):
            where = "meshfleet_gateways[%d]" % index
            if not isinstance(gateway, dict):
                self.bad(where, gateway, "a gateway is a mapping", "give name and kind")
                continue
            unknown = sorted(set(gateway) - set(GATEWAY_KEYS), key=str)
            if unknown:
                self.bad(where, gateway, "unknown key(s) %s" % ", ".join(map(str, unknown)),
                         "use only %s" % ", ".join(GATEWAY_KEYS))
            name = gateway.get("name")
            if not isinstance(name, str) or len(name) > 63 or not DNS_LABEL.match(name):
                self.bad(where + ".name", name, "the name of the stable Service must be a DNS "
                         "label", "use lower-case letters, digits and '-', such as "
                         "istio-ingressgateway")
            elif name in seen:
                self.bad(where + ".name", name, "meshfleet_gateways[%d] has the same name"
                         % seen[name], "give every gateway its own name")
            else:
                seen[name] = index
            if gateway.get("kind") not in GATEWAY_KINDS:
                self.bad(where + ".kind", gateway.get("kind"), "unknown gateway kind",
                         "use one of %s" % ", ".join(GATEWAY_KINDS))
            if "service_type" in gateway and gateway["service_type"] not in SERVICE_TYPES:
                self.bad(where + ".service_type", gateway["service_type"], "unknown Service "
                         "type", "use one of %s" % ", ".join(SERVICE_TYPES))
            if "replicas" in gateway and not _int_in(gateway["replicas"], 1, self.autoscale_max):
                self.bad(where + ".replicas", gateway["replicas"],
                         "it is the HPA's minimum, which must lie between 1 and the HPA's maximum "
                         "(%d, gateways_autoscale_max)" % self.autoscale_max,
                         "use a whole number from 1 to %d, or raise gateways_autoscale_max"
                         % self.autoscale_max)
            if "namespace" in gateway:
                self.namespace_name(where + ".namespace", gateway["namespace"], system_ok=False)
            if "ports" in gateway:
                self.ports(where + ".ports", gateway["ports"])

    def ports(self, where, ports):
        if not isinstance(ports, list) or not ports:
            self.bad(where, ports, "a Service needs a list of ports",
                     "write [{name: http2, port: 80, targetPort: 8080}], or leave ports out for "
                     "the kind's defaults")
            return
        numbers, names = set(), set()
        for index, port in enumerate(ports):
            at = "%s[%d]" % (where, index)
            if not isinstance(port, dict):
                self.bad(at, port, "a port is a mapping", "give name, port and targetPort")
                continue
            number = port.get("port")
            if not _int_in(number, 1, 65535):
                self.bad(at + ".port", number, "not a TCP/UDP port number",
                         "use a whole number from 1 to 65535")
            elif int(number) in numbers:
                self.bad(at + ".port", number, "another port of this gateway uses it",
                         "give every port its own number")
            else:
                numbers.add(int(number))
            target = port.get("targetPort")
            named = (isinstance(target, str) and not _is_int(target) and len(target) <= 15
                     and DNS_LABEL.match(target))
            if target is not None and not (_int_in(target, 1, 65535) or named):
                self.bad(at + ".targetPort", target, "not a port number or port name",
                         "use a whole number from 1 to 65535 or a container port's name")
            name = port.get("name")
            if name is None and len(ports) > 1:
                self.bad(at + ".name", name, "a Service with several ports needs a name on each",
                         "name the port, such as http2")
            elif name is not None and (not isinstance(name, str) or len(name) > 15
                                       or not DNS_LABEL.match(name)):
                self.bad(at + ".name", name, "a port name is a DNS label of at most 15 "
                         "characters", "use lower-case letters, digits and '-', such as http2")
            elif name is not None and name in names:
                self.bad(at + ".name", name, "another port of this gateway has this name",
                         "give every port its own name")
            elif name is not None:
                names.add(name)
            if port.get("protocol", "TCP") not in PROTOCOLS:
                self.bad(at + ".protocol", port.get("protocol"), "unknown protocol",
                         "use one of %s" % ", ".join(PROTOCOLS))

    def mesh_resources(self):
        value = self.list_of("meshfleet_mesh_resources", "object definitions",
                             "write a list of full definitions (apiVersion, kind, metadata)")
        for index, item in enumerate(value or []):
            meta = item.get("metadata") if isinstance(item, dict) else None
            if not (isinstance(item, dict) and item.get("apiVersion") and item.get("kind")
                    and isinstance(meta, dict) and meta.get("name")):
                self.bad("meshfleet_mesh_resources[%d]" % index, item,
                         "an object definition needs apiVersion, kind and metadata.name",
                         "complete the definition")

    # ---------------------------------------------------------------- namespaces

    def namespace_name(self, where, name, system_ok):
        if not isinstance(name, str) or len(name) > 63 or not DNS_LABEL.match(name):
            self.bad(where, name, "namespace names must be DNS labels",
                     "use lower-case letters, digits and '-'")
            return False
        if name in LAYOUT_NAMESPACES:
            self.bad(where, name, "it is a namespace of Istio's layout, which is never injected",
                     "take it out of the list")
            return False
        if name in SYSTEM_NAMESPACES and not system_ok:
            self.bad(where, name, "it is a Kubernetes system namespace; injecting sidecars into "
                     "its pods can stop the cluster's own components",
                     "take it out of the list, or set meshfleet_enrol_system_namespaces=true if "
                     "you really mean it")
            return False
        return True

    def namespaces(self, name):
        value = self.list_of(name, "namespace names", "write a list such as [shop, cart]")
        if value is None:
            return
        system_ok = str(self.v.get("meshfleet_enrol_system_namespaces", False)).lower() in (
            "true", "yes", "on", "1")
        for index, namespace in enumerate(value):
            self.namespace_name("%s[%d]" % (name, index), namespace, system_ok)

    # ---------------------------------------------------------------- per playbook

    def upgrade_variables(self):
        if self.has("meshfleet_max_minor_jump") and not _int_in(
                self.v["meshfleet_max_minor_jump"], 1, 2):
            self.bad("meshfleet_max_minor_jump", self.v["meshfleet_max_minor_jump"],
                     "Istio supports canary upgrades across one minor, two at most",
                     "use 1 (the default) or 2")
        self.seconds("meshfleet_health_timeout", 1, ("upgrade",))
        self.seconds("meshfleet_prune_after", 0, ("upgrade",))
        self.seconds("meshfleet_canary_wait", 0, ("upgrade",), high=7 * MAX_SECONDS)
        self.namespaces("meshfleet_canary_namespaces")
        contexts = self.v.get("meshfleet_canary_contexts")
        if contexts is not None and not (isinstance(contexts, list) and all(
                (isinstance(c, str) and c) or (isinstance(c, dict) and c.get("context"))
                for c in contexts)):
            self.bad("meshfleet_canary_contexts", contexts, "it lists the canary clusters for "
                     "the canary gate", "write a list of contexts, or of {context, kubeconfig} "
                     "for canaries in other kubeconfig files")

    def run(self):
        self.access()
        self.run_variables()
        needs = []
        if self.playbook == "install":
            facts = self.version("meshfleet_istio_version", required=True)
            self.tags(facts["revision"] if facts else None)
            self.layout()
            self.namespaces("meshfleet_application_namespaces")
            if facts:
                needs.append(facts["version"])
        elif self.playbook == "upgrade":
            facts = self.version("meshfleet_target_version", required=True)
            self.tags(facts["revision"] if facts else None)
            self.layout()
            self.namespaces("meshfleet_application_namespaces")
            self.upgrade_variables()
            if facts:
                needs.append(facts["version"])
        elif self.playbook == "rollback":
            self.tags(None)
            rollback = self.v.get("meshfleet_rollback_revision")
            if rollback and not (isinstance(rollback, str) and DNS_LABEL.match(rollback)):
                self.bad("meshfleet_rollback_revision", rollback, "not a revision name",
                         "use an installed revision such as 1-30-5 (python -m ... status lists "
                         "them), or leave it out")
        return needs


def chart_names(variables):
    names = ["base", "istiod"]
    if variables.get("meshfleet_gateways", [{}]):
        names.append("gateway")
    if variables.get("meshfleet_platform") == "openshift":
        names.append("cni")
    return names


def chart_source_problem(source):
    """What is wrong with a chart source's shape, or None."""
    if not isinstance(source, dict):
        return "a chart source is a mapping"
    kind = source.get("type", "repository")
    if kind == "directory":
        if not isinstance(source.get("path"), str) or not source.get("path"):
            return "a directory source needs a path"
    elif kind in ("repository", "oci"):
        if not isinstance(source.get("url"), str) or not source.get("url"):
            return "a %s source needs a url" % kind
    else:
        return "unknown type %s" % show(kind)
    return None


class ChartIndex(object):
    """Which charts of which version a source holds, read once per source."""

    def __init__(self, fetch=None):
        self._fetch = fetch or _fetch_url
        self._indexes = {}

    def missing(self, source, chart, version):
        """A reason the chart is not available, or None when it is (or cannot be checked)."""
        kind = source.get("type", "repository")
        if kind == "directory":
            path = os.path.join(source["path"], "%s-%s.tgz" % (chart, version))
            return None if os.path.isfile(path) else "%s is not there" % path
        if kind == "oci":
            return None
        url = source["url"].rstrip("/")
        if url not in self._indexes:
            self._indexes[url] = self._read_index(url)
        index = self._indexes[url]
        if isinstance(index, str):
            return index
        versions = [str(e.get("version")) for e in (index.get("entries") or {}).get(chart) or []]
        return None if version in versions else (
            "the repository %s has no %s chart of version %s" % (url, chart, version))

    def _read_index(self, url):
        import yaml  # only needed for repositories

        try:
            text = self._fetch(url + "/index.yaml")
            return yaml.safe_load(text) or {}
        except Exception as error:  # pylint: disable=broad-except
            return "the repository index %s/index.yaml could not be read (%s)" % (url, error)


def _fetch_url(url):
    from ansible.module_utils.urls import open_url

    return open_url(url, timeout=20).read()


def validate(playbook, clusters, charts=None, autoscale_max=None):
    """Messages for every problem of every cluster; [] when the run may start.

    `clusters`: {cluster name: its meshfleet_* variables (templated)}; `autoscale_max`:
    {cluster name: its gateways_autoscale_max} where set."""
    if playbook not in PLAYBOOKS:
        raise ValueError("playbook %r: use one of %s" % (playbook, ", ".join(PLAYBOOKS)))
    problems = Problems()
    charts = charts or ChartIndex()
    wanted = {}
    for cluster, variables in clusters.items():
        limit = (autoscale_max or {}).get(cluster, GATEWAY_AUTOSCALE_MAX)
        check = ClusterCheck(cluster, variables, playbook, problems,
                             _int_or(limit, GATEWAY_AUTOSCALE_MAX))
        versions = check.run()
        if not versions:
            continue
        source = variables.get("meshfleet_chart_source", DEFAULT_CHART_SOURCE)
        why = chart_source_problem(source)
        if why:
            check.bad("meshfleet_chart_source", source, why, "use {type: repository, url: ...}, "
                      "{type: oci, url: ...} or {type: directory, path: ...}")
            continue
        for version in versions:
            for chart in chart_names(variables):
                key = (json.dumps(source, sort_keys=True, default=str), chart, version)
                wanted.setdefault(key, (source, []))[1].append(cluster)
    for (_source, chart, version), (source, users) in wanted.items():
        reason = charts.missing(source, chart, version)
        if reason:
            for cluster in users:
                problems.add(cluster, (
                    "the %s chart of Istio %s is not available from meshfleet_chart_source (%s): "
                    "publish it there or choose a version the source has (%s)" % (
                        chart, version, reason, _version_variable(playbook))))
    return problems.messages()


def _int_or(value, default):
    return int(value) if _is_int(value) else default


def _version_variable(playbook):
    return "meshfleet_target_version" if playbook == "upgrade" else "meshfleet_istio_version"
