# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""One way to reach NATS for every module: options, natscli contexts, TLS and the client itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import ssl
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:  # nats-py's nkeys extra: needed for creds and nkey files only
    import nkeys
except ImportError:
    nkeys = None

from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import DiskError, NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_positive
from ansible_collections.natsops.jetstream.plugins.module_utils.core.nats_client import (
    HAS_NATS,
    NATS_IMPORT_ERROR,
    ConnectionClosedError,
    NatsClient,
    NatsTimeoutError,
    NoServersError,
    SlowConsumerError,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.nats_client import NatsError as NatsClientError

DEFAULT_SERVER = "nats://127.0.0.1:4222"

# Every option here is documented once, in plugins/doc_fragments/connection.py.
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "servers": {"type": "list", "elements": "str", "fallback": (env_fallback, ["NATS_URL"])},
    "context": {"type": "str", "fallback": (env_fallback, ["NATS_CONTEXT"])},
    "user": {"type": "str", "fallback": (env_fallback, ["NATS_USER"])},
    "password": {"type": "str", "no_log": True, "fallback": (env_fallback, ["NATS_PASSWORD"])},
    "token": {"type": "str", "no_log": True, "fallback": (env_fallback, ["NATS_TOKEN"])},
    "creds": {"type": "path", "fallback": (env_fallback, ["NATS_CREDS"])},
    "nkey": {"type": "path", "fallback": (env_fallback, ["NATS_NKEY"])},
    "tls_ca": {"type": "path", "fallback": (env_fallback, ["NATS_CA"])},
    "tls_cert": {"type": "path", "fallback": (env_fallback, ["NATS_CERT"])},
    "tls_key": {"type": "path", "no_log": False, "fallback": (env_fallback, ["NATS_KEY"])},
    "connect_timeout": {"type": "float", "default": 5.0},
    "timeout": {"type": "float", "default": 10.0},
    "domain": {"type": "str"},
}

CONNECTION_MUTUALLY_EXCLUSIVE = [("token", "user"), ("token", "creds"), ("creds", "user"), ("nkey", "creds")]

# natscli context keys -> our option names (only those that mean the same thing).
_CONTEXT_KEYS = {
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey",
    "ca": "tls_ca",
    "cert": "tls_cert",
    "key": "tls_key",
    "jetstream_domain": "domain",
}
_CONTEXT_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


