"""The controller objects of meshfleet.istio.controller_setup, rendered by Ansible from the example
inputs (the playbook's render-only mode) and validated without a controller:

- every object against the argument spec of the awx.awx module that creates it, captured from the
  module's own main() (awx.awx 24.6.1 from the cache of hack/awx-collection);
- what an argument spec cannot see: names that objects refer to, prompts that workflow nodes rely
  on, AWX's survey schema, the workflow graph, the credential type's injectors;
- that the playbook hands every parameter of the data to its module.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.nodes
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PLAYBOOK = REPO / "playbooks" / "controller_setup.yml"
EXAMPLE = REPO / "extensions" / "controller" / "controller.example.yml"
WRAPPERS = REPO / "extensions" / "controller" / "project"
KINDS = [
    "execution_environment", "credential_type", "credential", "project", "inventory", "host", "group",
    "job_template", "workflow_job_template", "workflow_job_template_node",
]
# AWX's survey question types (awx/main/constants.py SURVEY_TYPE_MAPPING) and the Python types
# their defaults must have.
SURVEY_TYPES = {
    "text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
    "integer": int, "float": (float, int),
}
# A workflow node's prompt field -> the ask_*_on_launch flag of its job template that accepts it.
NODE_PROMPTS = {
    "limit": "ask_limit_on_launch", "job_type": "ask_job_type_on_launch", "inventory": "ask_inventory_on_launch",
    "scm_branch": "ask_scm_branch_on_launch", "job_tags": "ask_tags_on_launch", "skip_tags": "ask_skip_tags_on_launch",
    "diff_mode": "ask_diff_mode_on_launch", "verbosity": "ask_verbosity_on_launch",
    "credentials": "ask_credential_on_launch", "execution_environment": "ask_execution_environment_on_launch",
    "forks": "ask_forks_on_launch", "instance_groups": "ask_instance_groups_on_launch",
    "job_slice_count": "ask_job_slice_count_on_launch", "labels": "ask_labels_on_launch",
    "timeout": "ask_timeout_on_launch",
}


def _load_hack(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "hack" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def awx_collections():
    """The collections directory holding awx.awx (downloaded once by hack/awx_collection.py)."""
    path = _load_hack("awx_collection").ensure(quiet=True)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    return path


def ansible_env(tmp: Path, collections: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CONTROLLER_", "TOWER_"))}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{BIN}:{os.environ.get('PATH', '')}",
    )
    return env


def render(tmp: Path, collections: Path, *extra: str, check=True) -> subprocess.CompletedProcess | dict:
    """Run the playbook's render-only mode; the objects it would create, or the failed process."""
    out = tmp / "objects.json"
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), str(PLAYBOOK), "-e", f"@{EXAMPLE}",
         "-e", f"meshfleet_controller_render_to={out}", *extra],
        capture_output=True, text=True, env=ansible_env(tmp, str(collections)), cwd=tmp, timeout=300,
    )
    if not check:
        return proc
    assert proc.returncode == 0, f"render failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(out.read_text())


# Renders: the example as it is, and a variant with a sliced upgrade, more waves, wrappers at the
# root of the project's repository, an SCM credential and the kubeconfig given as a variable.
VARIANTS = {
    "example": [],
    "sliced-four-waves": [
        "-e", json.dumps({
            "meshfleet_controller_upgrade_slices": 3,
            "meshfleet_controller_playbook_dir": "",
            "meshfleet_controller_project_credential": "git read-only",
            "meshfleet_controller_kubeconfig": "apiVersion: v1\nkind: Config\n",
            "meshfleet_controller_fleet": [
                {"name": "c1", "context": "ctx-c1", "wave": "canary"},
                {"name": "e1", "context": "ctx-e1", "wave": "early"},
                {"name": "c2", "context": "ctx-c2", "wave": "canary", "vars": {"meshfleet_network": "n2"}},
                {"name": "m1", "context": "ctx-m1", "wave": "main"},
                {"name": "m2", "context": "ctx-m2", "wave": "main"},
                {"name": "l1", "context": "ctx-l1", "wave": "late"},
            ],
        }),
    ],
}


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def rendered(request, tmp_path_factory, awx_collections):
    return render(tmp_path_factory.mktemp(f"render-{request.param}"), awx_collections, *VARIANTS[request.param])


