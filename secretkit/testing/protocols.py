"""Does a driver implement the optional Protocols it declares, and only those?

The store detects each optional capability of ``secretkit.drivers.base`` by its methods and
falls back when one is missing, so a misspelt ``read_many`` never fails: ``get_many`` quietly
becomes a loop of reads. A driver therefore declares what it means to implement
(``protocols = (BatchReader, VersionProbe)``), and this check, which the conformance suites run,
holds the methods to that declaration: each declared Protocol's members are there, with the
Protocol's parameter names, and no optional Protocol is matched by accident.
"""

from __future__ import annotations

import inspect
from typing import Any

from secretkit.drivers.base import OPTIONAL_PROTOCOLS


def members(protocol: type) -> list[str]:
    """The attributes a runtime-checkable Protocol requires (its methods and data members)."""
    names = getattr(protocol, "__protocol_attrs__", None)  # Python 3.12+
    if names is None:
        from typing import _get_protocol_attrs  # type: ignore[attr-defined]

        names = _get_protocol_attrs(protocol)
    return sorted(names)


def _signature_problem(protocol: type, name: str, implementation: Any) -> str | None:
    """Why ``implementation`` cannot be called the way the store calls ``protocol.name``, or None."""
    try:
        wanted = inspect.signature(getattr(protocol, name))
        got = inspect.signature(implementation)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to compare
        return None
    params = got.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params) and any(p.kind is p.VAR_POSITIONAL for p in params):
        return None  # a forwarding wrapper (*args, **kwargs) takes whatever the store passes
    for param in list(wanted.parameters.values())[1:]:  # past self
        have = got.parameters.get(param.name)
        if have is None:
            return f"{name}() has no parameter {param.name!r}"
        if param.kind is param.KEYWORD_ONLY and have.kind not in (have.KEYWORD_ONLY, have.POSITIONAL_OR_KEYWORD):
            return f"{name}() must take {param.name!r} by keyword"
    return None


def protocol_problems(driver: Any) -> list[str]:
    """What is wrong between ``driver.protocols`` and the driver's methods (empty: nothing).

    A driver that declares no ``protocols`` gets one problem saying so: without a declaration
    a misspelt method cannot be told from a capability the driver does not have.
    """
    declared = getattr(driver, "protocols", None)
    kind = type(driver).__name__
    if declared is None:
        return [f"{kind} declares no `protocols` (the optional Protocols it implements, from OPTIONAL_PROTOCOLS)"]
    problems = [f"{kind}.protocols lists {p!r}, which is not an optional Protocol of secretkit.drivers.base"
                for p in declared if p not in OPTIONAL_PROTOCOLS]
    for protocol in OPTIONAL_PROTOCOLS:
        missing = [m for m in members(protocol) if not hasattr(driver, m)]
        if protocol in declared:
            if missing:
                problems.append(
                    f"{kind} declares {protocol.__name__} but has no {', '.join(missing)}: the store would fall back"
                )
                continue
            problems += [
                f"{kind} declares {protocol.__name__}, but {problem}"
                for m in members(protocol)
                if callable(getattr(protocol, m, None))
                and (problem := _signature_problem(protocol, m, getattr(driver, m))) is not None
            ]
        elif not missing:
            problems.append(
                f"{kind} implements {protocol.__name__} ({', '.join(members(protocol))}) without declaring it in "
                "`protocols`: the store uses it, so say so"
            )
    return problems


__all__ = ["members", "protocol_problems"]
