"""Every adapter and its in-memory fake offer each member of their port, with the port's parameters.

The ports are structural (``typing.Protocol``): nothing inherits from them, so this is where a renamed
parameter or a missing method in an adapter or a fake is caught.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from chalicelib import ports
from chalicelib.adapters import memory
from chalicelib.adapters import slack as slack_module
from chalicelib.adapters.archive import Archive
from chalicelib.adapters.cloudtrail import LookupClient, LookupStats
from chalicelib.adapters.metrics import EmfMetrics
from chalicelib.adapters.organizations import OrganizationReader
from chalicelib.adapters.queues import Message, Queue
from chalicelib.adapters.secrets import Secret, SecretReader
from chalicelib.adapters.state import StateTable
from chalicelib.bootstrap import Deps
from chalicelib.memory_deps import MemoryDeps, memory_environment

CLOCK = memory.ManualClock()


def implementations() -> list[tuple[type, Any]]:
    """(port, an object that must satisfy it) for every adapter, fake and value type."""
    env = memory_environment()
    return [
        (ports.ReceivedMessage, Message("{}", "r", "m", 1, {})),
        (ports.MessageQueue, Queue(None, "https://sqs/q")),
        (ports.MessageQueue, memory.MemoryQueue("q", CLOCK)),
        (ports.ObjectArchive, Archive(None, "bucket")),
        (ports.ObjectArchive, memory.MemoryArchive("bucket")),
        (ports.StateStore, StateTable(None, "table")),
        (ports.StateStore, memory.MemoryState()),
        (ports.LookupCounters, LookupStats()),
        (ports.TrailLookups, LookupClient(lambda region: None, CLOCK, CLOCK.sleep)),
        (ports.TrailLookups, memory.MemoryLookups()),
        (ports.SecretValue, Secret("x")),
        (ports.SecretSource, SecretReader(lambda service: None, CLOCK)),
        (ports.SecretSource, memory.MemorySecrets()),
        (ports.OrganizationDirectory, OrganizationReader(lambda: None, memory.MemoryState(), CLOCK)),
        (ports.OrganizationDirectory, memory.MemoryOrganization()),
        (ports.SlackPoster, slack_module),
        (ports.SlackPoster, memory.RecordingSlack()),
        (ports.MetricSink, EmfMetrics("dev", CLOCK)),
        (ports.MetricSink, memory.MemoryMetrics()),
        (ports.StageEnvironment, env),
        (ports.StageDeps, Deps(env)),
        (ports.StageDeps, MemoryDeps()),
    ]


def members(port: type) -> tuple[dict[str, inspect.Signature], set[str]]:
    """The port's methods (with signatures) and its data members (attributes and properties)."""
    methods: dict[str, inspect.Signature] = {}
    data = set(getattr(port, "__annotations__", {}))
    for name, value in vars(port).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            data.add(name)
        elif inspect.isfunction(value):
            methods[name] = inspect.signature(value)
    return methods, data


def parameters(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    found = [(p.name, p.kind, p.default) for p in signature.parameters.values()]
    return found[1:] if found and found[0][0] == "self" else found


@pytest.mark.parametrize(("port", "implementation"), implementations(),
                         ids=lambda value: getattr(value, "__name__", type(value).__name__))
def test_the_implementation_offers_every_member_of_its_port(port: type, implementation: Any) -> None:
    methods, data = members(port)
    assert methods or data, f"{port.__name__} declares nothing"
    for name in sorted(data):
        assert hasattr(implementation, name), f"{implementation!r} lacks {port.__name__}.{name}"
    for name, signature in methods.items():
        found = getattr(implementation, name, None)
        assert callable(found), f"{implementation!r} lacks {port.__name__}.{name}()"
        owner = implementation if inspect.ismodule(implementation) else type(implementation)
        declared = inspect.signature(getattr(owner, name))
        assert parameters(declared) == parameters(signature), f"{port.__name__}.{name} differs"


def test_every_port_is_covered() -> None:
    declared = {value for value in vars(ports).values() if isinstance(value, type)
                and getattr(value, "_is_protocol", False) and value.__module__ == ports.__name__}
    assert declared == {port for port, _ in implementations()}


def test_the_ports_module_depends_on_the_core_only() -> None:
    source = inspect.getsource(ports)
    imports = [line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all(name == "__future__" or not name.startswith("chalicelib") or name.startswith("chalicelib.core")
               for name in imports), imports


def test_a_refused_update_of_a_vanished_message_is_the_only_answer_that_asks_for_a_new_one() -> None:
    assert ports.Delivery("permanent", code="message_not_found").message_gone
    assert ports.Delivery("permanent", code="edit_window_closed").message_gone
    assert not ports.Delivery("permanent", code="channel_not_found").message_gone
    assert not ports.Delivery("retry", code="message_not_found").message_gone
