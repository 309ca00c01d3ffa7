"""Kafka's security administration: SCRAM credentials and ACLs, over Kafka's own protocol.

aiokafka's admin client has no ACL or SCRAM API, so this module defines the
flexible (compact) versions of CreateAcls, DescribeAcls, DeleteAcls (v3),
DescribeUserScramCredentials and AlterUserScramCredentials (v0) with aiokafka's
protocol types and sends them through its connection, which negotiates the
version with the broker. Errors become ``KafkaError``/``AuthorizationError``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Final

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.domain.acl import (
    AclBinding,
    AclOperation,
    AclPermission,
    PatternType,
    ResourceType,
)
from border_exchange.errors import AuthorizationError, KafkaError

SCRAM_MECHANISM: Final = 2
"""SCRAM-SHA-512 in Kafka's ScramMechanism codes (SCRAM-SHA-256 is 1)."""
SCRAM_ITERATIONS: Final = 8192
"""PBKDF2 iterations of a stored credential (Kafka accepts 4096 to 16384 for SHA-512)."""

_AUTHORIZATION_CODES: Final = frozenset({29, 30, 31, 53})
"""TOPIC, GROUP, CLUSTER and TRANSACTIONAL_ID authorization failures."""
_RESOURCE_NOT_FOUND: Final = 91

_STR = CompactString("utf-8")
_TAGS = ("tags", TaggedFields)
_ENTRY = (("principal", _STR), ("host", _STR), ("operation", Int8), ("permission_type", Int8))
"""An access control entry's fields, the same in every ACL request and response."""

# ------------------------------------------------------------------ wire structs
# aiokafka ships no type information: its protocol base classes are Any to mypy.


class _CreateAclsResponseV3(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 30
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("error_code", Int16), ("error_message", _STR), _TAGS)),
        _TAGS,
    )


class _CreateAclsRequestV3(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 3
    RESPONSE_TYPE = _CreateAclsResponseV3
    SCHEMA = Schema(
        (
            "creations",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", _STR),
                ("resource_pattern_type", Int8),
                *_ENTRY,
                _TAGS,
            ),
        ),
        _TAGS,
    )


_ACL_DESCRIPTION = CompactArray(*_ENTRY, _TAGS)


class _DescribeAclsResponseV3(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 29
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", _STR),
        (
            "resources",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", _STR),
                ("pattern_type", Int8),
                ("acls", _ACL_DESCRIPTION),
                _TAGS,
            ),
        ),
        _TAGS,
    )


_FILTER_FIELDS: tuple[tuple[str, Any], ...] = (
    ("resource_type_filter", Int8),
    ("resource_name_filter", _STR),
    ("pattern_type_filter", Int8),
    ("principal_filter", _STR),
    ("host_filter", _STR),
    ("operation", Int8),
    ("permission_type", Int8),
)


