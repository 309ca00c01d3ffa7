"""Topic, principal, group and transactional-id names, all derived from participant ids.

Names are built so that Kafka's literal and prefixed ACLs can express every rule:
a participant's own resources share the prefix ``bx.<P>.``; the hub's topics start
with ``bx.hub.`` (lower case, so no participant id can collide with it).
"""

from __future__ import annotations

import re
from typing import Final

from border_exchange.domain.catalog import is_participant_id

TOPIC_PREFIX: Final = "bx."
HUB_PREFIX: Final = "bx.hub."
AUDIT_PREFIX: Final = "bx.hub.audit."
QUARANTINE_TOPIC: Final = "bx.hub.quarantine"
AGREEMENTS_TOPIC: Final = "bx.hub.agreements"
ROUTER_GROUP: Final = "bx.hub.router"
ROUTER_TXN_PREFIX: Final = "bx.hub.router."
ROUTER_PRINCIPAL: Final = "hub.router"
AUDITOR_PRINCIPAL: Final = "hub.auditor"
ADMIN_PRINCIPAL: Final = "admin"
AUDITOR_GROUP_PREFIX: Final = "bx.hub.auditor."
ROLE_NAME_PATTERN: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""A post or auditor name: lower-case letters, digits and inner hyphens (it becomes a user name)."""


def outbox_topic(participant: str) -> str:
    """The topic ``participant``'s gateway publishes to."""
    return f"bx.{participant}.outbox"


def feed_topic(recipient: str, origin: str) -> str:
    """``recipient``'s feed of alerts from partner ``origin``."""
    return f"bx.{recipient}.from.{origin}"


def feed_prefix(recipient: str) -> str:
    """The prefix shared by every feed of ``recipient``."""
    return f"bx.{recipient}.from."


def feed_state_topic(recipient: str, origin: str) -> str:
    """The compacted state of ``recipient``'s feed from ``origin``: every alert in force."""
    return f"bx.{recipient}.state.from.{origin}"


def feed_state_prefix(recipient: str) -> str:
    """The prefix shared by every feed state of ``recipient``."""
    return f"bx.{recipient}.state.from."


def outbox_state_topic(participant: str) -> str:
    """The compacted state of ``participant``'s outbox: the last version of each alert in force."""
    return f"bx.{participant}.outbox.state"


def parse_feed_state_topic(topic: str) -> tuple[str, str] | None:
    """``(recipient, origin)`` of feed state ``topic``, or None when it is not one."""
    parts = topic.split(".")
    if (
        len(parts) == 5
        and parts[0] == "bx"
        and parts[1] != "hub"
        and parts[2:4] == ["state", "from"]
    ):
        return parts[1], parts[4]
    return None


def hits_topic(participant: str) -> str:
    """Hit reports on ``participant``'s alerts and acknowledgements of its own reports, as
    the router delivers them: read by its national desk (gateway) and its posts."""
    return f"bx.{participant}.hits"


def parse_hits_topic(topic: str) -> str | None:
    """The participant whose hit topic ``topic`` is, or None when it is not one."""
    return _owner(topic, "hits")


def notices_topic(participant: str) -> str:
    """Quarantine notices of ``participant``'s own outbox records: read by its desk."""
    return f"bx.{participant}.notices"


def post_transactional_id(participant: str, post: str) -> str:
    """The transactional id prefix of border post ``post`` of ``participant`` (hit reports)."""
    return f"bx.{participant}.post.{post}"


def participant_prefix(participant: str) -> str:
    """The prefix of every resource (topic, group, transactional id) owned by ``participant``."""
    return f"bx.{participant}."


def parse_outbox_topic(topic: str) -> str | None:
    """The participant owning outbox ``topic``, or None when it is not an outbox."""
    return _owner(topic, "outbox")


def _owner(topic: str, kind: str) -> str | None:
    """``P`` of topic ``bx.<P>.<kind>`` (P not the hub), or None when ``topic`` is not one."""
    parts = topic.split(".")
    if len(parts) == 3 and parts[0] == "bx" and parts[2] == kind and parts[1] != "hub":
        return parts[1]
    return None


def parse_feed_topic(topic: str) -> tuple[str, str] | None:
    """``(recipient, origin)`` of feed ``topic``, or None when it is not a feed."""
    parts = topic.split(".")
    if len(parts) == 4 and parts[0] == "bx" and parts[2] == "from" and parts[1] != "hub":
        return parts[1], parts[3]
    return None


def gateway_principal(participant: str) -> str:
    """The SCRAM user of ``participant``'s gateway."""
    return f"{participant}.gateway"


def post_principal(participant: str, post: str) -> str:
    """The SCRAM user of border post ``post`` of ``participant``."""
    return f"{participant}.post.{post}"


def gateway_transactional_id(participant: str) -> str:
    """The transactional id of ``participant``'s gateway."""
    return f"bx.{participant}.gateway"


def post_group(participant: str, post: str) -> str:
    """The consumer group of border post ``post`` of ``participant``."""
    return f"bx.{participant}.post.{post}"


def gateway_group_prefix(participant: str) -> str:
    """The prefix of the consumer groups of ``participant``'s gateway."""
    return f"bx.{participant}.gateway"


def auditor_principal(name: str) -> str:
    """The SCRAM user of auditor ``name`` (``hub.auditor.<name>``)."""
    return f"{AUDITOR_PRINCIPAL}.{name}"


def auditor_group_prefix(name: str) -> str:
    """The prefix of auditor ``name``'s consumer groups (``bx.hub.auditor.<name>.``)."""
    return f"{AUDITOR_GROUP_PREFIX}{name}."


def is_role_name(value: str) -> bool:
    """Whether ``value`` may name a border post or an auditor."""
    return ROLE_NAME_PATTERN.fullmatch(value) is not None


def principal_owner(principal: str) -> str | None:
    """The participant id (or ``"hub"``) owning user ``principal``; None when not ours.

    Ours are ``<P>.gateway``, ``<P>.post.<name>``, ``hub.router`` and
    ``hub.auditor[.<name>]``; the administrator and any other user are not.
    """
    if principal in (ROUTER_PRINCIPAL, AUDITOR_PRINCIPAL):
        return "hub"
    if principal.startswith(AUDITOR_PRINCIPAL + "."):
        return "hub" if is_role_name(principal[len(AUDITOR_PRINCIPAL) + 1 :]) else None
    participant, _, role = principal.partition(".")
    if not is_participant_id(participant):
        return None
    if role == "gateway":
        return participant
    kind, _, post = role.partition(".")
    if kind == "post" and is_role_name(post):
        return participant
    return None


def resource_owner(name: str) -> str:
    """The participant id owning a topic, group or transactional id name, else ``"hub"``."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[0] == "bx" and is_participant_id(parts[1]):
        return parts[1]
    return "hub"


def audit_topic(origin: str) -> str:
    """The audit trail of ``origin``'s outbox: partition i audits outbox partition i."""
    return f"{AUDIT_PREFIX}{origin}"