@pytest.fixture(scope="session")
def example(tmp_path_factory, awx_collections):
    return render(tmp_path_factory.mktemp("render-example"), awx_collections)


# ---------------------------------------------------------------------------------------------
# The awx.awx modules' own argument specs


class _Captured(Exception):
    def __init__(self, argument_spec, options):
        super().__init__("argument spec captured")
        self.argument_spec = argument_spec
        self.options = options


_SPECS: dict = {}


def module_spec(kind: str) -> tuple[dict, dict]:
    """(argument_spec, validator options) that awx.awx.<kind>'s main() gives ControllerAPIModule,
    with the authentication options every controller module adds to it."""
    if kind not in _SPECS:
        module = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{kind}")
        controller_api = importlib.import_module("ansible_collections.awx.awx.plugins.module_utils.controller_api")

        class Capture:
            def __init__(self, argument_spec=None, **options):
                raise _Captured(argument_spec, options)

        original = module.ControllerAPIModule
        module.ControllerAPIModule = Capture
        try:
            with pytest.raises(_Captured) as captured:
                module.main()
        finally:
            module.ControllerAPIModule = original
        spec = dict(controller_api.ControllerModule.AUTH_ARGSPEC)
        spec.update(captured.value.argument_spec)
        options = {k: v for k, v in captured.value.options.items()
                   if k in ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")}
        _SPECS[kind] = (spec, options)
    return _SPECS[kind]


def validation_errors(kind: str, params: dict) -> list[str]:
    spec, options = module_spec(kind)
    result = ArgumentSpecValidator(spec, **options).validate(json.loads(json.dumps(params)))
    return result.error_messages


def test_every_object_passes_its_modules_argument_spec(rendered, awx_collections):
    assert list(rendered) and set(rendered) == set(KINDS), f"kinds rendered: {sorted(rendered)}"
    errors = []
    for kind in KINDS:
        assert rendered[kind], f"no {kind} rendered"
        for obj in rendered[kind]:
            label = obj.get("name") or obj.get("identifier")
            errors += [f"awx.awx.{kind} {label!r}: {e}" for e in validation_errors(kind, obj)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("kind, change, expected", [
    ("job_template", {"ask_limits_on_launch": True}, "ask_limits_on_launch. Supported parameters include"),
    ("job_template", {"job_slice_count": "several"}, "job_slice_count"),
    ("job_template", {"job_type": "dry-run"}, "value of job_type must be one of"),
    ("credential", {"credential_type": None}, "missing required arguments: credential_type"),
    ("inventory", {"variables": ["not", "a", "dict"]}, "variables"),
    ("workflow_job_template_node", {"unified_job_template": "meshfleet status",
                                    "approval_node": {"name": "x"}}, "mutually exclusive"),
    ("group", {"hosts": "prod-eu1"}, None),  # a string is a one-item list for type=list: accepted
])
def test_the_validator_catches_bad_objects(example, kind, change, expected):
    obj = dict(example[kind][-1])
    assert validation_errors(kind, obj) == []
    for key, value in change.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    errors = validation_errors(kind, obj)
    if expected is None:
        assert errors == []
    else:
        assert any(expected in e for e in errors), errors


# ---------------------------------------------------------------------------------------------
# The playbook hands every parameter of the data to the module


def _setup_tasks():
    (play,) = yaml.safe_load(PLAYBOOK.read_text())
    tasks = {}
    for task in play["tasks"]:
        modules = [k for k in task if k.startswith("awx.awx.")]
        if modules:
            (module,) = modules
            tasks[module.split(".")[-1]] = task
    return play, tasks


def test_the_playbook_passes_every_parameter_the_data_uses(rendered):
    play, tasks = _setup_tasks()
    assert play["vars_files"] == ["vars/controller_objects.yml"]
    assert list(tasks) == KINDS, "one task per kind, in the order objects depend on each other"
    problems = []
    for kind in KINDS:
        task = tasks[kind]
        args = task[f"awx.awx.{kind}"]
        if task["loop"] != "{{ _mfc_objects.%s }}" % kind:
            problems.append(f"{kind}: loops over {task['loop']!r}")
        for key, value in args.items():
            if not re.fullmatch(r"\{\{ item\.%s( \| default\(omit\))? \}\}" % re.escape(key), value):
                problems.append(f"{kind}: parameter {key} is {value!r}, not item.{key}")
        used = {key for obj in rendered[kind] for key in obj}
        if used - set(args):
            problems.append(f"{kind}: the task drops {sorted(used - set(args))}")
        required = [k for k, v in module_spec(kind)[0].items() if v.get("required")]
        problems += [f"{kind}: required {k} passed with a default" for k in required if "default(omit)" in args.get(k, "")]
    assert not problems, "\n".join(problems)
    assert tasks["credential"].get("no_log") is True, "the credential task handles the kubeconfig: no_log"


# ---------------------------------------------------------------------------------------------
# References, prompts and surveys


def _by_name(rendered, kind, key="name"):
    return {obj[key]: obj for obj in rendered[kind]}


def test_every_referenced_name_is_defined(rendered):
    ees = _by_name(rendered, "execution_environment")
    projects = _by_name(rendered, "project")
    inventories = _by_name(rendered, "inventory")
    credentials = _by_name(rendered, "credential")
    job_templates = _by_name(rendered, "job_template")
    workflows = _by_name(rendered, "workflow_job_template")
    organizations = {obj["organization"] for kind in KINDS for obj in rendered[kind] if "organization" in obj}
    problems = []
    assert len(organizations) == 1, organizations
    for project in projects.values():
        if project.get("default_environment") not in ees:
            problems.append(f"project {project['name']}: EE {project.get('default_environment')!r}")
    for credential in credentials.values():
        if credential["credential_type"] not in _by_name(rendered, "credential_type"):
            problems.append(f"credential {credential['name']}: type {credential['credential_type']!r}")
    hosts_of = {}
    for host in rendered["host"]:
        if host["inventory"] not in inventories:
            problems.append(f"host {host['name']}: inventory {host['inventory']!r}")
        hosts_of.setdefault(host["inventory"], set()).add(host["name"])
    for group in rendered["group"]:
        if group["inventory"] not in inventories:
            problems.append(f"group {group['name']}: inventory {group['inventory']!r}")
        missing = set(group.get("hosts", [])) - hosts_of.get(group["inventory"], set())
        if missing:
            problems.append(f"group {group['name']}: hosts {sorted(missing)} not in its inventory")
    for jt in job_templates.values():
        for key, known in (("project", projects), ("inventory", inventories), ("execution_environment", ees)):
            if jt.get(key) not in known:
                problems.append(f"job template {jt['name']}: {key} {jt.get(key)!r}")
        problems += [f"job template {jt['name']}: credential {c!r}" for c in jt.get("credentials", []) if c not in credentials]
    for node in rendered["workflow_job_template_node"]:
        if node["workflow_job_template"] not in workflows:
            problems.append(f"node {node['identifier']}: workflow {node['workflow_job_template']!r}")
        if "unified_job_template" in node and node["unified_job_template"] not in {**job_templates, **workflows}:
            problems.append(f"node {node['identifier']}: unified_job_template {node['unified_job_template']!r}")
    assert not problems, "\n".join(problems)


def test_job_templates_run_the_wrapper_playbooks(rendered):
    for jt in rendered["job_template"]:
        playbook = Path(jt["playbook"])
        assert playbook.parent in (Path("."), Path("extensions/controller/project")), playbook
        wrapper = yaml.safe_load((WRAPPERS / playbook.name).read_text())
        assert wrapper == [{"name": wrapper[0]["name"],
                            "ansible.builtin.import_playbook": f"meshfleet.istio.{playbook.stem}"}]
        assert (REPO / "playbooks" / playbook.name).is_file()


def survey_schema_errors(survey: dict) -> list[str]:
    """What AWX's survey_spec endpoint would refuse (rules of JobTemplateSurveySpec)."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append(f"{field} missing or not a {kind.__name__}")
    if errors:
        return errors
    if not survey["spec"]:
        errors.append("spec has no questions")
    seen = set()
    for i, q in enumerate(survey["spec"]):
        if not isinstance(q, dict):
            errors.append(f"question {i} is not an object")
            continue
        for field, kind in (("type", str), ("question_name", str), ("variable", str), ("required", bool)):
            if not isinstance(q.get(field), kind):
                errors.append(f"question {i}: {field} missing or not a {kind.__name__}")
        if not isinstance(q.get("question_description"), str):
            errors.append(f"question {i}: no question_description")
        variable, qtype = q.get("variable"), q.get("type")
        if variable in seen:
            errors.append(f"question {i}: variable {variable} twice")
        seen.add(variable)
        if isinstance(variable, str) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
            errors.append(f"question {i}: {variable!r} is not a variable name")
        if qtype not in SURVEY_TYPES:
            errors.append(f"question {i}: type {qtype!r} not one of {sorted(SURVEY_TYPES)}")
            continue
        if q.get("default", "") != "" and not isinstance(q["default"], SURVEY_TYPES[qtype]):
            errors.append(f"question {i}: default {q['default']!r} is not a {qtype}")
        errors += [f"question {i}: {k} is not an integer" for k in ("min", "max")
                   if q.get(k) is not None and not isinstance(q[k], int)]
        if qtype in ("multiplechoice", "multiselect"):
            choices = q.get("choices")
            if isinstance(choices, str):
                choices = [c for c in choices.splitlines() if c.strip()]
            if not choices or not all(isinstance(c, str) for c in choices):
                errors.append(f"question {i}: {qtype} needs choices")
                continue
            defaults = q.get("default", [])
            defaults = defaults.splitlines() if isinstance(defaults, str) else defaults
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append(f"question {i}: one default only")
            errors += [f"question {i}: default {d!r} not a choice" for d in defaults if d not in choices]
    return errors


def answer_errors(question: dict, value) -> list[str]:
    """What AWX says of an answer to a survey question (its survey element validation)."""
    qtype, name = question["type"], question["variable"]
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"{name}: {value!r} is not a string"]
        if question.get("min") not in ("", None) and len(value) < int(question["min"]):
            return [f"{name}: {value!r} shorter than {question['min']}"]
        if question.get("max") not in ("", None) and len(value) > int(question["max"]):
            return [f"{name}: {value!r} longer than {question['max']}"]
    elif qtype == "multiplechoice" and value not in question["choices"]:
        return [f"{name}: {value!r} not one of {question['choices']}"]
    elif qtype == "multiselect" and (not isinstance(value, list) or set(value) - set(question["choices"])):
        return [f"{name}: {value!r} not a list of {question['choices']}"]
    elif qtype == "integer" and type(value) is not int:
        return [f"{name}: {value!r} is not an integer"]
    return []


def test_surveys_follow_awxs_survey_schema(rendered):
    problems = []
    templates = rendered["job_template"] + rendered["workflow_job_template"]
    for template in templates:
        if template.get("survey_enabled"):
            problems += [f"{template['name']}: {e}" for e in survey_schema_errors(template.get("survey_spec") or {})]
        elif template.get("survey_spec"):
            problems.append(f"{template['name']}: a survey that is not enabled")
    assert not problems, "\n".join(problems)
    surveyed = {t["name"]: [q["variable"] for q in t["survey_spec"]["spec"]] for t in templates if t.get("survey_enabled")}
    assert surveyed == {
        "meshfleet install": ["meshfleet_hosts"],
        "meshfleet upgrade": ["meshfleet_target_version", "meshfleet_hosts"],
        "meshfleet rollback": ["meshfleet_hosts", "meshfleet_rollback_revision"],
        "meshfleet canary upgrade": ["meshfleet_target_version"],
    }


@pytest.mark.parametrize("survey, expected", [
    ({"name": "s", "description": "d", "spec": []}, "no questions"),
    ({"name": "s", "spec": [{}]}, "description missing"),
    ({"name": "s", "description": "d", "spec": [{"type": "select", "question_name": "q", "question_description": "",
                                                 "variable": "v", "required": True}]}, "type 'select'"),
    ({"name": "s", "description": "d", "spec": [{"type": "multiplechoice", "question_name": "q",
                                                 "question_description": "", "variable": "v", "required": True,
                                                 "choices": ["a"], "default": "b"}]}, "not a choice"),
    ({"name": "s", "description": "d", "spec": [{"type": "text", "question_name": "q", "question_description": "",
                                                 "variable": "v", "required": "yes"}]}, "required missing or not a bool"),
])
def test_the_survey_check_catches_bad_surveys(survey, expected):
    assert any(expected in e for e in survey_schema_errors(survey)), survey_schema_errors(survey)


def node_prompt_errors(node: dict, templates: dict, workflow: dict) -> list[str]:
    """What AWX refuses when a node sets prompts its job template does not ask for (required
    survey answers may come from the workflow, as AWX allows for nodes)."""
    if "unified_job_template" not in node:
        return []
    jt = templates[node["unified_job_template"]]
    questions = {q["variable"]: q for q in (jt.get("survey_spec") or {}).get("spec", [])} if jt.get("survey_enabled") else {}
    errors = [f"{node['identifier']}: {field} without {flag}" for field, flag in NODE_PROMPTS.items()
              if field in node and not jt.get(flag)]
    for key, value in (node.get("extra_data") or {}).items():
        if key in questions:
            errors += [f"{node['identifier']}: {e}" for e in answer_errors(questions[key], value)]
        elif not jt.get("ask_variables_on_launch"):
            errors.append(f"{node['identifier']}: extra_data {key} is neither asked for nor in the survey")
    # Workflow variables (its survey) override each node's extra_data of the same name.
    wf_vars = {q["variable"] for q in workflow.get("survey_spec", {}).get("spec", [])} if workflow.get("survey_enabled") else set()
    errors += [f"{node['identifier']}: {key} would be overridden by the workflow's survey"
               for key in set(node.get("extra_data") or {}) & wf_vars]
    return errors


def test_workflow_nodes_only_pass_what_their_templates_accept(rendered):
    templates = {**_by_name(rendered, "job_template"), **_by_name(rendered, "workflow_job_template")}
    workflows = _by_name(rendered, "workflow_job_template")
    problems = []
    for node in rendered["workflow_job_template_node"]:
        problems += node_prompt_errors(node, templates, workflows[node["workflow_job_template"]])
    assert not problems, "\n".join(problems)
    # The survey of the workflow itself supplies what the upgrade requires.
    upgrade = templates["meshfleet upgrade"]
    required = {q["variable"] for q in upgrade["survey_spec"]["spec"] if q["required"] and "default" not in q}
    wf_vars = {q["variable"] for q in workflows["meshfleet canary upgrade"]["survey_spec"]["spec"]}
    assert required <= wf_vars


@pytest.mark.parametrize("template_change, change, expected", [
    ({"ask_limit_on_launch": False}, {"limit": "canary"}, "limit without ask_limit_on_launch"),
    ({}, {"extra_data": {"meshfleet_hosts": "canary:wave9"}}, "not one of"),
    ({}, {"extra_data": {"meshfleet_target_version": "1.31.1"}}, "overridden by the workflow's survey"),
    ({"ask_variables_on_launch": False}, {"extra_data": {"meshfleet_serial": 1}}, "neither asked for nor in the survey"),
])
def test_the_prompt_check_catches_bad_nodes(example, template_change, change, expected):
    templates = {**_by_name(example, "job_template"), **_by_name(example, "workflow_job_template")}
    workflow = example["workflow_job_template"][0]
    node = _by_name(example, "workflow_job_template_node", "identifier")["upgrade-canary"]
    assert node_prompt_errors(node, templates, workflow) == []
    node = dict(node, **change)
    templates["meshfleet upgrade"] = dict(templates["meshfleet upgrade"], **template_change)
    assert any(expected in e for e in node_prompt_errors(node, templates, workflow))
    status = dict(_by_name(example, "workflow_job_template_node", "identifier")["status"],
                  extra_data={"meshfleet_report_dir": "/tmp/r"})
    assert any("neither asked for nor in the survey" in e for e in node_prompt_errors(status, templates, workflow))


# ---------------------------------------------------------------------------------------------
# The workflow


def test_workflow_graph_is_canary_approval_waves_status_with_rollbacks(rendered):
    nodes = rendered["workflow_job_template_node"]
    ids = [n["identifier"] for n in nodes]
    assert len(ids) == len(set(ids)), f"identifiers not unique: {ids}"
    created = set()
    for node in nodes:  # created in list order, and the module links to existing nodes only
        for link in ("success_nodes", "failure_nodes", "always_nodes"):
            unknown = set(node.get(link, [])) - created
            assert not unknown, f"{node['identifier']}.{link} -> {sorted(unknown)}: not defined before it"
        created.add(node["identifier"])
    by_id = {n["identifier"]: n for n in nodes}
    children = {i for n in nodes for link in ("success_nodes", "failure_nodes", "always_nodes") for i in n.get(link, [])}
    assert set(ids) - children == {"upgrade-canary"}, "one root: the canary upgrade"

    groups = [g["name"] for g in rendered["group"]]
    later = ":".join(groups[1:])
    assert groups[0] == "canary" and later

    def runs(identifier):
        return by_id[identifier].get("unified_job_template"), (by_id[identifier].get("extra_data") or {}).get("meshfleet_hosts")

    canary = by_id["upgrade-canary"]
    assert runs("upgrade-canary") == ("meshfleet upgrade", "canary")
    (approval,) = canary["success_nodes"]
    assert "approval_node" in by_id[approval] and "unified_job_template" not in by_id[approval]
    (waves,) = by_id[approval]["success_nodes"]
    assert runs(waves) == ("meshfleet upgrade", later)
    (status,) = by_id[waves]["success_nodes"]
    assert runs(status) == ("meshfleet status", None)
    for upgrade, hosts in (("upgrade-canary", "canary"), (waves, later)):
        (rollback,) = by_id[upgrade]["failure_nodes"]
        assert runs(rollback) == ("meshfleet rollback", hosts), f"{upgrade} fails over to {rollback}"
        assert by_id[rollback]["always_nodes"] == [status], "the report follows a rollback too"
        assert by_id[rollback]["extra_data"]["meshfleet_max_fail_percentage"] == 100, "each cluster on its own"
    jts = _by_name(rendered, "job_template")
    assert jts["meshfleet status"]["playbook"].endswith("status.yml")
    serial = by_id[waves]["extra_data"].get("meshfleet_serial")
    if jts["meshfleet upgrade"]["job_slice_count"] == 1:
        sizes = [len(g["hosts"]) for g in rendered["group"][1:]]
        assert serial == sizes, "one batch per wave"
        assert jts["meshfleet upgrade"]["extra_vars"] == {}
    else:
        assert serial is None and jts["meshfleet upgrade"]["allow_simultaneous"] is True
        # slices without the canary clusters wait for the canary gate (docs/upgrades.md)
        assert jts["meshfleet upgrade"]["extra_vars"]["meshfleet_canary_wait"] > 0


# ---------------------------------------------------------------------------------------------
# The inventory and the credential type


def test_inventory_has_one_host_per_cluster_and_wave_groups(rendered):
    (inventory,) = rendered["inventory"]
    variables = inventory["variables"]
    hosts = {h["name"]: h for h in rendered["host"]}
    groups = {g["name"]: g["hosts"] for g in rendered["group"]}
    assert sorted(h for members in groups.values() for h in members) == sorted(hosts), "each cluster in one wave"
    assert list(groups)[0] == "canary"
    canary_contexts = [hosts[h]["variables"]["meshfleet_context"] for h in groups["canary"]]
    assert variables["meshfleet_canary_contexts"] == canary_contexts and canary_contexts
    assert variables["ansible_connection"] == "local"
    assert variables["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert all(h["variables"]["meshfleet_context"] for h in hosts.values())
    assert "meshfleet_kubeconfig" not in json.dumps(rendered["host"] + rendered["inventory"]), \
        "the kubeconfig path comes from the credential"


def injector_errors(credential_type: dict) -> list[str]:
    """References of the injector templates to anything but the type's inputs and the files it writes."""
    inputs = {f["id"] for f in credential_type["inputs"]["fields"]}
    injectors = credential_type["injectors"]
    files = {k.split(".", 1)[1] for k in injectors.get("file", {}) if k.startswith("template.")}
    env = jinja2.Environment()
    errors = []
    for section, templates in injectors.items():
        for key, template in templates.items():
            tree = env.parse(template)
            for name in tree.find_all(jinja2.nodes.Name):
                if name.name not in inputs | {"tower", "awx"}:
                    errors.append(f"{section}.{key}: {name.name} is not an input")
            for attr in tree.find_all(jinja2.nodes.Getattr):
                if isinstance(attr.node, jinja2.nodes.Getattr) and isinstance(attr.node.node, jinja2.nodes.Name) \
                        and attr.node.node.name in ("tower", "awx") and attr.node.attr == "filename" \
                        and attr.attr not in files:
                    errors.append(f"{section}.{key}: no file template.{attr.attr}")
            if section == "file" and "filename" in template:
                errors.append(f"{section}.{key}: a file cannot name files")
    return errors


def test_credential_type_injects_the_kubeconfig_as_a_file(rendered):
    (ctype,) = rendered["credential_type"]
    assert ctype["name"] == "meshfleet kubeconfig" and ctype["kind"] == "cloud"
    (field,) = ctype["inputs"]["fields"]
    assert field == {**field, "id": "kubeconfig", "type": "string", "secret": True, "multiline": True}
    assert ctype["inputs"]["required"] == ["kubeconfig"]
    assert ctype["injectors"] == {
        "file": {"template.kubeconfig": "{{ kubeconfig }}"},
        "env": {"K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}"},
        "extra_vars": {"meshfleet_kubeconfig": "{{ tower.filename.kubeconfig }}"},
    }
    assert injector_errors(ctype) == []
    (credential,) = rendered["credential"]
    assert set(credential["inputs"]) == {"kubeconfig"}


def test_the_injector_check_catches_unknown_references(example):
    ctype = json.loads(json.dumps(example["credential_type"][0]))
    ctype["injectors"]["env"]["K8S_AUTH_API_KEY"] = "{{ token }}"
    ctype["injectors"]["extra_vars"]["other"] = "{{ tower.filename.ca }}"
    assert sorted(injector_errors(ctype)) == ["env.K8S_AUTH_API_KEY: token is not an input",
                                               "extra_vars.other: no file template.ca"]


# ---------------------------------------------------------------------------------------------
# The playbook itself


def test_the_kubeconfig_never_reaches_the_rendered_objects(tmp_path, awx_collections):
    kubeconfig = tmp_path / "fleet.yaml"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: s3cr3t-t0ken}\n")
    objects = render(tmp_path, awx_collections, "-e", f"meshfleet_controller_kubeconfig_file={kubeconfig}")
    assert objects["credential"][0]["inputs"]["kubeconfig"].startswith("(the kubeconfig")
    assert "s3cr3t-t0ken" not in json.dumps(objects)


@pytest.mark.parametrize("fleet, message", [
    ([{"name": "a", "context": "a", "wave": "wave1"}], "no cluster has wave canary"),
    ([{"name": "a", "context": "a", "wave": "canary"}], "at least one later wave"),
    ([{"name": "a", "context": "a", "wave": "canary"}, {"name": "a", "context": "b", "wave": "w"}], "names are not unique"),
    ([{"name": "a", "context": "a", "wave": "canary"}, {"name": "b", "context": "b", "wave": "wave-1"}], "group names"),
    ([{"name": "a", "wave": "canary"}], "each with name, context"),
])
def test_bad_fleets_are_refused_before_anything_is_written(tmp_path, awx_collections, fleet, message):
    proc = render(tmp_path, awx_collections, "-e", json.dumps({"meshfleet_controller_fleet": fleet}), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "objects.json").exists()


def test_syntax_check_of_the_setup_and_wrapper_playbooks(tmp_path, awx_collections):
    collections = _load_hack("collection_env").prepare(quiet=True)
    env = ansible_env(tmp_path, f"{collections}:{awx_collections}")
    for playbook in [PLAYBOOK, *sorted(WRAPPERS.glob("*.yml"))]:
        proc = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(playbook)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, f"{playbook}:\n{proc.stdout}\n{proc.stderr}"
    assert sorted(p.stem for p in WRAPPERS.glob("*.yml")) == ["install", "rollback", "status", "upgrade"]