class _DescribeAclsRequestV3(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 29
    API_VERSION = 3
    RESPONSE_TYPE = _DescribeAclsResponseV3
    SCHEMA = Schema(*_FILTER_FIELDS, _TAGS)


class _DeleteAclsResponseV3(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 31
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "filter_results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", _STR),
                (
                    "matching_acls",
                    CompactArray(
                        ("error_code", Int16),
                        ("error_message", _STR),
                        ("resource_type", Int8),
                        ("resource_name", _STR),
                        ("pattern_type", Int8),
                        *_ENTRY,
                        _TAGS,
                    ),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _DeleteAclsRequestV3(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 31
    API_VERSION = 3
    RESPONSE_TYPE = _DeleteAclsResponseV3
    SCHEMA = Schema(("filters", CompactArray(*_FILTER_FIELDS, _TAGS)), _TAGS)


class _DescribeScramResponseV0(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", _STR),
        (
            "results",
            CompactArray(
                ("user", _STR),
                ("error_code", Int16),
                ("error_message", _STR),
                (
                    "credential_infos",
                    CompactArray(("mechanism", Int8), ("iterations", Int32), _TAGS),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _DescribeScramRequestV0(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeScramResponseV0
    SCHEMA = Schema(("users", CompactArray(("name", _STR), _TAGS)), _TAGS)


class _AlterScramResponseV0(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(("user", _STR), ("error_code", Int16), ("error_message", _STR), _TAGS),
        ),
        _TAGS,
    )


class _AlterScramRequestV0(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponseV0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", _STR), ("mechanism", Int8), _TAGS)),
        (
            "upsertions",
            CompactArray(
                ("name", _STR),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _Prebuilt(Request[RequestStruct]):  # type: ignore[misc]  # aiokafka is untyped
    """A request whose struct is built already; refuses brokers that lack its version."""

    API_KEY = 0  # replaced per instance

    def __init__(self, struct: Any) -> None:
        self._struct = struct
        self.API_KEY = struct.API_KEY

    def prepare(self, versions: dict[int, tuple[int, int]]) -> Any:
        low, high = versions.get(self.API_KEY, (0, -1))
        if not low <= self._struct.API_VERSION <= high:
            raise KafkaError(
                f"the broker does not accept API {self.API_KEY} v{self._struct.API_VERSION} "
                f"(it accepts v{low}..v{high}); Kafka 2.8 or newer is needed"
            )
        return self._struct

    def build(self, request_struct_class: Any) -> Any:
        return self._struct


# ------------------------------------------------------------------- connection


@asynccontextmanager
async def connected_admin(settings: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started aiokafka admin client for ``settings``, closed on exit."""
    client = AIOKafkaAdminClient(**settings.client_kwargs())
    try:
        await client.start()
    except AioKafkaError as exc:
        await client.close()
        raise KafkaError(f"cannot connect to Kafka at {settings.bootstrap}: {exc}") from exc
    try:
        yield client
    finally:
        await client.close()


async def send_struct(client: AIOKafkaAdminClient, struct: Any) -> Any:
    """Send a request struct of a version chosen here; its response struct."""
    try:
        return await client._send_to_controller(_Prebuilt(struct))
    except AioKafkaError as exc:
        raise _mapped(exc, f"Kafka API {struct.API_KEY} request failed") from exc


def _mapped(exc: AioKafkaError, what: str) -> KafkaError:
    if getattr(exc, "errno", None) in _AUTHORIZATION_CODES:
        return AuthorizationError(f"{what}: not authorized ({exc})")
    return KafkaError(f"{what}: {exc}")


def check_error(code: int, message: str | None, what: str) -> None:
    """Raise ``AuthorizationError`` or ``KafkaError`` for a non-zero Kafka error code."""
    if code == 0:
        return
    error = for_code(code)
    detail = f"{error.__name__} ({code})" + (f": {message}" if message else "")
    if code in _AUTHORIZATION_CODES:
        raise AuthorizationError(f"{what}: not authorized, {detail}")
    raise KafkaError(f"{what}: {detail}")


# ------------------------------------------------------------------------ SCRAM


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """SCRAM's ``Hi(password, salt, i)`` for SHA-512 (RFC 5802), as Kafka's ScramFormatter."""
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)


async def upsert_scram_user(settings: KafkaSettings, user: str, password: str) -> None:
    """Create SCRAM-SHA-512 user ``user`` with ``password``, or replace its password."""
    salt = secrets.token_bytes(32)
    upsertion: tuple[Any, ...] = (
        user,
        SCRAM_MECHANISM,
        SCRAM_ITERATIONS,
        salt,
        salted_password(password, salt),
        {},
    )
    async with connected_admin(settings) as client:
        response = await send_struct(client, _AlterScramRequestV0([], [upsertion], {}))
    for name, code, message, _tags in response.results:
        check_error(code, message, f"setting the SCRAM credential of {name!r}")


async def delete_scram_user(settings: KafkaSettings, user: str) -> bool:
    """Delete ``user``'s SCRAM-SHA-512 credential; False when it had none."""
    async with connected_admin(settings) as client:
        response = await send_struct(
            client, _AlterScramRequestV0([(user, SCRAM_MECHANISM, {})], [], {})
        )
    for name, code, message, _tags in response.results:
        if code == _RESOURCE_NOT_FOUND:
            return False
        check_error(code, message, f"deleting the SCRAM credential of {name!r}")
    return True


async def list_scram_users(settings: KafkaSettings) -> frozenset[str]:
    """Every user that has a SCRAM-SHA-512 credential."""
    async with connected_admin(settings) as client:
        # A null user list asks for every user.
        response = await send_struct(client, _DescribeScramRequestV0(None, {}))
    check_error(response.error_code, response.error_message, "listing SCRAM users")
    users: set[str] = set()
    for name, code, message, infos, _tags in response.results:
        check_error(code, message, f"describing the SCRAM credential of {name!r}")
        if any(mechanism == SCRAM_MECHANISM for mechanism, _iterations, _t in infos):
            users.add(name)
    return frozenset(users)


async def wait_for_login(settings: KafkaSettings, wait: float = 30.0) -> None:
    """Wait until ``settings`` can log in: new SCRAM users reach the broker a moment later."""
    deadline = time.monotonic() + wait
    while True:
        client = AIOKafkaClient(**settings.client_kwargs())
        try:
            await client.bootstrap()
        except AioKafkaError as exc:
            if time.monotonic() > deadline:
                raise KafkaError(f"{settings.username} cannot log in: {exc}") from exc
            await asyncio.sleep(0.5)
        else:
            return
        finally:
            await client.close()


# ------------------------------------------------------------------------- ACLs


def _as_filter(binding: AclBinding) -> tuple[Any, ...]:
    return (
        int(binding.resource_type),
        binding.name,
        int(binding.pattern),
        binding.principal,
        binding.host,
        int(binding.operation),
        int(binding.permission),
        {},
    )


async def create_acls(settings: KafkaSettings, bindings: Iterable[AclBinding]) -> None:
    """Add ``bindings`` (creating an existing one again is harmless)."""
    wanted = sorted(set(bindings))
    if not wanted:
        return
    async with connected_admin(settings) as client:
        response = await send_struct(
            client, _CreateAclsRequestV3([_as_filter(b) for b in wanted], {})
        )
    for binding, (code, message, _tags) in zip(wanted, response.results, strict=True):
        check_error(code, message, f"creating ACL {binding.describe()}")


async def delete_acls(settings: KafkaSettings, bindings: Iterable[AclBinding]) -> int:
    """Remove exactly ``bindings``; the number of ACLs the broker removed."""
    doomed = sorted(set(bindings))
    if not doomed:
        return 0
    async with connected_admin(settings) as client:
        response = await send_struct(
            client, _DeleteAclsRequestV3([_as_filter(b) for b in doomed], {})
        )
    removed = 0
    for binding, (code, message, matching, _tags) in zip(
        doomed, response.filter_results, strict=True
    ):
        check_error(code, message, f"deleting ACL {binding.describe()}")
        for acl in matching:
            check_error(acl[0], acl[1], f"deleting ACL {binding.describe()}")
            removed += 1
    return removed


async def describe_acls(
    settings: KafkaSettings, principal: str | None = None
) -> frozenset[AclBinding]:
    """Every ACL of the cluster, or only those of ``principal`` (e.g. ``User:CAF.gateway``)."""
    request = _DescribeAclsRequestV3(
        int(ResourceType.ANY), None, int(PatternType.ANY), principal, None,
        int(AclOperation.ANY), int(AclPermission.ANY), {},
    )  # fmt: skip
    async with connected_admin(settings) as client:
        response = await send_struct(client, request)
    check_error(response.error_code, response.error_message, "describing ACLs")
    found: set[AclBinding] = set()
    for resource_type, name, pattern, acls, _tags in response.resources:
        for acl_principal, host, operation, permission, _t in acls:
            found.add(
                AclBinding(
                    ResourceType(resource_type),
                    name,
                    PatternType(pattern),
                    acl_principal,
                    AclOperation(operation),
                    AclPermission(permission),
                    host,
                )
            )
    return frozenset(found)


__all__ = (
    "SCRAM_ITERATIONS",
    "create_acls",
    "delete_acls",
    "delete_scram_user",
    "describe_acls",
    "list_scram_users",
    "salted_password",
    "upsert_scram_user",
)
