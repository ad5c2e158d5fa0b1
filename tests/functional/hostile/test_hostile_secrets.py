"""Hostile input: secrets. No password, token, nkey seed or JWT may show in what ansible-playbook prints.

Every module of the collection runs through ``ansible-playbook -vvv`` against real clusters, once per kind of
secret: user/password, token, nkey seed file, creds file (operator mode), a password inside a servers URL, and a
password from a natscli context. Each kind gets one playbook holding every module, with runs that succeed and
runs that fail (wrong credentials, a stream that does not exist, an unreachable server), and the playbooks run
side by side. Whatever a module prints, returns or fails with, no secret may be in it: error messages are where
secrets leak, so the failing runs matter most.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nkeys
import pytest
import yaml
from support.jwt_issuer import Identity, Operator
from support.playbooks import run_playbook
from support.servers import NatsCluster, NatsNode, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[3]

# Distinctive secrets: nothing else in the output can contain one of them by chance.
APP_PASSWORD = "pw-7f3a9c-secret"
SYS_PASSWORD = "sys-pw-2b81d4-secret"
WRONG_PASSWORD = "wrong-pw-5e90aa-secret"
URL_APP_PASSWORD = "url-pw-91c0de-secret"
URL_SYS_PASSWORD = "url-sys-pw-64af17-secret"
URL_WRONG_PASSWORD = "url-wrong-pw-0b3d58-secret"
CTX_APP_PASSWORD = "ctx-pw-d15e72-secret"
CTX_SYS_PASSWORD = "ctx-sys-pw-3a9b06-secret"
CTX_WRONG_PASSWORD = "ctx-wrong-pw-c4e1f9-secret"
TOKEN = "tok-3c6e1f-secret"
WRONG_TOKEN = "wrong-tok-8d24b7-secret"

KINDS = ["userpass", "token", "nkey", "creds", "url", "context"]
MODULES = [
    "stream",
    "consumer",
    "stream_backup",
    "stream_restore",
    "jetstream_config",
    "cluster_info",
    "leader_stepdown",
    "raft_peer_remove",
    "consumer_pause",
    "account_jwt",
    "stream_mirror",
    "mirror_info",
    "stream_promote",
    "stream_retire",
]
# Modules without NATS credentials, whose own secrets are checked at -vvv where they are tested.
OWN_SECRETS = {"backup_repository": "tests/functional/test_backup_job.py"}
# Failure messages expected (so a failing run fails for the reason it was written for).
REFUSED = "refused the credentials"
CANNOT_CONNECT = "cannot connect to NATS"
MISSING = "NOSUCHSTREAM"
BAD_ARGUMENT = "argument 'timeout' is of type"
NO_SUCH_PEER = "no-such-server"
NOT_OPERATOR_MODE = "not in operator mode"
NOT_SYSTEM_ACCOUNT = "not the system account"
SEED_REFUSED = "holds an nkey seed"
# These clusters have no JetStream domains: the primary stream_mirror reads is never there, which it says.
NO_ORIGIN = "origin_unreachable"
ORIGIN_DOMAIN = "nosuchdomain"
WAIT = {"wait_timeout": 15.0}


@dataclass
class Case:
    """One task of a playbook: a module, its arguments, and how it is meant to end."""

    label: str
    module: str
    args: dict[str, Any]
    expect: str = "ok"  # "ok" (ok or changed), or a fragment of the failure's output
    check_mode: bool = False


@dataclass
class Kind:
    """One kind of secret: the connection options made with it, and the strings that must never show."""

    name: str
    stream: str
    app: dict[str, Any]  # the stream account's credentials, and the servers
    wrong: dict[str, Any]  # credentials the servers refuse
    dead: dict[str, Any]  # the right credentials, for a server that does not answer
    entry: dict[str, Any]  # an ``accounts`` entry with the stream account's credentials
    wrong_entry: dict[str, Any]  # an ``accounts`` entry the servers refuse
    secrets: dict[str, str]
    system: dict[str, Any] | None = None  # the system account's credentials, where this kind has them
    env: dict[str, str] = field(default_factory=dict)
    # Beyond wrong credentials for every module: which modules also fail on an unreachable server and on a
    # stream that does not exist (every one where the secret is part of the servers, and so of every message).
    dead_modules: tuple[str, ...] = ("stream_backup",)
    missing_modules: tuple[str, ...] = ("stream_backup",)
    operator_mode: bool = False  # account_jwt succeeds only there
    account_jwt: str = ""  # a new account of the operator-mode cluster, for account_jwt to push
    seeded_jwt: str = ""  # a creds file's content (user JWT and seed), given to account_jwt as the JWT by mistake


@dataclass
class Run:
    kind: Kind
    cases: list[Case]
    result: subprocess.CompletedProcess

    @property
    def output(self) -> str:
        return self.result.stdout + "\n" + self.result.stderr


def module_args(
    module: str, stream: str, connection: dict[str, Any], path: Path, backup: Path, account_jwt: str = ""
) -> dict[str, Any]:
    """Arguments for ``module`` that succeed with the right credentials and a server that answers (account_jwt:
    the system account's, and servers in operator mode)."""
    return {
        "stream": {**connection, "name": stream, "subjects": [f"{stream}.>"], "replicas": 3},
        "consumer": {**connection, "stream": stream, "name": "WORKER"},
        "stream_backup": {**connection, "streams": [stream], "path": str(path / "backup")},
        "stream_restore": {**connection, "path": str(backup), "if_exists": "skip"},
        "jetstream_config": {**connection, "state": "exported", "path": str(path / "export")},
        "cluster_info": {**connection},
        "leader_stepdown": {**connection, "stream": stream, **WAIT},
        "raft_peer_remove": {**connection, "stream": stream, "peer": NO_SUCH_PEER, **WAIT},
        "consumer_pause": {**connection, "streams": [stream], "state": "resumed"},
        "account_jwt": {**connection, "jwt": account_jwt},
        "stream_mirror": {**connection, "origin_domain": ORIGIN_DOMAIN, "record": str(path / "record.json")},
        "mirror_info": {**connection},
        "stream_promote": {**connection},
        # Its counterpart is the same cluster: the stream is no promoted mirror of itself, so it is kept.
        "stream_retire": {**connection, "counterpart": counterpart(connection)},
    }[module]


def counterpart(connection: dict[str, Any]) -> dict[str, Any]:
    """The connection as an entry of stream_retire's counterpart (servers and credentials only)."""
    keys = ("servers", "context", "user", "password", "token", "creds", "nkey")
    return {key: value for key, value in connection.items() if key in keys}


def missing_stream_args(module: str, connection: dict[str, Any], path: Path, backup: Path) -> dict[str, Any]:
    """Arguments for ``module`` that name a stream the account does not have."""
    return {
        "consumer": {**connection, "stream": MISSING, "name": "WORKER"},
        "stream_backup": {**connection, "stream": MISSING, "path": str(path / "backup")},
        "stream_restore": {**connection, "path": str(backup), "streams": [MISSING]},
        "jetstream_config": {**connection, "state": "exported", "path": str(path / "export"), "streams": [MISSING]},
        "leader_stepdown": {**connection, "stream": MISSING, **WAIT},
        "raft_peer_remove": {**connection, "stream": MISSING, "peer": NO_SUCH_PEER, **WAIT},
        "consumer_pause": {**connection, "streams": [MISSING], "state": "resumed"},
        "mirror_info": {**connection, "streams": [MISSING]},
        "stream_promote": {**connection, "streams": [MISSING]},
        "stream_retire": {**connection, "counterpart": counterpart(connection), "streams": [MISSING]},
    }[module]


def cases_for(kind: Kind, workdir: Path) -> list[Case]:
    """Every module succeeds once (in the order that makes what the next one needs), then fails in several ways."""
    stream, app = kind.stream, kind.app
    backup = workdir / "ok" / "backup"  # made by the first stream_backup, read by every stream_restore

    def args(module: str, connection: dict[str, Any], where: str) -> dict[str, Any]:
        return module_args(module, stream, connection, workdir / where, backup, kind.account_jwt)

    def succeeds(module: str) -> Case:
        if module == "account_jwt":
            # The system account, in operator mode; elsewhere it fails for want of either, which is said.
            connection = kind.system or app
            if kind.operator_mode:
                return Case("succeeds", module, args(module, connection, "ok"))
            expect = NOT_OPERATOR_MODE if kind.system is not None else NOT_SYSTEM_ACCOUNT
            return Case("no system account in operator mode", module, args(module, connection, "ok"), expect)
        if kind.system is not None and module in ("cluster_info", "raft_peer_remove"):
            # The meta group: the system account's view, and the stream account's own through ``accounts``.
            system = {**kind.system, "accounts": [kind.entry]}
            if module == "raft_peer_remove":
                return Case("succeeds", module, {**system, "peer": NO_SUCH_PEER, **WAIT}, check_mode=True)
            return Case("succeeds", module, system)
        if module == "stream_mirror":
            return Case("no primary to mirror", module, args(module, app, "ok"), NO_ORIGIN)
        case = Case("succeeds", module, args(module, app, "ok"), check_mode=module == "leader_stepdown")
        if module in ("cluster_info", "raft_peer_remove"):
            case.args["accounts"] = [kind.entry]
        return case

    cases = [succeeds(module) for module in MODULES]
    cases += [Case("wrong credentials", module, args(module, kind.wrong, "wrong"), REFUSED) for module in MODULES]
    cases.append(Case("refused accounts entry", "cluster_info", {**app, "accounts": [kind.wrong_entry]}, REFUSED))
    refused_counterpart = {**args("stream_retire", app, "counterpart"), "counterpart": kind.wrong_entry}
    cases.append(Case("refused counterpart", "stream_retire", refused_counterpart, REFUSED))
    # A creds file given as the account JWT: its seed and user JWT are masked, and nothing is sent.
    seeded = {**(kind.system or app), "jwt": kind.seeded_jwt}
    cases.append(Case("creds given as the JWT", "account_jwt", seeded, SEED_REFUSED))
    cases += [
        Case("unreachable server", module, args(module, kind.dead, "dead"), CANNOT_CONNECT)
        for module in kind.dead_modules
    ]
    cases += [
        Case("missing stream", module, missing_stream_args(module, app, workdir / "missing", backup), MISSING)
        for module in kind.missing_modules
    ]
    # Arguments refused before the module's own code runs: Ansible shows them all in the failure.
    cases += [
        Case("refused argument", module, {**args(module, app, "badarg"), "timeout": "soon"}, BAD_ARGUMENT)
        for module in MODULES
    ]
    return cases


# ---------------------------------------------------------------------------------------------- servers


def with_password(urls: list[str], user: str, password: str) -> list[str]:
    return [url.replace("nats://", f"nats://{user}:{password}@", 1) for url in urls]


def creds_parts(creds: str) -> tuple[str, str]:
    """The user JWT and the nkey seed of a creds file's content."""
    jwt = re.search(r"-----BEGIN NATS USER JWT-----\n(\S+)\n", creds)
    seed = re.search(r"-----BEGIN USER NKEY SEED-----\n(\S+)\n", creds)
    assert jwt and seed, creds
    return jwt[1], seed[1]


@dataclass
class Clusters:
    plain: NatsCluster  # accounts with password users and nkey users
    token: NatsCluster  # a token, no accounts
    operator: NatsCluster  # operator mode (a full nats resolver): creds
    nkey_users: dict[str, Identity]
    creds: dict[str, str]
    account_jwt: str  # an account of the operator-mode cluster that its servers do not have yet


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    """Three 3-node clusters, started side by side: one per way the servers check credentials."""
    identities = {name: Identity.new(nkeys.PREFIX_BYTE_USER) for name in ("app", "sys", "wrong")}

    def users(*entries: tuple[str, str], nkey: Identity) -> str:
        listed = [f'{{user: "{user}", password: "{password}"}}' for user, password in entries]
        return ", ".join([*listed, f'{{nkey: "{nkey.public}"}}'])

    # One user per kind of secret in each account (user/password, URL, context), and an nkey user.
    app_users = users(
        ("app", APP_PASSWORD), ("urlapp", URL_APP_PASSWORD), ("ctxapp", CTX_APP_PASSWORD), nkey=identities["app"]
    )
    sys_users = users(
        ("sys", SYS_PASSWORD), ("urlsys", URL_SYS_PASSWORD), ("ctxsys", CTX_SYS_PASSWORD), nkey=identities["sys"]
    )
    plain_auth = (
        f"accounts {{\n  APP {{ jetstream: enabled, users: [{app_users}] }}\n  SYS {{ users: [{sys_users}] }}\n}}\n"
        "system_account: SYS\n"
    )
    operator = Operator()
    operator.account("APP")
    stranger = Operator()  # signs users the servers do not know
    stranger.account("APP")
    creds = {"app": operator.creds("APP"), "sys": operator.creds("SYS"), "wrong": stranger.creds("APP")}
    operator.account("PUSHED")  # not preloaded: account_jwt pushes it

    def operated(node: NatsNode) -> str:
        return operator.server_config("full", node.dir / "jwt", preload=["SYS", "APP"])

    made = []
    for name, auth in (
        ("secpw", lambda node: plain_auth),
        ("sectok", lambda node: f'authorization {{ token: "{TOKEN}" }}'),
        ("secop", operated),
    ):
        cluster = NatsCluster(tmp_path_factory.mktemp(name), size=3, name=name)
        for node in cluster.nodes:
            node.auth_config = auth(node)
        made.append(cluster)
    try:
        with ThreadPoolExecutor(len(made)) as pool:
            list(pool.map(NatsCluster.start, made))
        creds_file = tmp_path_factory.mktemp("secop-creds") / "app.creds"
        creds_file.write_text(creds["app"])
        wait_for_jetstream(made[-1].urls, creds_file)
        yield Clusters(*made, nkey_users=identities, creds=creds, account_jwt=operator.account_jwt("PUSHED"))
    finally:
        for cluster in made:
            for node in cluster.nodes:
                node.kill()


def wait_for_jetstream(urls: list[str], creds: Path, timeout: float = 30.0) -> None:
    """Until the operator-mode account has JetStream on every server (2.12 enables it a moment after start)."""
    import asyncio
    import json

    import nats

    async def enabled() -> bool:
        nc = await nats.connect(urls, user_credentials=str(creds))
        try:
            reply = await nc.request("$JS.API.INFO", b"", timeout=2)
            return not json.loads(reply.data).get("error")
        except Exception:
            return False
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while not asyncio.run(enabled()):
        assert time.monotonic() < deadline, "JetStream never came up for the operator-mode account"
        time.sleep(0.5)


def make_kinds(clusters: Clusters, workdir: Path) -> list[Kind]:
    plain = clusters.plain.urls
    host = clusters.plain.nodes[0].host
    dead_url = f"nats://{host}:{free_port(host)}"  # nothing listens there
    dead = {"servers": [dead_url], "connect_timeout": 2.0}

    def kind(name: str, **details: Any) -> Kind:
        jwts = {"account_jwt": clusters.account_jwt, "seeded_jwt": clusters.creds["app"]}
        return Kind(name=name, stream=f"SECRETS_{name.upper()}", **jwts, **details)

    userpass = kind(
        "userpass",
        app={"servers": plain, "user": "app", "password": APP_PASSWORD},
        system={"servers": plain, "user": "sys", "password": SYS_PASSWORD},
        wrong={"servers": plain, "user": "app", "password": WRONG_PASSWORD},
        dead={**dead, "user": "app", "password": APP_PASSWORD},
        entry={"user": "app", "password": APP_PASSWORD},
        wrong_entry={"user": "app", "password": WRONG_PASSWORD},
        secrets={"APP password": APP_PASSWORD, "SYS password": SYS_PASSWORD, "wrong password": WRONG_PASSWORD},
    )

    tokens = clusters.token.urls
    token = kind(
        "token",
        app={"servers": tokens, "token": TOKEN},
        wrong={"servers": tokens, "token": WRONG_TOKEN},
        dead={**dead, "token": TOKEN},
        entry={"token": TOKEN},
        wrong_entry={"token": WRONG_TOKEN},
        secrets={"token": TOKEN, "wrong token": WRONG_TOKEN},
    )

    seeds = {}
    for name, identity in clusters.nkey_users.items():
        seeds[name] = workdir / "nkey" / f"{name}.nk"
        seeds[name].parent.mkdir(parents=True, exist_ok=True)
        seeds[name].write_bytes(identity.seed)
    nkey = kind(
        "nkey",
        app={"servers": plain, "nkey": str(seeds["app"])},
        system={"servers": plain, "nkey": str(seeds["sys"])},
        wrong={"servers": plain, "nkey": str(seeds["wrong"])},
        dead={**dead, "nkey": str(seeds["app"])},
        entry={"nkey": str(seeds["app"])},
        wrong_entry={"nkey": str(seeds["wrong"])},
        secrets={f"{name} nkey seed": identity.seed.decode() for name, identity in clusters.nkey_users.items()},
    )

    files, creds_secrets = {}, {}
    for name, content in clusters.creds.items():
        files[name] = workdir / "creds" / f"{name}.creds"
        files[name].parent.mkdir(parents=True, exist_ok=True)
        files[name].write_text(content)
        jwt, seed = creds_parts(content)
        creds_secrets.update({f"{name} creds JWT": jwt, f"{name} creds seed": seed})
    operated = clusters.operator.urls
    creds = kind(
        "creds",
        app={"servers": operated, "creds": str(files["app"])},
        system={"servers": operated, "creds": str(files["sys"])},
        wrong={"servers": operated, "creds": str(files["wrong"])},
        dead={**dead, "creds": str(files["app"])},
        entry={"creds": str(files["app"])},
        wrong_entry={"creds": str(files["wrong"])},
        secrets=creds_secrets,
        operator_mode=True,
    )

    url_app = with_password(plain, "urlapp", URL_APP_PASSWORD)
    url_wrong = with_password(plain, "urlapp", URL_WRONG_PASSWORD)
    url = kind(
        "url",
        app={"servers": url_app},
        system={"servers": with_password(plain, "urlsys", URL_SYS_PASSWORD)},
        wrong={"servers": url_wrong},
        dead={**dead, "servers": with_password([dead_url], "urlapp", URL_APP_PASSWORD)},
        entry={"servers": url_app},
        wrong_entry={"servers": url_wrong},
        secrets={
            "APP password in a URL": URL_APP_PASSWORD,
            "SYS password in a URL": URL_SYS_PASSWORD,
            "wrong password in a URL": URL_WRONG_PASSWORD,
        },
        dead_modules=tuple(MODULES),
        missing_modules=tuple(
            module for module in MODULES if module not in ("stream", "cluster_info", "account_jwt", "stream_mirror")
        ),
    )

    config_home = workdir / "context" / "config"
    contexts = config_home / "nats" / "context"
    contexts.mkdir(parents=True)
    for name, (urls, user, password) in {
        "ctx-app": (plain, "ctxapp", CTX_APP_PASSWORD),
        "ctx-sys": (plain, "ctxsys", CTX_SYS_PASSWORD),
        "ctx-wrong": (plain, "ctxapp", CTX_WRONG_PASSWORD),
        "ctx-dead": ([dead_url], "ctxapp", CTX_APP_PASSWORD),
    }.items():
        (contexts / f"{name}.json").write_text(json.dumps({"url": ",".join(urls), "user": user, "password": password}))
    context = kind(
        "context",
        app={"context": "ctx-app"},
        system={"context": "ctx-sys"},
        wrong={"context": "ctx-wrong"},
        dead={"context": "ctx-dead", "connect_timeout": 2.0},
        entry={"context": "ctx-app"},
        wrong_entry={"context": "ctx-wrong"},
        secrets={
            "APP password in a context": CTX_APP_PASSWORD,
            "SYS password in a context": CTX_SYS_PASSWORD,
            "wrong password in a context": CTX_WRONG_PASSWORD,
        },
        env={"XDG_CONFIG_HOME": str(config_home)},
    )
    return [userpass, token, nkey, creds, url, context]


# ---------------------------------------------------------------------------------------------- playbooks


def case_key(index: int) -> str:
    return f"c{index:02d}"


def run_cases(kind: Kind, cases: list[Case], workdir: Path, config: Path) -> subprocess.CompletedProcess:
    """One playbook with every case as a task (ignore_errors), its arguments read from a vars file."""
    workdir.mkdir(parents=True, exist_ok=True)
    tasks = []
    for index, case in enumerate(cases):
        key = case_key(index)
        tasks.append(
            {
                "name": f"{key} {case.module}: {case.label}",
                f"natsops.jetstream.{case.module}": {arg: f"{{{{ cases['{key}']['{arg}'] }}}}" for arg in case.args},
                "check_mode": case.check_mode,
                "ignore_errors": True,
            }
        )
    play = {"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}
    playbook = workdir / "secrets.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False, width=200))
    return run_playbook(
        playbook,
        workdir,
        extra_vars={"cases": {case_key(index): case.args for index, case in enumerate(cases)}},
        environ={name: value for name, value in os.environ.items() if not name.startswith("NATS_")},
        env={
            "ANSIBLE_CONFIG": str(config),
            "XDG_CONFIG_HOME": str(workdir / "no-config"),  # no natscli context of this machine is read
            **kind.env,
        },
        verbosity=3,
        timeout=150,
    )


# ansible-playbook polls its workers every millisecond by default: several side by side on a small machine
# spend the CPU on polling that their modules need. Nothing of what is printed depends on it.
ANSIBLE_CFG = "[defaults]\ninternal_poll_interval = 0.02\n"
SIDE_BY_SIDE = 3


@pytest.fixture(scope="module")
def runs(clusters: Clusters, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every kind's playbook, a few side by side (modules wait on servers as much as they compute)."""
    workdir = tmp_path_factory.mktemp("secrets")
    config = workdir / "ansible.cfg"
    config.write_text(ANSIBLE_CFG)
    kinds = make_kinds(clusters, workdir)
    planned = {kind.name: cases_for(kind, workdir / kind.name) for kind in kinds}

    def run(kind: Kind) -> Run:
        return Run(kind, planned[kind.name], run_cases(kind, planned[kind.name], workdir / kind.name / "play", config))

    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        return {each.kind.name: each for each in pool.map(run, kinds)}


@pytest.fixture(scope="module")
def every_secret(runs: dict[str, Run]) -> dict[str, str]:
    """All kinds' secrets: none may show in any kind's output."""
    return {f"{name}: {label}": secret for name, run in runs.items() for label, secret in run.kind.secrets.items()}


def task_sections(stdout: str) -> dict[str, str]:
    """Each task's part of the -vvv output, by case key."""
    sections = {}
    for part in re.split(r"(?m)^TASK \[", stdout)[1:]:
        sections[part.split(" ", 1)[0]] = part
    return sections


def outcome(section: str) -> str:
    found = re.search(r"(?m)^(ok|changed|fatal|skipping): \[localhost\]", section)
    return found[1] if found else "(none)"


def task_of(lines: list[str], index: int) -> str:
    for line in reversed(lines[: index + 1]):
        if line.startswith("TASK ["):
            return line.rstrip("* ")
    return "(before any task)"


def excerpt(line: str, secret: str, width: int = 160) -> str:
    """The line around the secret (JWTs make lines long)."""
    at = line.find(secret)
    if at < 0 or len(line) <= 2 * width + len(secret):
        return line
    start, end = max(0, at - width), at + len(secret) + width
    return ("..." if start else "") + line[start:end] + ("..." if end < len(line) else "")


def windows(hits: list[int], size: int, around: int = 2) -> list[range]:
    """The lines around each hit, windows that touch merged into one."""
    merged: list[range] = []
    for index in hits:
        start, stop = max(0, index - around), min(size, index + around + 1)
        if merged and start <= merged[-1].stop:
            merged[-1] = range(merged[-1].start, max(stop, merged[-1].stop))
        else:
            merged.append(range(start, stop))
    return merged


def leak_report(output: str, secrets: dict[str, str], tasks_shown: int = 4, windows_shown: int = 3) -> list[str]:
    """For each secret that shows: the tasks it shows in, with the lines around it (marked >>).

    The tasks where it shows in the most places (arguments, message, Ansible's error line) come first.
    """
    lines = output.splitlines()
    reports = []
    for label, secret in secrets.items():
        by_task: dict[str, list[int]] = {}
        for index, line in enumerate(lines):
            if secret in line:
                by_task.setdefault(task_of(lines, index), []).append(index)
        if not by_task:
            continue
        count = sum(len(hits) for hits in by_task.values())
        spots = {task: windows(hits, len(lines)) for task, hits in by_task.items()}
        ordered = sorted(spots, key=lambda task: -len(spots[task]))
        report = [f"{label} ({secret[:24]}...) on {count} line(s), in {len(by_task)} task(s):"]
        for task in ordered[:tasks_shown]:
            report.append(f"  {task}: {len(by_task[task])} line(s)")
            for window in spots[task][:windows_shown]:
                report += [
                    f"    {'>>' if secret in lines[each] else '  '} {each + 1:5d}: {excerpt(lines[each], secret)}"
                    for each in window
                ]
                report.append("       --")
        if len(ordered) > tasks_shown:
            report.append(
                "  also in: " + ", ".join(task[len("TASK [") :].rstrip("]") for task in ordered[tasks_shown:])
            )
        reports.append("\n".join(report))
    return reports


# ---------------------------------------------------------------------------------------------- tests


def test_every_module_of_the_collection_is_covered() -> None:
    modules = {path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__"}
    assert modules - set(OWN_SECRETS) == set(MODULES), (
        "a module was added or removed: run it with every kind of secret too"
    )


@pytest.mark.parametrize("name", KINDS)
def test_no_secret_shows_in_the_output(name: str, runs: dict[str, Run], every_secret: dict[str, str]) -> None:
    run = runs[name]
    # Every task ran: an output without the modules' results would prove nothing.
    ran = task_sections(run.result.stdout)
    assert "PLAY RECAP" in run.result.stdout and len(ran) == len(run.cases), (
        f"the playbook did not run every task (rc {run.result.returncode}, {len(ran)} of {len(run.cases)}):\n"
        + run.output[-4000:]
    )
    assert {case.module for case in run.cases} == set(MODULES)
    leaks = leak_report(run.output, every_secret)
    if leaks:
        pytest.fail(f"{len(leaks)} secret(s) in the output of ansible-playbook -vvv ({name}):\n\n" + "\n\n".join(leaks))


@pytest.mark.parametrize("name", KINDS)
def test_every_run_ends_as_planned(name: str, runs: dict[str, Run]) -> None:
    """The control: the runs that should succeed did, and the failing ones failed for their own reason."""
    run = runs[name]
    sections = task_sections(run.result.stdout)
    wrong = []
    for index, case in enumerate(run.cases):
        section = sections.get(case_key(index), "")
        ended = outcome(section)
        if case.expect == "ok":
            if ended not in ("ok", "changed"):
                wrong.append(f"{case_key(index)} {case.module} ({case.label}): expected success, got {ended}")
        elif ended != "fatal" or case.expect not in section:
            wrong.append(
                f"{case_key(index)} {case.module} ({case.label}): expected a failure with {case.expect!r}, got {ended}"
            )
        if wrong and wrong[-1].startswith(case_key(index)):
            wrong[-1] += "\n      " + "\n      ".join(section.splitlines()[-25:])
    if wrong:
        pytest.fail(f"{len(wrong)} run(s) did not end as planned ({name}):\n  " + "\n  ".join(wrong))
