"""The release's own istioctl as the judge of what meshfleet wrote: the tag list, which
injector serves each namespace, `analyze` and `x precheck`, read from a live cluster of the
fleet. istioctl is built with the fleet's other binaries (`python -m localfleet build`)."""

import json
import re
import subprocess

from localfleet import gobuild, versions

ISTIO_NAMESPACE = "istio-system"
# The injector hooks whose namespaceSelector decides which namespaces a hook injects.
NAMESPACE_HOOK_HEADER = "NAMESPACES"


def istioctl_path():
    return str(gobuild.istio_binary(versions.ISTIO_DEFAULT, "istioctl"))


def istioctl(fleet, cluster, *args, check=True):
    cmd = [istioctl_path(), "--kubeconfig", str(fleet.kubeconfig), "--context", cluster,
           "--istioNamespace", ISTIO_NAMESPACE, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[5:])} on {cluster} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def tags(fleet, cluster):
    """{tag: revision} as `istioctl tag list` sees it (webhooks and tag Services both)."""
    out = istioctl(fleet, cluster, "tag", "list", "-o", "json").stdout
    if out.startswith("No Istio revision tags found"):
        return {}
    return {entry["tag"]: entry["revision"] for entry in json.loads(out) if entry["tag"]}


def injectors(fleet, cluster):
    """`istioctl x injector list`, read back as {namespace: [hooks that auto-inject it]} (its
    second table, which reads only the namespace-level injector webhooks) and
    {namespace: the revision istioctl says injects it} (`MISSING/...` when no hook does)."""
    out = istioctl(fleet, cluster, "x", "injector", "list").stdout
    revision_of, hooks_of = {}, {}
    table = None
    for line in out.splitlines():
        cells = line.split()
        if not cells:
            continue
        if cells[0] == "NAMESPACE":
            table = "namespaces"
        elif cells[0] == NAMESPACE_HOOK_HEADER:
            table = "hooks"
        elif table == "namespaces" and len(cells) >= 2:
            revision_of[cells[0]] = cells[1]
        elif table == "hooks" and not line.startswith("DOES NOT AUTOINJECT"):
            hooks_of.setdefault(cells[0], []).append(cells[1])
    return hooks_of, revision_of


def injection_problems(fleet, cluster, asking):
    """What istioctl finds wrong with injection: a namespace of `asking` (those whose labels ask
    for injection) that no hook auto-injects or that more than one does, and any namespace
    istioctl reports as MISSING its injector."""
    hooks_of, revision_of = injectors(fleet, cluster)
    problems = [f"{ns}: {revision}" for ns, revision in sorted(revision_of.items())
                if revision.startswith("MISSING/")]
    problems += [f"{ns}: auto-injected by {len(hooks_of.get(ns, []))} hooks "
                 f"({', '.join(hooks_of.get(ns, [])) or 'none'})"
                 for ns in sorted(asking) if len(hooks_of.get(ns, [])) != 1]
    problems += [f"{ns}: auto-injected by {', '.join(hooks)} without asking for injection"
                 for ns, hooks in sorted(hooks_of.items()) if ns not in asking]
    return problems


def analyze(fleet, cluster, revision):
    """Every warning and error `istioctl analyze -A` raises, judged with that revision's mesh
    config, as 'CODE (Kind namespace/name) message'."""
    proc = istioctl(fleet, cluster, "analyze", "--all-namespaces", "--revision", revision,
                    "--output", "json", "--output-threshold", "Warning", check=False)
    if proc.returncode not in (0, 79):  # 79: analyze found errors, reported in the output
        raise AssertionError(f"istioctl analyze on {cluster} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    messages = json.loads(proc.stdout or "[]")
    return [f"{m['code']} ({m.get('origin', '?')}) {m['message']}" for m in messages
            if m.get("level") in ("Warning", "Error")]


def precheck(fleet, cluster):
    """`istioctl x precheck`: an empty list when it finds the cluster safe to upgrade."""
    proc = istioctl(fleet, cluster, "x", "precheck", "--output", "json", check=False)
    if proc.returncode == 0:
        return []
    found = re.search(r"\[.*\]", proc.stdout, re.S)
    messages = json.loads(found.group(0)) if found else []
    return [f"{m['code']} ({m.get('origin', '?')}) {m['message']}" for m in messages] or [
        f"istioctl x precheck exited {proc.returncode}: {proc.stdout}{proc.stderr}"]


def asking_namespaces(api):
    from kubernetes import client

    from tests.playbooks.mesh_watch import asks_for_injection
    return {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items
            if ns.status.phase != "Terminating" and asks_for_injection(ns.metadata.labels or {})}


def verdict(fleet, cluster, api, tags_expected, revision, allowed=()):
    """Everything istioctl objects to on one cluster: tags other than `tags_expected`, injection
    problems, and analyze findings (judged with `revision`'s mesh config) whose code is not in
    `allowed`. An empty list is istioctl's approval."""
    found = []
    seen_tags = tags(fleet, cluster)
    if seen_tags != tags_expected:
        found.append(f"tag list {seen_tags} != {tags_expected}")
    found += injection_problems(fleet, cluster, asking_namespaces(api))
    found += [m for m in analyze(fleet, cluster, revision) if m.split(" ", 1)[0] not in allowed]
    return [f"{cluster}: {problem}" for problem in found]


def rendered_injection(fleet, cluster, api, revision, pod, workdir):
    """The pod as the release's own injection template renders it with what meshfleet wrote:
    `istioctl kube-inject` offline, from the revision's injector and mesh ConfigMaps read from
    the cluster. Returns (the injected pod, the warnings istioctl printed)."""
    import yaml
    from kubernetes import client

    core = client.CoreV1Api(api)
    injector = core.read_namespaced_config_map(f"istio-sidecar-injector-{revision}",
                                               ISTIO_NAMESPACE).data
    mesh = core.read_namespaced_config_map(f"istio-{revision}", ISTIO_NAMESPACE).data["mesh"]
    files = {"config": injector["config"], "values": injector["values"], "mesh": mesh,
             "pod.yaml": yaml.safe_dump(pod)}
    for name, text in files.items():
        (workdir / name).write_text(text)
    proc = istioctl(fleet, cluster, "kube-inject", "-f", str(workdir / "pod.yaml"),
                    "--injectConfigFile", str(workdir / "config"),
                    "--valuesFile", str(workdir / "values"),
                    "--meshConfigFile", str(workdir / "mesh"))
    warnings = [line for line in proc.stderr.splitlines() if "\twarn\t" in line or "\terror\t" in line]
    injected = next(doc for doc in yaml.safe_load_all(proc.stdout) if doc)
    return injected, warnings
