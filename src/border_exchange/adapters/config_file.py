"""Component configuration files: YAML mappings whose ``kafka`` section says how to connect."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from border_exchange.adapters.kafka_settings import KafkaSettings
from border_exchange.errors import ConfigError


def read_config_file(path: str | Path) -> Mapping[str, Any]:
    """The mapping in YAML file ``path``; a clear ``ConfigError`` when it is not one."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return document


def kafka_settings_from(
    config: Mapping[str, Any], origin: str, env: Mapping[str, str] | None = None
) -> KafkaSettings:
    """Connection settings from ``config['kafka']``, each key overridden by ``BX_KAFKA_*``."""
    kafka = config.get("kafka", {})
    if not isinstance(kafka, Mapping):
        raise ConfigError(f"{origin}: 'kafka' must be a mapping")
    return KafkaSettings.from_mapping(kafka, os.environ if env is None else env)


def kafka_settings_from_file(
    path: str | Path | None, env: Mapping[str, str] | None = None
) -> KafkaSettings:
    """Connection settings from an optional config file and the ``BX_KAFKA_*`` variables."""
    config = read_config_file(path) if path is not None else {}
    return kafka_settings_from(config, str(path), env)