def nats_argument_spec(**extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shared connection options plus a module's own."""
    spec = {name: dict(option) for name, option in CONNECTION_ARGUMENT_SPEC.items()}
    spec.update(extra)
    return spec


# Credentials of other accounts, for modules that look into every account (cluster_info, raft_peer_remove).
ACCOUNTS_OPTION: dict[str, Any] = {
    "type": "list",
    "elements": "dict",
    "default": [],
    "options": {
        "servers": {"type": "list", "elements": "str"},
        "context": {"type": "str"},
        "user": {"type": "str"},
        "password": {"type": "str", "no_log": True},
        "token": {"type": "str", "no_log": True},
        "creds": {"type": "path"},
        "nkey": {"type": "path"},
    },
}
_CREDENTIAL_OPTIONS = ("context", "user", "password", "token", "creds", "nkey")


def account_options(params: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """Connection options for one entry of ``accounts``: its credentials, the task's servers, TLS and timeouts."""
    merged = {name: params.get(name) for name in CONNECTION_ARGUMENT_SPEC}
    for name in _CREDENTIAL_OPTIONS:
        merged[name] = entry.get(name)
    if entry.get("servers"):
        merged["servers"] = entry["servers"]
    elif entry.get("context") and read_context(entry["context"]).get("servers"):
        merged["servers"] = None  # the context's own URL wins over the task's servers
    return resolve_options(merged)


class NatsModule(AnsibleModule):
    """AnsibleModule for this collection's modules: a password or token written into a server URL is as
    secret as the password option, so it is masked wherever Ansible shows a result, the module's
    arguments included, even when the arguments themselves are refused."""

    def secrets_in_params(self, params: dict[str, Any]) -> set[str]:
        """Secrets the options hold outside no_log options; a module adds its own by extending this."""
        return url_secrets(params)

    def _mask_secrets(self) -> None:
        self.no_log_values.update(self.secrets_in_params(getattr(self, "params", None) or {}))

    def exit_json(self, **kwargs: Any) -> NoReturn:
        self._mask_secrets()
        super().exit_json(**kwargs)

    def fail_json(self, msg: str, **kwargs: Any) -> NoReturn:
        self._mask_secrets()
        super().fail_json(msg, **kwargs)


def require_nats(module: Any) -> None:
    """Fail the module with Ansible's standard message when nats-py is not importable."""
    if not HAS_NATS:
        module.fail_json(msg=missing_required_lib("nats-py"), exception=NATS_IMPORT_ERROR)


def run_procedure(module: Any, procedure: Callable[[dict[str, Any], bool], Awaitable[dict[str, Any]]]) -> None:
    """Run a module's procedure and report its result: what every module's main() ends with.

    A NatsOpsError becomes fail_json with its message and details; a result's ``warnings`` become
    Ansible warnings.
    """
    require_nats(module)
    try:
        result = asyncio.run(procedure(module.params, module.check_mode))
    except NatsOpsError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except OSError as exc:
        if not exc.filename:
            raise
        # A file operation no procedure put words to: still a message naming the file, not a traceback.
        error = DiskError.of(exc, "using")
        module.fail_json(msg=error.msg, **error.details)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


def context_dir() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "nats", "context")


def read_context(name: str) -> dict[str, Any]:
    """Read a natscli context (``nats context save NAME``) as our option names."""
    if not _CONTEXT_NAME.match(name):
        raise NatsOpsError(f"context {name!r} is not a valid natscli context name")
    path = os.path.join(context_dir(), name + ".json")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise NatsOpsError(
            f"natscli context {name!r} not found: expected {path} (create it with 'nats context save {name}')"
        ) from None
    except (OSError, ValueError) as exc:
        raise NatsOpsError(f"cannot read natscli context {path}: {exc}") from None
    options: dict[str, Any] = {}
    if raw.get("url"):
        options["servers"] = [url.strip() for url in str(raw["url"]).split(",") if url.strip()]
    for context_key, option in _CONTEXT_KEYS.items():
        if raw.get(context_key):
            options[option] = raw[context_key]
    return options


def resolve_options(params: dict[str, Any]) -> dict[str, Any]:
    """Module parameters, with a natscli context filling what they leave unset."""
    options = {name: params.get(name) for name in CONNECTION_ARGUMENT_SPEC}
    if params.get("context"):
        for name, value in read_context(params["context"]).items():
            if options.get(name) in (None, []):
                options[name] = value
    if not options.get("servers"):
        options["servers"] = [DEFAULT_SERVER]
    check_positive("connect_timeout", options.get("connect_timeout"))
    check_positive("timeout", options.get("timeout"))
    for pair in CONNECTION_MUTUALLY_EXCLUSIVE:
        if all(options.get(name) for name in pair):
            raise NatsOpsError(f"options {pair[0]} and {pair[1]} are mutually exclusive (after reading the context)")
    if bool(options.get("tls_cert")) != bool(options.get("tls_key")):
        raise NatsOpsError("tls_cert and tls_key must be given together")
    for name in ("creds", "nkey", "tls_ca", "tls_cert", "tls_key"):
        if options.get(name):
            options[name] = os.path.expanduser(options[name])
            _check_file_option(name, options[name])
    return options


def _check_file_option(name: str, path: str) -> None:
    if os.path.isdir(path):
        raise NatsOpsError(f"{name} {path} is a directory: give the path of the file itself")
    if not os.path.isfile(path):
        raise NatsOpsError(f"{name} file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise NatsOpsError(f"{name} file {path} is not readable by the user that runs the module")


_CREDS_JWT = re.compile(r"-----BEGIN NATS USER JWT-----\s*\n\s*([A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+)\s")
_CREDS_SEED = re.compile(r"-----BEGIN USER NKEY SEED-----\s*\n\s*(S[A-Z2-7]+)\s")


def check_credential_files(options: dict[str, Any]) -> None:
    """Refuse a malformed creds or nkey file by name, before the server could be blamed for it."""
    if options.get("creds"):
        text = _read_text("creds", options["creds"])
        seed = _CREDS_SEED.search(text)
        if not _CREDS_JWT.search(text) or not seed:
            raise NatsOpsError(
                f"creds file {options['creds']} is not a NATS credentials file: it needs a 'NATS USER JWT' block "
                "and a 'USER NKEY SEED' block, as nsc writes them ('nsc generate creds')"
            )
        _check_seed("creds", options["creds"], seed[1])
    if options.get("nkey"):
        _check_seed("nkey", options["nkey"], _read_text("nkey", options["nkey"]).strip())


def _read_text(name: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(1 << 20)
    except UnicodeDecodeError:
        raise NatsOpsError(f"{name} file {path} is not text: not a NATS {name} file") from None
    except OSError as exc:
        raise NatsOpsError(f"{name} file {path} cannot be read: {exc.strerror or exc}") from None


def _check_seed(name: str, path: str, seed: str) -> None:
    """A user nkey seed: 'SU' and a valid encoding (nkeys' own check)."""
    problem = None
    if not seed.startswith("SU"):
        problem = "it does not hold a user nkey seed (one starting with 'SU')"
    elif nkeys is not None:
        try:
            nkeys.from_seed(bytearray(seed.encode())).wipe()
        except Exception as exc:  # nkeys raises its own types, or binascii's, for a damaged seed
            problem = f"its nkey seed is damaged ({type(exc).__name__})"
    if problem:
        raise NatsOpsError(f"{name} file {path} is malformed: {problem}")


def wants_tls(options: dict[str, Any]) -> bool:
    """Whether the user asked for TLS: a tls:// URL, or any of the TLS files (from the task or a context)."""
    return any(options.get(name) for name in ("tls_ca", "tls_cert", "tls_key")) or any(
        url.strip().lower().startswith("tls://") for url in options["servers"]
    )


def build_tls_context(options: dict[str, Any]) -> ssl.SSLContext | None:
    if not wants_tls(options):
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=options.get("tls_ca"))
    except (ssl.SSLError, OSError) as exc:
        raise NatsOpsError(f"tls_ca file {options['tls_ca']} holds no usable PEM certificate: {exc}") from None
    if options.get("tls_cert"):
        try:
            context.load_cert_chain(options["tls_cert"], options["tls_key"])
        except (ssl.SSLError, OSError) as exc:
            raise NatsOpsError(
                f"tls_cert {options['tls_cert']} and tls_key {options['tls_key']} are not a PEM certificate and "
                f"its private key: {exc}"
            ) from None
    return context


def describe_servers(options: dict[str, Any]) -> str:
    """The server URLs for a message, with any password or token in them masked."""
    return ", ".join(_masked(url) for url in options["servers"])


def _url_secret(url: str) -> str | None:
    """The secret a NATS URL carries: the password of ``user:password@``, or the token of ``token@``."""
    userinfo = urlsplit(url.strip()).netloc.rpartition("@")[0] if "@" in url else ""
    if not userinfo:
        return None
    user, colon, password = userinfo.partition(":")
    return unquote(password if colon else user) or None


def _masked(url: str) -> str:
    secret = _url_secret(url)
    if secret is None:
        return url
    scheme, netloc, *rest = urlsplit(url.strip())
    userinfo, _at, host = netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:********" if colon else "********"
    return urlunsplit((scheme, f"{shown}@{host}", *rest))


def url_secrets(params: dict[str, Any]) -> set[str]:
    """Passwords and tokens written into server URLs (the task's, an ``accounts`` entry's, or a ``counterpart``'s)."""
    urls = list(params.get("servers") or [])
    entries = [*(params.get("accounts") or []), params.get("counterpart")]
    for entry in entries:
        if isinstance(entry, dict):
            urls += list(entry.get("servers") or [])
    return {secret for url in urls if isinstance(url, str) and (secret := _url_secret(url))}


class TlsNotOffered(NatsClientError):  # type: ignore[misc,valid-type]
    """TLS was asked for and the server offers none: refused before anything (credentials) is sent."""

    def __init__(self, server: str) -> None:
        super().__init__(f"{server} offers no TLS")
        self.server = server


class SecureClient(NatsClient):  # type: ignore[misc,valid-type]
    """nats-py's client, made to insist on TLS when asked, as the Go client's Secure option does.

    nats-py upgrades to TLS only when the server's INFO requires it, so a server without TLS would get
    the CONNECT, credentials included, in plaintext. The INFO is judged here, before the CONNECT: a
    server that only offers TLS (``allow_non_tls``) is upgraded, one without TLS is refused.
    """

    require_tls = False
    latest_info: dict[str, Any] | None = None  # the INFO as the server last sent it (nats-py keeps the first)

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        self.latest_info = dict(info)  # a cluster's server sends a new one when its routes change
        if initial_connection and self.require_tls and not info.get("tls_required"):
            if not info.get("tls_available"):
                server = self._current_server.uri.netloc if self._current_server else "the server"
                raise TlsNotOffered(server)
            info["tls_required"] = True  # nats-py reads this very dict next to decide on the upgrade
        await super()._process_info(info, initial_connection)


WATCH_INTERVAL = 0.2  # seconds between looks at whether the client has closed


def _fail_waiting_replies(client: Any) -> None:
    """Fail every request still waiting for its reply, and every flush waiting for its pong.

    nats-py closes a lost connection without touching them: each would wait out its own timeout (the
    finishing request of a restore has an hour), so a run would go on long after nothing could answer.
    """
    if client is None:
        return
    waiting = list((getattr(client, "_resp_map", None) or {}).values()) + list(getattr(client, "_pongs", None) or [])
    for future in waiting:
        if not future.done():
            future.set_exception(ConnectionClosedError())


class Connection:
    """A connected client plus what went wrong on it asynchronously (slow consumers, disconnects)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.client: Any = None
        self.slow_subscriptions: set[int] = set()
        self.disconnected = False
        self.async_errors: list[str] = []
        self._watchdog: asyncio.Task | None = None

    async def _on_error(self, error: Exception) -> None:
        if HAS_NATS and isinstance(error, SlowConsumerError):
            self.slow_subscriptions.add(error.sid)
        else:
            self.async_errors.append(str(error) or type(error).__name__)

    async def _on_disconnect(self) -> None:
        self.disconnected = True
        _fail_waiting_replies(self.client)

    async def _watch(self, client: Any) -> None:
        """Notice a closed client even when nats-py never calls back.

        nats-py flushes pending data while it closes a lost connection; on a reset socket that flush
        raises, and the disconnect and close callbacks are skipped: every waiting request would then
        wait out its timeout.
        """
        while not client.is_closed:
            await asyncio.sleep(WATCH_INTERVAL)
        await self._on_disconnect()

    @property
    def lost(self) -> bool:
        """The connection is gone: nothing more can be sent or received on it."""
        return self.disconnected or self.client is None or self.client.is_closed

    async def open(self) -> None:
        options = self.options
        check_credential_files(options)
        kwargs: dict[str, Any] = {
            "servers": options["servers"],
            "connect_timeout": options["connect_timeout"],
            # One pass over the servers: a lost connection fails the operation instead of resuming
            # it silently (a snapshot or restore cannot survive one). nats-py loops forever on 0.
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnect,
            "closed_cb": self._on_disconnect,
            "name": "natsops.jetstream",
            "tls": build_tls_context(options),
        }
        if options.get("user"):
            kwargs["user"] = options["user"]
            kwargs["password"] = options.get("password") or ""
        if options.get("token"):
            kwargs["token"] = options["token"]
        if options.get("creds"):
            kwargs["user_credentials"] = options["creds"]
        if options.get("nkey"):
            kwargs["nkeys_seed"] = options["nkey"]
        # A hard bound as well: nats-py's own retry logic has been known to loop.
        limit = options["connect_timeout"] * (len(options["servers"]) + 1) + 1
        client = SecureClient()
        client.require_tls = kwargs["tls"] is not None
        try:
            await asyncio.wait_for(client.connect(**kwargs), limit)
        except Exception as exc:  # nats-py raises many unrelated types here
            with contextlib.suppress(Exception):  # a refused connection leaves its socket open otherwise
                await asyncio.wait_for(client.close(), 1.0)
            raise connect_failure(exc, options) from None
        self.client = client
        self._watchdog = asyncio.ensure_future(self._watch(client))

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        if self.client is not None and not self.client.is_closed:
            with contextlib.suppress(Exception):  # closing a dead connection must not hide the real error
                await self.client.close()


def server_info(client: Any) -> dict[str, Any]:
    """The INFO of the server the client is connected to, as last sent (nats-py keeps its first one private)."""
    return dict(getattr(client, "latest_info", None) or getattr(client, "_server_info", None) or {})


def servers_up(client: Any) -> int:
    """Servers of the cluster the connected one routes to, itself included, as its INFO advertises them
    (0 when it advertises none)."""
    return len(set(server_info(client).get("connect_urls") or []))


def with_advertised_servers(options: dict[str, Any], client: Any) -> dict[str, Any]:
    """The options with the cluster's other servers added, as the connected server advertised them.

    A new connection after the one server given has died can then reach the servers that survived.
    """
    scheme = "tls" if any(url.strip().lower().startswith("tls://") for url in options["servers"]) else "nats"
    advertised = [f"{scheme}://{address}" for address in server_info(client).get("connect_urls") or []]
    known = {urlsplit(url.strip()).netloc.rpartition("@")[2] for url in options["servers"]}
    extra = [url for url in advertised if urlsplit(url).netloc not in known]
    return {**options, "servers": [*options["servers"], *extra]}


def server_release(client: Any) -> tuple[int, int, int]:
    """The release of the server the client is connected to, from its INFO (0.0.0 when unknown)."""
    version = str(server_info(client).get("version") or "")
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else (0, 0, 0)


def describe_release(client: Any) -> str:
    info = server_info(client)
    return f"server {info.get('server_name') or '?'} runs nats-server {info.get('version') or '(unknown release)'}"


class ConnectFailed(NatsOpsError):
    """No connection: ``unreachable`` when no server answered (worth trying again), else a server refused it."""

    def __init__(self, msg: str, unreachable: bool) -> None:
        super().__init__(msg)
        self.unreachable = unreachable


def connect_failure(exc: BaseException, options: dict[str, Any]) -> ConnectFailed:
    text = str(exc) or type(exc).__name__
    where = describe_servers(options)
    if isinstance(exc, TlsNotOffered):
        return ConnectFailed(
            f"cannot connect to NATS at {where}: TLS was asked for (a tls:// URL, or tls_ca/tls_cert/tls_key) "
            f"but {exc.server} offers no TLS (secure connection required); nothing, not even the credentials, "
            "was sent to it. Enable TLS on the server, or point servers at one that has it",
            unreachable=False,
        )
    lowered = text.lower()
    if "authorization" in lowered or "authentication" in lowered:
        return ConnectFailed(
            f"cannot connect to NATS at {where}: the server refused the credentials ({text}). "
            "Check user/password, token, creds or nkey, or the context in use.",
            unreachable=False,
        )
    if isinstance(exc, ssl.SSLError) or "ssl" in lowered or "tls" in lowered:
        return ConnectFailed(
            f"cannot connect to NATS at {where}: TLS failed ({text}). Check tls_ca, tls_cert and tls_key.",
            unreachable=False,
        )
    if isinstance(exc, (NoServersError, NatsTimeoutError, asyncio.TimeoutError)):
        text = "no server answered"
    return ConnectFailed(
        f"cannot connect to NATS at {where} within {options['connect_timeout']}s ({text}). "
        "Check that the server runs and that servers/NATS_URL point at its client port.",
        unreachable=True,
    )


@asynccontextmanager
async def nats_connection(options: dict[str, Any]) -> AsyncIterator[Connection]:
    """Open a connection for one module run and always close it."""
    connection = Connection(options)
    await connection.open()
    try:
        yield connection
    finally:
        await connection.close()
