"""The server commands over ``httpx.MockTransport``: settings from flags, environment and
profile; the profile file; exit codes; ``--json`` keeping stdout clean; DEK and ciphertext input.

The whole tour against the real server is in ``test_keys_cli.py``."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from typer.testing import CliRunner, Result

from kyok.cli import _remote
from kyok.cli.main import app

URL = "https://kms.test"
INSTANCE = "inst-1"
API_KEY = "kyok-test-api-key-123"
DEK = bytes(range(32))
DEK_B64 = base64.b64encode(DEK).decode()

P = {"id": "p1", "name": "admin", "kind": "user", "createdAt": "2026-01-01T00:00:00Z"}
B = {"id": "b1", "principalId": "p1", "role": "KyokInstanceAdmin", "scope": "instance"}
KEY = {
    "type": "application/vnd.ibm.kms.key+json",
    "id": "k1",
    "name": "root-1",
    "extractable": False,
    "state": 1,
    "keyRingID": "default",
    "keyVersion": {"id": "v1"},
    "creationDate": "2026-01-01T00:00:00Z",
}


def kp_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "metadata": {
                "collectionType": "application/vnd.ibm.kms.error+json",
                "collectionTotal": 1,
            },
            "resources": [
                {
                    "errorMsg": message,
                    "reasons": [{"code": code, "message": message, "status": status}],
                }
            ],
        },
    )


class FakeServer:
    """Answers the token endpoint (one good API key) and routes by (method, path)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.requests: list[httpx.Request] = []
        self.api_keys_seen: list[str] = []
        self.route(
            "GET", "/api/v2/kyok/whoami", {"principal": P, "instanceId": INSTANCE, "roles": [B]}
        )

    def route(self, method: str, path: str, answer: Any, status: int = 200) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            if isinstance(answer, httpx.Response):
                return answer
            if callable(answer):
                return answer(request)  # type: ignore[no-any-return]
            return (
                httpx.Response(status, json=answer)
                if answer is not None
                else httpx.Response(status)
            )

        self.routes[(method, path)] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/identity/token":
            form = dict(parse_qsl(request.content.decode()))
            self.api_keys_seen.append(form.get("apikey", ""))
            if form.get("apikey") != API_KEY:
                return httpx.Response(
                    400,
                    json={
                        "errorCode": "BXNIM0415E",
                        "errorMessage": "Provided API key could not be found",
                    },
                )
            return httpx.Response(
                200, json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}
            )
        self.requests.append(request)
        assert request.headers["Authorization"] == "Bearer tok"
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return kp_error(404, "NOT_FOUND_ERR", f"no route {request.method} {request.url.path}")
        return handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    fake = FakeServer()
    monkeypatch.setattr(_remote, "TRANSPORT", httpx.MockTransport(fake))
    yield fake


@pytest.fixture
def xdg(tmp_path: Path) -> Path:
    return tmp_path / "config"


