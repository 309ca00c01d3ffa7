"""Which Kafka a test run uses: chosen by ``BX_TEST_KAFKA``, never by what the machine has.

- ``launcher`` (the default): the project's own launcher starts a broker from the
  official jars, as the demo and CI do;
- ``external``: the cluster at ``BX_KAFKA_BOOTSTRAP`` (a SASL/SCRAM-SHA-512 listener),
  with ``BX_KAFKA_ADMIN_USERNAME`` and ``BX_KAFKA_ADMIN_PASSWORD``; setting
  ``BX_KAFKA_BOOTSTRAP`` alone chooses it too;
- ``testcontainers``: an ``apache/kafka`` container, which needs a Docker engine and
  an image registry.

A Docker engine that happens to run changes nothing unless ``testcontainers`` is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

CHOICE_ENV = "BX_TEST_KAFKA"


class BrokerPath(StrEnum):
    """Where the session's broker comes from."""

    LAUNCHER = "launcher"
    EXTERNAL = "external"
    TESTCONTAINERS = "testcontainers"


class BrokerChoiceError(ValueError):
    """The environment asks for a broker path that does not exist or lacks its settings."""


def chosen_path(environ: Mapping[str, str]) -> BrokerPath:
    """The path ``environ`` asks for; raises BrokerChoiceError naming what is wrong."""
    text = environ.get(CHOICE_ENV, "").strip().lower()
    if not text:
        return BrokerPath.EXTERNAL if environ.get("BX_KAFKA_BOOTSTRAP") else BrokerPath.LAUNCHER
    try:
        path = BrokerPath(text)
    except ValueError:
        choices = ", ".join(p.value for p in BrokerPath)
        raise BrokerChoiceError(f"{CHOICE_ENV}={text!r}: choose one of {choices}") from None
    if path is BrokerPath.EXTERNAL:
        missing = [
            name
            for name in ("BX_KAFKA_BOOTSTRAP", "BX_KAFKA_ADMIN_PASSWORD")
            if not environ.get(name)
        ]
        if missing:
            raise BrokerChoiceError(f"{CHOICE_ENV}=external needs {' and '.join(missing)}")
    return path


def describe(path: BrokerPath, environ: Mapping[str, str]) -> str:
    """One line for the run's header: the path and why it was chosen."""
    why = f"{CHOICE_ENV}={environ[CHOICE_ENV]}" if environ.get(CHOICE_ENV) else None
    if path is BrokerPath.EXTERNAL:
        where = f"at {environ.get('BX_KAFKA_BOOTSTRAP')}"
        return f"external {where} ({why or 'BX_KAFKA_BOOTSTRAP is set'})"
    if path is BrokerPath.TESTCONTAINERS:
        return f"testcontainers, an apache/kafka container ({why})"
    return f"launcher, from the official jars ({why or f'{CHOICE_ENV} unset: the default'})"


def docker_answers() -> bool:
    """Whether a Docker engine answers a ping within 3 s."""
    try:
        import docker  # type: ignore[import-untyped]  # optional, comes with testcontainers

        docker.from_env(timeout=3).ping()
    except Exception:  # any failure means: no engine to use
        return False
    return True
