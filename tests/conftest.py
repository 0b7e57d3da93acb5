"""The collection's tests: the checkout importable as ansible_collections.meshfleet.istio, and the
order in which the fleet tests run (the fleet fixtures are localfleet.pytest_plugin's)."""

import os

import pytest

from tests.unit.conftest import link_collection

link_collection()


# The slowest test files, slowest first (per-file durations of a CI run, docs/development-checks.md).
# With `--dist loadfile` the workers take files in this order, so the longest files start first and
# the short ones fill the gaps at the end.
SLOWEST_FIRST = (
    # Not slow, but it installs a base chart of its own, which needs a fleet without Istio: a
    # worker's first file runs on a fresh fleet.
    "localfleet/tests/fleet/test_real_api.py",
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


def pytest_collection_modifyitems(config, items):
    """Slowest files first; a file's own tests keep their order (a scenario file's build on
    each other). The IstioOperator engine's fleet tests only with MESHFLEET_OPERATOR_ENGINE=1."""
    items.sort(key=_file_rank)
    deselect_operator_engine(config, items)
    refuse_split_scenarios(config, items)


def deselect_operator_engine(config, items):
    """Their builds (Kubernetes 1.30.3, two operators) would take a cold CI run past its
    budget; docs/development-checks.md says how to run them and what they cost."""
    if os.environ.get("MESHFLEET_OPERATOR_ENGINE") == "1":
        return
    deselected = [item for item in items if item.get_closest_marker("operator_engine")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def refuse_split_scenarios(config, items):
    """A scenario file spread over several pytest-xdist workers would run its steps out of
    order on fleets that never saw the steps before them."""
    dist = getattr(config.option, "dist", "no")
    scenarios = sorted({item.nodeid.split("::", 1)[0] for item in items
                        if item.get_closest_marker("scenario")})
    if dist in ("load", "worksteal") and scenarios:
        raise pytest.UsageError(
            f"{', '.join(scenarios)} {'is a scenario' if len(scenarios) == 1 else 'are scenarios'}"
            f" (pytest.mark.scenario): run with --dist loadfile (hack/test does) so that each "
            f"file's tests stay on one worker, in order")