class Kyok:
    def __init__(self, env: dict[str, str | None]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(
        self,
        *args: str,
        input: str | None = "",
        code: int = 0,
        env: dict[str, str | None] | None = None,
    ) -> Result:
        result = self.runner.invoke(
            app, list(args), input=input, env=self.env | (env or {}), catch_exceptions=False
        )
        assert result.exit_code == code, (result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        result = self(*args, "--json", **kw)
        return json.loads(result.stdout)  # stdout holds the JSON and nothing else


@pytest.fixture
def kyok(xdg: Path) -> Kyok:
    return Kyok(
        {
            "XDG_CONFIG_HOME": str(xdg),
            "KYOK_URL": None,
            "KYOK_INSTANCE_ID": None,
            "KYOK_API_KEY": None,
            "KYOK_CACERT": None,
        }
    )


def login(kyok: Kyok) -> Result:
    return kyok("login", "--url", URL, "--instance", INSTANCE, "--api-key", API_KEY)


# ---------------------------------------------------------------- login and the profile


def test_login_checks_and_saves_a_private_profile(
    kyok: Kyok, server: FakeServer, xdg: Path
) -> None:
    result = login(kyok)
    path = xdg / "kyok" / "profile.json"
    assert str(path) in result.stderr and "admin" in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    assert saved == {
        "url": URL,
        "instance_id": INSTANCE,
        "api_key": API_KEY,
        "cacert": None,
        "insecure": False,
    }
    assert server.last.url.path == "/api/v2/kyok/whoami"
    assert server.last.headers["Bluemix-Instance"] == INSTANCE
    # later commands use it
    me = kyok.json("whoami")
    assert me["principal"]["name"] == "admin" and me["instanceId"] == INSTANCE
    assert me["roles"][0]["role"] == "KyokInstanceAdmin"


def test_login_asks_for_what_is_missing(kyok: Kyok, server: FakeServer, xdg: Path) -> None:
    result = kyok("login", input=f"{URL}\n{INSTANCE}\n{API_KEY}\n")
    assert API_KEY not in result.output  # the key prompt is hidden
    assert json.loads((xdg / "kyok" / "profile.json").read_text())["instance_id"] == INSTANCE


def test_login_json(kyok: Kyok, server: FakeServer) -> None:
    out = kyok.json("login", "--url", URL + "/", "--instance", INSTANCE, "--api-key", API_KEY)
    assert out["url"] == URL and out["profile"].endswith("kyok/profile.json")
    assert API_KEY not in json.dumps(out)


def test_a_refused_key_is_not_saved(kyok: Kyok, server: FakeServer, xdg: Path) -> None:
    result = kyok("login", "--url", URL, "--instance", INSTANCE, "--api-key", "wrong", code=1)
    assert "API key was refused" in result.stderr and "BXNIM0415E" in result.stderr
    assert not (xdg / "kyok" / "profile.json").exists()
    assert "wrong" not in result.stderr


def test_logout_removes_the_profile(kyok: Kyok, server: FakeServer, xdg: Path) -> None:
    login(kyok)
    kyok("logout")
    assert not (xdg / "kyok" / "profile.json").exists()
    assert "no server" in kyok("whoami", code=2).stderr


def test_a_readable_profile_is_warned_about(kyok: Kyok, server: FakeServer, xdg: Path) -> None:
    login(kyok)
    os.chmod(xdg / "kyok" / "profile.json", 0o644)
    assert "readable by others" in kyok("whoami").stderr


def test_a_broken_profile_is_an_error_not_a_traceback(kyok: Kyok, xdg: Path) -> None:
    (xdg / "kyok").mkdir(parents=True)
    (xdg / "kyok" / "profile.json").write_text("{not json")
    assert "not a kyok profile" in kyok("whoami", code=1).stderr


# ---------------------------------------------------------------- where settings come from


def test_flags_beat_environment_beat_profile(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    kyok("whoami", env={"KYOK_INSTANCE_ID": "from-env"})
    assert server.last.headers["Bluemix-Instance"] == "from-env"
    kyok("whoami", "--instance", "from-flag", env={"KYOK_INSTANCE_ID": "from-env"})
    assert server.last.headers["Bluemix-Instance"] == "from-flag"


def test_environment_alone_is_enough(kyok: Kyok, server: FakeServer) -> None:
    kyok("whoami", env={"KYOK_URL": URL, "KYOK_INSTANCE_ID": INSTANCE, "KYOK_API_KEY": API_KEY})
    assert server.api_keys_seen == [API_KEY]


def test_the_saved_key_never_goes_to_another_server(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    result = kyok("whoami", "--url", "https://elsewhere.test", "--instance", INSTANCE, code=2)
    assert "no API key" in result.stderr
    assert server.api_keys_seen == [API_KEY]  # only the login's


def test_missing_settings_are_usage_errors(kyok: Kyok) -> None:
    assert "no server" in kyok("key", "list", code=2).stderr
    assert "no instance" in kyok("key", "list", "--url", URL, code=2).stderr
    assert "no API key" in kyok("key", "list", "--url", URL, "--instance", "i", code=2).stderr


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [
        (404, "KEY_NOT_FOUND_ERR", 5),
        (503, "UNIT_SEALED_ERR", 4),
        (409, "KEY_ACTION_INVALID_STATE_ERR", 1),
        (403, "UNAUTHORIZED_ERR", 1),
        (410, "KEY_DELETED_ERR", 1),
        (422, "UNPROCESSABLE_CIPHERTEXT_ERR", 1),
    ],
)
def test_server_errors_become_exit_codes(
    kyok: Kyok, server: FakeServer, status: int, code: str, exit_code: int
) -> None:
    login(kyok)
    server.route("GET", "/api/v2/keys/k1/metadata", kp_error(status, code, "it failed"))
    result = kyok("key", "show", "k1", "--json", code=exit_code)
    assert result.stdout == ""
    assert (
        "it failed" in result.stderr and code in result.stderr and f"HTTP {status}" in result.stderr
    )
    assert "correlation id" in result.stderr


def test_an_unreachable_server_exits_4(kyok: Kyok) -> None:
    result = kyok(
        "whoami", "--url", "http://127.0.0.1:9", "--instance", "i", "--api-key", "k", code=4
    )
    assert "cannot reach" in result.stderr


def test_debug_shows_the_traceback(kyok: Kyok, server: FakeServer) -> None:
    from kyok.client import NotFound

    login(kyok)
    with pytest.raises(NotFound):
        kyok.runner.invoke(
            app, ["--debug", "key", "show", "nope"], env=kyok.env, catch_exceptions=False
        )
    from kyok.cli._output import set_debug

    set_debug(False)


# ---------------------------------------------------------------- keys


def test_key_create_sends_everything(kyok: Kyok, server: FakeServer, tmp_path: Path) -> None:
    login(kyok)
    bodies: list[Any] = []

    def created(request: httpx.Request) -> httpx.Response:
        bodies.append((json.loads(request.content), dict(request.headers)))
        return httpx.Response(
            201, json={"metadata": {"collectionTotal": 1}, "resources": [KEY | {"aliases": ["a1"]}]}
        )

    server.route("POST", "/api/v2/keys", created)
    material = tmp_path / "m.bin"
    material.write_bytes(b"\x05" * 32)
    out = kyok.json(
        "key",
        "create",
        "root-1",
        "--alias",
        "a1",
        "--alias",
        "a2",
        "--tag",
        "t",
        "--description",
        "d",
        "--expiration",
        "2030-01-01T00:00:00Z",
        "--ring",
        "r1",
        "--material-file",
        str(material),
    )
    body, headers = bodies[0]
    res = body["resources"][0]
    assert res["aliases"] == ["a1", "a2"] and res["tags"] == ["t"] and res["description"] == "d"
    assert res["expirationDate"] == "2030-01-01T00:00:00Z" and res["extractable"] is False
    assert res["payload"] == base64.b64encode(b"\x05" * 32).decode()
    assert headers["x-kms-key-ring"] == "r1"
    assert out["id"] == "k1" and out["aliases"] == ["a1"]


def test_key_create_bad_input_is_a_usage_error(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    kyok("key", "create", "x", "--expiration", "tomorrow", code=2)
    kyok("key", "create", "x", "--expiration", "2030-01-01T00:00:00", code=2)
    kyok("key", "create", "x", "--material-b64", "%%%", code=2)
    assert server.requests[-1].url.path == "/api/v2/kyok/whoami"  # nothing was sent


def test_standard_key_material_only_on_request(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    std = KEY | {"extractable": True, "payload": base64.b64encode(b"secret-material").decode()}
    server.route("GET", "/api/v2/keys/k1", {"metadata": {}, "resources": [std]})
    server.route(
        "GET",
        "/api/v2/keys/k1/metadata",
        {"metadata": {}, "resources": [KEY | {"extractable": True}]},
    )
    plain = kyok.json("key", "show", "k1")
    assert "payload" not in plain and server.last.url.path.endswith("/metadata")
    shown = kyok.json("key", "show", "k1", "--show-material")
    assert base64.b64decode(shown["payload"]) == b"secret-material"
    assert "c2VjcmV0" in kyok("key", "show", "k1", "--show-material").stdout


def test_key_list_filters_and_states(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    server.route("GET", "/api/v2/keys", {"metadata": {}, "resources": [KEY]})
    listed = kyok.json(
        "key", "list", "--state", "active,destroyed", "--state", "2", "--root", "--search", "root"
    )
    assert [k["id"] for k in listed] == ["k1"]
    assert dict(server.last.url.params) == {
        "limit": "200",
        "offset": "0",
        "state": "1,5,2",
        "extractable": "false",
        "search": "root",
    }
    kyok("key", "list", "--state", "bogus", code=2)
    kyok("key", "list", "--root", "--standard", code=2)
    table = kyok("key", "list").stdout
    assert "root-1" in table and "Active" in table


def test_key_count(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    server.route("HEAD", "/api/v2/keys", httpx.Response(200, headers={"Key-Total": "7"}))
    assert kyok.json("key", "count", "--standard") == {"count": 7}


def test_purge_asks_first(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    server.route("DELETE", "/api/v2/keys/k1/purge", None, status=204)
    kyok("key", "purge", "k1", input="n\n", code=1)
    assert server.last.method == "GET"  # nothing purged
    kyok("key", "purge", "k1", input="y\n")
    assert server.last.method == "DELETE"
    assert kyok.json("key", "purge", "k1", "--yes") == {"id": "k1", "purged": True}


# ---------------------------------------------------------------- wrap, unwrap, rewrap


def _wrap_route(server: FakeServer, seen: list[Any]) -> None:
    def wrap(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        out = {"ciphertext": "Q1QtMQ==", "keyVersion": {"id": "v1"}}
        if "plaintext" not in body:
            out["plaintext"] = DEK_B64
        return httpx.Response(200, json=out)

    server.route("POST", "/api/v2/keys/k1/actions/wrap", wrap)


def test_wrap_without_input_generates_and_prints_both(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    seen: list[Any] = []
    _wrap_route(server, seen)
    out = kyok.json("wrap", "k1", "--aad", "a", "--aad", "b")
    assert seen[-1] == {"aad": ["a", "b"]}
    assert out == {"ciphertext": "Q1QtMQ==", "keyVersion": {"id": "v1"}, "plaintext": DEK_B64}
    human = kyok("wrap", "k1")
    assert DEK_B64 in human.stdout and "Q1QtMQ==" in human.stdout and "shown once" in human.stderr


@pytest.mark.parametrize("how", ["argument", "stdin-dash", "piped", "in-file", "in-dash"])
def test_wrap_reads_the_dek_from_everywhere(
    kyok: Kyok, server: FakeServer, tmp_path: Path, how: str
) -> None:
    login(kyok)
    seen: list[Any] = []
    _wrap_route(server, seen)
    dek_file = tmp_path / "dek.b64"
    dek_file.write_text(DEK_B64 + "\n")
    args, stdin = {
        "argument": (["k1", DEK_B64], ""),
        "stdin-dash": (["k1", "-"], DEK_B64 + "\n"),
        "piped": (["k1"], DEK_B64 + "\n"),
        "in-file": (["k1", "--in", str(dek_file)], ""),
        "in-dash": (["k1", "--in", "-"], DEK_B64),
    }[how]
    result = kyok("wrap", *args, input=stdin)
    assert seen == [{"plaintext": DEK_B64}]
    assert result.stdout.strip() == "Q1QtMQ=="  # only the ciphertext: pipe-friendly
    assert DEK_B64 not in result.output


def test_wrap_input_errors_are_usage_errors(kyok: Kyok, server: FakeServer, tmp_path: Path) -> None:
    login(kyok)
    kyok("wrap", "k1", "not base64!", code=2)
    f = tmp_path / "f"
    f.write_text(DEK_B64)
    kyok("wrap", "k1", DEK_B64, "--in", str(f), code=2)
    assert "No such file" in kyok("wrap", "k1", "--in", str(tmp_path / "missing"), code=1).stderr


def test_wrap_to_a_file(kyok: Kyok, server: FakeServer, tmp_path: Path) -> None:
    login(kyok)
    _wrap_route(server, [])
    out = tmp_path / "ct"
    kyok("wrap", "k1", DEK_B64, "-o", str(out))
    assert out.read_text() == "Q1QtMQ==\n"


def test_unwrap_prints_the_dek_and_a_rewrap_hint(
    kyok: Kyok, server: FakeServer, tmp_path: Path
) -> None:
    login(kyok)
    seen: list[Any] = []

    def unwrap(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "plaintext": DEK_B64,
                "keyVersion": {"id": "v1"},
                "ciphertext": "TkVX",
                "rewrappedKeyVersion": {"id": "v2"},
            },
        )

    server.route("POST", "/api/v2/keys/k1/actions/unwrap", unwrap)
    result = kyok("unwrap", "k1", "Q1QtMQ==", "--aad", "a")
    assert seen[-1] == {"ciphertext": "Q1QtMQ==", "aad": ["a"]}
    assert result.stdout.strip() == DEK_B64
    assert "TkVX" in result.stderr and "rotated" in result.stderr
    out = kyok.json("unwrap", "k1", input="Q1QtMQ==\n")
    assert out == {
        "plaintext": DEK_B64,
        "keyVersion": {"id": "v1"},
        "ciphertext": "TkVX",
        "rewrappedKeyVersion": {"id": "v2"},
    }
    dek_file = tmp_path / "dek"
    kyok("unwrap", "k1", "Q1QtMQ==", "--out", str(dek_file))
    assert dek_file.read_text().strip() == DEK_B64
    assert stat.S_IMODE(dek_file.stat().st_mode) == 0o600
    kyok("unwrap", "k1", "%%%", code=2)


def test_rewrap(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    server.route(
        "POST",
        "/api/v2/keys/k1/actions/rewrap",
        {"ciphertext": "TkVX", "keyVersion": {"id": "v1"}, "rewrappedKeyVersion": {"id": "v2"}},
    )
    assert kyok("rewrap", "k1", "Q1QtMQ==").stdout.strip() == "TkVX"
    assert kyok.json("rewrap", "k1", "Q1QtMQ==")["rewrappedKeyVersion"] == {"id": "v2"}


# ---------------------------------------------------------------- principals, API keys, roles


def test_apikey_create_prints_the_key_once_with_a_warning(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    server.route("GET", "/api/v2/kyok/principals/p1", P)
    server.route(
        "POST",
        "/api/v2/kyok/principals/p1/apikeys",
        {"id": "ak1", "name": "ci", "principalId": "p1", "apikey": "NEW-SECRET"},
        status=201,
    )
    result = kyok("apikey", "create", "p1", "--name", "ci")
    assert "NEW-SECRET" in result.stdout and "shown only now" in result.stderr
    out = kyok.json("apikey", "create", "p1", "--name", "ci")
    assert out["apikey"] == "NEW-SECRET" and out["id"] == "ak1"


def test_principals_are_found_by_name(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    server.route(
        "GET",
        "/api/v2/kyok/principals",
        {"principals": [P, P | {"id": "p2", "name": "twin"}, P | {"id": "p3", "name": "twin"}]},
    )
    server.route("GET", "/api/v2/kyok/principals/p1", P)
    server.route(
        "POST",
        "/api/v2/kyok/principals/p1/roles",
        B | {"role": "Writer", "scope": "key_ring:r"},
        status=201,
    )
    out = kyok.json("role", "grant", "admin", "writer", "--scope", "key_ring:r")
    assert json.loads(server.last.content) == {"role": "Writer", "scope": "key_ring:r"}
    assert out["scope"] == "key_ring:r"
    assert "several principals" in kyok("role", "list", "twin", code=1).stderr
    assert kyok("role", "list", "nobody", code=5).stdout == ""
    kyok("role", "grant", "admin", "Emperor", code=2)


def test_every_server_command_and_option_has_help() -> None:
    import typer.main

    missing: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                if path or name != "ceremony":
                    walk(sub, [*path, name])
            return
        if not (command.help or "").strip():
            missing.append(" ".join(path))
        for param in command.params:
            if param.name != "help" and not getattr(param, "help", None):
                missing.append(f"{' '.join(path)} {param.name}")

    walk(typer.main.get_command(app), [])
    assert missing == []


def test_settings_and_profile_reprs_hide_the_api_key() -> None:
    profile = _remote.Profile(URL, INSTANCE, API_KEY)
    settings = _remote.ResolvedSettings(URL, INSTANCE, API_KEY)
    assert API_KEY not in repr(profile) and API_KEY not in repr(settings)


def test_names_from_the_server_are_not_rich_markup(kyok: Kyok, server: FakeServer) -> None:
    login(kyok)
    server.route(
        "GET", "/api/v2/keys", {"metadata": {}, "resources": [KEY | {"name": "[bold]x[/]"}]}
    )
    assert "[bold]x[/]" in kyok("key", "list").stdout
