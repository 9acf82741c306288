"""The commands that talk to a running kyok server through :mod:`kyok.client`.

``register(app)`` adds them to the ``kyok`` app: ``login``, ``logout``, ``whoami``,
``wrap``, ``unwrap``, ``rewrap``, ``encrypt``, ``decrypt``, ``rewrap-file``, ``import``, and the groups ``key`` (also spelt ``keys``),
``instance``, ``ring``, ``alias``, ``principal``, ``apikey`` and ``role``. Connection settings: see :mod:`kyok.cli._remote`.
"""

from __future__ import annotations

import typer

from kyok.cli import access, envelope, keyimport, keys, policies, rings, session, wrapping


def register(app: typer.Typer) -> None:
    """Add the server commands and groups to ``app``."""
    session.register(app)
    wrapping.register(app)
    envelope.register(app)  # encrypt, decrypt, rewrap-file
    keyimport.register(app)
    policies.register_key_commands(keys.app)
    app.add_typer(keys.app, name="key")
    app.add_typer(keys.app, name="keys", hidden=True)  # `kyok keys policy …` reads naturally too
    app.add_typer(policies.instance_app, name="instance")
    app.add_typer(rings.ring_app, name="ring")
    app.add_typer(rings.alias_app, name="alias")
    app.add_typer(access.principal_app, name="principal")
    app.add_typer(access.apikey_app, name="apikey")
    app.add_typer(access.role_app, name="role")
