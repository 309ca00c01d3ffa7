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
from collections.abc import AsyncIterator, Iterable, Sequence
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

STRING: Final = CompactString("utf-8")
"""Kafka's compact (flexible-version) string."""
TAGS: Final = ("tags", TaggedFields)
"""The tagged fields every flexible struct ends with."""
ERROR: Final = (("error_code", Int16), ("error_message", STRING))
"""The error fields of a response or of one of its results."""
RESOURCE: Final = (("resource_type", Int8), ("resource_name", STRING))
"""A resource's type and name, as the config and ACL APIs give them."""
_ENTRY = (("principal", STRING), ("host", STRING), ("operation", Int8), ("permission_type", Int8))
"""An access control entry's fields, the same in every ACL request and response."""

# ------------------------------------------------------------------ wire structs
# aiokafka ships no type information: its protocol base classes are Any to mypy.

Field = tuple[str, Any]
"""One field of a wire struct: its name and its aiokafka protocol type."""


def flexible_api(
    name: str, api_key: int, version: int, request: Sequence[Field], response: Sequence[Field]
) -> Any:
    """The request struct class of flexible (compact) ``version`` of Kafka API ``api_key``.

    ``request`` and ``response`` are the top-level fields of the two structs; the
    tagged fields every flexible struct ends with are added here.
    """

    class _Response(Response):  # type: ignore[misc]  # aiokafka is untyped
        API_KEY = api_key
        API_VERSION = version
        SCHEMA = Schema(*response, TAGS)

    class _Request(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped
        FLEXIBLE_VERSION = True
        API_KEY = api_key
        API_VERSION = version
        RESPONSE_TYPE = _Response
        SCHEMA = Schema(*request, TAGS)

    for struct, kind in ((_Response, "Response"), (_Request, "Request")):
        struct.__name__ = struct.__qualname__ = f"{name}{kind}V{version}"
    return _Request


_CreateAclsRequestV3 = flexible_api(
    "CreateAcls",
    30,
    3,
    request=[
        (
            "creations",
            CompactArray(
                *RESOURCE,
                ("resource_pattern_type", Int8),
                *_ENTRY,
                TAGS,
            ),
        ),
    ],
    response=[
        ("throttle_time_ms", Int32),
        ("results", CompactArray(*ERROR, TAGS)),
    ],
)

_FILTER_FIELDS: tuple[Field, ...] = (
    ("resource_type_filter", Int8),
    ("resource_name_filter", STRING),
    ("pattern_type_filter", Int8),
    ("principal_filter", STRING),
    ("host_filter", STRING),
    ("operation", Int8),
    ("permission_type", Int8),
)

_DescribeAclsRequestV3 = flexible_api(
    "DescribeAcls",
    29,
    3,
    request=_FILTER_FIELDS,
    response=[
        ("throttle_time_ms", Int32),
        *ERROR,
        (
            "resources",
            CompactArray(
                *RESOURCE,
                ("pattern_type", Int8),
                ("acls", CompactArray(*_ENTRY, TAGS)),
                TAGS,
            ),
        ),
    ],
)

_DeleteAclsRequestV3 = flexible_api(
    "DeleteAcls",
    31,
    3,
    request=[("filters", CompactArray(*_FILTER_FIELDS, TAGS))],
    response=[
        ("throttle_time_ms", Int32),
        (
            "filter_results",
            CompactArray(
                *ERROR,
                (
                    "matching_acls",
                    CompactArray(
                        *ERROR,
                        *RESOURCE,
                        ("pattern_type", Int8),
                        *_ENTRY,
                        TAGS,
                    ),
                ),
                TAGS,
            ),
        ),
    ],
)

_DescribeScramRequestV0 = flexible_api(
    "DescribeUserScramCredentials",
    50,
    0,
    request=[("users", CompactArray(("name", STRING), TAGS))],
    response=[
        ("throttle_time_ms", Int32),
        *ERROR,
        (
            "results",
            CompactArray(
                ("user", STRING),
                *ERROR,
                (
                    "credential_infos",
                    CompactArray(("mechanism", Int8), ("iterations", Int32), TAGS),
                ),
                TAGS,
            ),
        ),
    ],
)

_AlterScramRequestV0 = flexible_api(
    "AlterUserScramCredentials",
    51,
    0,
    request=[
        ("deletions", CompactArray(("name", STRING), ("mechanism", Int8), TAGS)),
        (
            "upsertions",
            CompactArray(
                ("name", STRING),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                TAGS,
            ),
        ),
    ],
    response=[
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(("user", STRING), *ERROR, TAGS),
        ),
    ],
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
    "STRING",
    "TAGS",
    "create_acls",
    "delete_acls",
    "delete_scram_user",
    "describe_acls",
    "flexible_api",
    "list_scram_users",
    "salted_password",
    "upsert_scram_user",
)
