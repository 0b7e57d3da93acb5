"""The module runner: what a module exits or fails with, and what reaches its work."""

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.run_lock import LockHeld


class Exited(Exception):
    pass


class FakeModule(object):
    """Records how the runner ends the module, as AnsibleModule's exits do: by raising."""

    def __init__(self, check_mode=False, params=None, fails_from_exceptions=True):
        self.check_mode = check_mode
        self.params = params or {"context": "kind-east"}
        self.ended = None
        if fails_from_exceptions:
            self.fail_from_exception = self._fail_from_exception

    def exit_json(self, **result):
        self.ended = ("exit", result)
        raise Exited()

    def fail_json(self, **result):
        self.ended = ("fail", result)
        raise Exited()

    def _fail_from_exception(self, error):
        self.fail_json(msg=str(error), exception="traceback of %r" % error)


def connect(module):
    return {"cluster of": module}


def ended(module, work, **kwargs):
    with pytest.raises(Exited):
        run_module(module, work, connect=kwargs.get("connect", connect))
    return module.ended


def test_the_work_result_is_the_module_result():
    module = FakeModule()
    result = ended(module, lambda m, cluster: dict(changed=True, cluster=cluster))
    assert result == ("exit", {"changed": True, "cluster": {"cluster of": module}})


def test_a_meshfleet_error_fails_with_its_message_and_partial_result():
    def work(module, cluster):
        raise MeshfleetError("timed out: shop/Deployment/cart", changed=True,
                             restarted=["shop/Deployment/web"])

    assert ended(FakeModule(), work) == ("fail", {
        "msg": "timed out: shop/Deployment/cart", "changed": True,
        "restarted": ["shop/Deployment/web"]})


def test_a_lock_error_names_the_cluster():
    def work(module, cluster):
        raise LockHeld("the run lock is held by run-7")

    assert ended(FakeModule(), work) == ("fail", {"msg": "kind-east: the run lock is held by run-7"})


def test_an_unexpected_exception_fails_with_its_traceback():
    def work(module, cluster):
        raise KeyError("spec")

    kind, result = ended(FakeModule(), work)
    assert kind == "fail" and result["msg"] == "'spec'" and "KeyError" in result["exception"]


def test_a_failed_connection_fails_the_module():
    def refuse(module):
        raise MeshfleetError("kind-east: cannot reach the API server")

    assert ended(FakeModule(), lambda m, c: {}, connect=refuse) == (
        "fail", {"msg": "kind-east: cannot reach the API server"})


def test_a_plain_ansible_module_keeps_the_traceback_of_an_unexpected_exception():
    def work(module):
        raise KeyError("spec")

    with pytest.raises(KeyError):
        run_module(FakeModule(fails_from_exceptions=False), work, connect=None)


def test_check_mode_reaches_the_connection_and_the_work():
    seen = []

    def connect_seeing(module):
        seen.append(("connect", module.check_mode))
        return "cluster"

    def work(module, cluster):
        seen.append(("work", module.check_mode))
        return dict(changed=True)

    assert ended(FakeModule(check_mode=True), work, connect=connect_seeing) == (
        "exit", {"changed": True})
    assert seen == [("connect", True), ("work", True)]


def test_without_a_connection_the_work_gets_the_module_only():
    module = FakeModule()
    assert ended(module, lambda m: dict(changed=False, same=m is module), connect=None) == (
        "exit", {"changed": False, "same": True})
