"""The OpenAPI document's model schemas are generated when it is first asked for, not while
routes are built (``kyok.api.openapi``): building the app generates none, and the document then
holds every model a route named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from pathlib import Path
from kyok.api import openapi
from kyok.api.app import create_app
from kyok.bootstrap import open_node
from kyok.settings import Settings

settings = Settings.load(overrides={"data_dir": Path(sys.argv[1]), "seal": "dev"})
with open_node(settings) as node:
    app = create_app(node)
    named = [model.__name__ for model in openapi._REGISTERED]
    before = openapi._GENERATED[0]
    document = app.openapi()
    again = json.dumps(create_app(node).openapi(), sort_keys=True)
print(json.dumps({
    "named": named,
    "generated_before": before,
    "generated_after": openapi._GENERATED[0],
    "schemas": sorted(document["components"]["schemas"]),
    "same_again": again == json.dumps(document, sort_keys=True),
}))
"""


def test_building_the_app_generates_no_schema(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert len(found["named"]) > 20
    assert found["generated_before"] == 0
    assert found["generated_after"] == len(found["named"])
    assert set(found["named"]) <= set(found["schemas"])
    assert found["same_again"]
