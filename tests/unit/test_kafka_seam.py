"""Every producer and consumer of the services comes from the Kafka seam
(``adapters.kafka_clients``): no other module names aiokafka's client classes, so the
in-memory fake of the tests stands in for all of them."""

from __future__ import annotations

import ast
from pathlib import Path

import border_exchange

PACKAGE = Path(border_exchange.__file__).parent

CLIENT_CLASSES = {"AIOKafkaConsumer", "AIOKafkaProducer"}

MAY_NAME_THEM = {
    "adapters/kafka_clients.py": "the seam itself",
    "adapters/kafka_probe.py": "the launcher's readiness probe of a broker just started",
    "demo/probes.py": "the demo shows the broker refusing a raw client what the ACLs forbid",
}


def _named(path: Path) -> set[str]:
    """aiokafka's client classes that ``path`` imports or names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiokafka"):
            found |= {alias.name for alias in node.names} & CLIENT_CLASSES
        elif isinstance(node, ast.Attribute) and node.attr in CLIENT_CLASSES:
            found.add(node.attr)
    return found


def test_only_the_seam_makes_kafka_clients() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(PACKAGE)) not in MAY_NAME_THEM and (names := _named(path))
    }
    assert offenders == {}


def test_the_check_sees_a_client_made_by_hand(tmp_path: Path) -> None:
    module = tmp_path / "service.py"
    module.write_text("import aiokafka\nconsumer = aiokafka.AIOKafkaConsumer()\n")
    assert _named(module) == {"AIOKafkaConsumer"}
    module.write_text("from aiokafka import AIOKafkaProducer as P, TopicPartition\n")
    assert _named(module) == {"AIOKafkaProducer"}
