"""The dev server's instance and credentials (DESIGN §5, ``kyok server --dev``).

A dev node has one instance with the dev seal, so its unit is unsealed at once (its master key
sits in ``<data-dir>/dev-seal.json``). :func:`provision_dev` finds or creates that instance and
its administrator's API key and writes ``<data-dir>/dev-credentials.json`` (mode 0600)::

    {"url": "http://127.0.0.1:8200", "instanceId": "...", "apiKey": "..."}

Restarting on the same data directory reuses the instance (and the API key) named in that file,
unless ``KYOK_DEV_INSTANCE_ID`` / ``KYOK_DEV_API_KEY`` fix them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kyok.auth.principals import SYSTEM
from kyok.bootstrap import Node
from kyok.errors import InvalidInput
from kyok.kms.errors import InstanceNotFound
from kyok.unit.files import write_private

__all__ = [
    "CREDENTIALS_FILE",
    "DevCredentials",
    "DevProvision",
    "provision_dev",
    "read_credentials",
]

CREDENTIALS_FILE = "dev-credentials.json"


@dataclass(frozen=True, slots=True)
class DevCredentials:
    """How to reach and use a dev server."""

    url: str
    instance_id: str
    api_key: str = field(repr=False)

    def to_json(self) -> dict[str, str]:
        """The credentials file's content."""
        return {"url": self.url, "instanceId": self.instance_id, "apiKey": self.api_key}

    def write(self, path: Path) -> None:
        """Write the credentials file (mode 0600, atomically, replacing an older one).

        Args:
            path: where to write it.
        """
        text = json.dumps(self.to_json(), indent=2) + "\n"
        write_private(path, text.encode(), overwrite=True)


@dataclass(frozen=True, slots=True)
class DevProvision:
    """What :func:`provision_dev` did.

    Attributes:
        credentials: what was written to the credentials file.
        instance_created: the instance is new.
        key_created: the API key is new (print it once).
        key_fixed: the API key came from ``KYOK_DEV_API_KEY``.
        path: the credentials file.
    """

    credentials: DevCredentials
    instance_created: bool
    key_created: bool
    key_fixed: bool
    path: Path


def read_credentials(path: Path) -> DevCredentials | None:
    """Read a credentials file; None when it is missing or unreadable.

    Args:
        path: the file.

    Returns:
        The credentials, or None.
    """
    try:
        obj = json.loads(path.read_text())
        return DevCredentials(str(obj["url"]), str(obj["instanceId"]), str(obj["apiKey"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def provision_dev(
    node: Node, url: str, *, instance_id: str | None = None, api_key: str | None = None
) -> DevProvision:
    """Find or create the dev instance and its administrator key; write the credentials file.

    Args:
        node: a node opened on the dev data directory.
        url: where the server listens (written to the file).
        instance_id: ``KYOK_DEV_INSTANCE_ID``; else the instance of an earlier run; else new.
        api_key: ``KYOK_DEV_API_KEY``; else the key of an earlier run for the same instance;
            else a new random key.

    Returns:
        The credentials and whether the instance or the key are new.

    Raises:
        InvalidInput: the chosen instance exists but is not dev-sealed, or its unit is sealed.
    """
    path = node.settings.data_dir / CREDENTIALS_FILE
    previous = read_credentials(path)
    wanted = instance_id or (previous.instance_id if previous else None)
    created = False
    try:
        if wanted is None:
            raise InstanceNotFound()
        instance = node.service.get_instance(wanted)
    except InstanceNotFound:
        instance = node.service.create_instance(SYSTEM, "dev", seal="dev", instance_id=wanted)
        created = True
    unit = node.units.get(instance.unit_id)
    if unit.state.seal != "dev":
        raise InvalidInput(
            f"instance {instance.id} uses the {unit.state.seal} seal, not dev: "
            "choose another KYOK_DEV_INSTANCE_ID or data directory"
        )
    unit.require_unsealed()
    reuse = previous.api_key if previous and previous.instance_id == instance.id else None
    key = node.auth.bootstrap_admin(instance.id, api_key=api_key or reuse)
    credentials = DevCredentials(url, instance.id, key)
    credentials.write(path)
    new_key = api_key is None and key != reuse
    return DevProvision(credentials, created, new_key, api_key is not None, path)
