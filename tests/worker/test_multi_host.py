"""Workers on two hosts against one PostgreSQL: two `python -m app.worker` processes, each in a
network namespace of its own (a test host: `ip netns`, a veth pair), reach PostgreSQL and the Shopify
double only over their veth, through a TCP forwarder on the host end (PostgreSQL listens on
127.0.0.1 only). One worker is killed (SIGKILL) in the middle of a rescore and, separately, of a
sync; the other finishes the job within the heartbeat expiry, nothing is done twice and nothing is
lost: every customer scored once, every customer's metafields written to Shopify once.

Needs root and `ip` (the CI runs as root); skipped otherwise. Cheap by design: a 40-customer shop,
a 0.5 s heartbeat with a 4 s expiry (the workers' environment), and waits on events, not sleeps of a
fixed length."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.config import Settings
from app.kit.sql import lock_key
from app.models import Customer, CustomerScore, Job, StageChange
from app.scoring.service import enqueue_rescore
from app.shops.tokens import token_cipher
from shopify_double import DevStore, create_devstore_app
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import bulk_orders
from tests.sync.conftest import SCOPES, deploy_metafield_definitions

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2's `ip` to make network namespaces (the CI runs as root)",
)

SHOP = "two-hosts.myshopify.com"
CUSTOMERS = 40
HEARTBEAT_S, EXPIRY_S = 0.5, 4.0  # eight beats: a live worker starved on a loaded machine keeps its job
ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120.0  # the longest any step may take on a loaded machine before the test fails


class Forwarder:
    """Accepts on ``listen`` and pipes each connection to ``target``; when either end closes, both
    do (a killed worker's PostgreSQL session ends as it would on a lost host)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen)
        self.address = self.server.getsockname()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            self._close(end)

    def _close(self, end: socket.socket) -> None:
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()
        self._open.discard(end)

    def close(self) -> None:
        self.server.close()
        for end in list(self._open):
            self._close(end)


@dataclass
class Host:
    """A network namespace joined to this host by a veth pair; ``address`` is the host's end."""

    name: str
    address: str

    @classmethod
    def make(cls, name: str, subnet: str) -> Host:
        host_end, inside = f"{name}h", f"{name}n"
        for command in (
            f"ip netns add {name}",
            f"ip link add {host_end} type veth peer name {inside}",
            f"ip link set {inside} netns {name}",
            f"ip addr add {subnet}.1/24 dev {host_end}",
            f"ip link set {host_end} up",
            f"ip netns exec {name} ip addr add {subnet}.2/24 dev {inside}",
            f"ip netns exec {name} ip link set {inside} up",
            f"ip netns exec {name} ip link set lo up",
        ):
            subprocess.run(command.split(), check=True, capture_output=True)
        return cls(name, f"{subnet}.1")

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)  # takes the veth pair along
        subprocess.run(["ip", "link", "del", f"{self.name}h"], capture_output=True)


class HoldSecondCustomerWrite:
    """In front of the double: the second document that writes customers' metafields is held until
    its client goes away (the worker sending it is killed), and then never reaches the store, as a
    request lost with its host."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.writes = 0
        self.held = threading.Event()
        self.dropped = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        if b"metafieldsSet" in body:
            self.writes += 1
            if self.writes == 2:
                self.held.set()
                while (await receive())["type"] != "http.disconnect":
                    pass
                self.dropped.set()
                return
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def again() -> Any:
            return replay.pop() if replay else await receive()

        await self.app(scope, again, send)


def serve(app: Any) -> tuple[uvicorn.Server, int]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    wait_for(lambda: server.started, "the double to start")
    return server, int(server.servers[0].sockets[0].getsockname()[1])


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (result := condition()):
        assert time.monotonic() < deadline, f"waited {WAIT_S:.0f} s for {what}"
        time.sleep(0.05)
    return result


class Workers:
    """`python -m app.worker` processes, each started in one of the hosts."""

    def __init__(self, env: Callable[[Host], dict[str, str]]) -> None:
        self.env = env
        self.running: dict[int, subprocess.Popen[bytes]] = {}
        self.host_of: dict[int, Host] = {}

    def start(self, host: Host) -> int:
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.name, sys.executable, "-m", "app.worker"],
            env=self.env(host),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.running[process.pid] = process  # `ip netns exec` execs the worker: one process, one pid
        self.host_of[process.pid] = host
        return process.pid

    def kill(self, pid: int) -> None:
        process = self.running.pop(pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=WAIT_S)

    def stop_all(self) -> None:
        for process in self.running.values():
            process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.running.clear()


def holder(engine: Engine, shop_id: int, kind: str) -> int | None:
    """The pid of the worker running the shop's job of ``kind`` (its name is host:pid:…)."""
    with engine.connect() as conn:
        locked_by = conn.scalar(
            select(Job.locked_by).where(Job.shop_id == shop_id, Job.kind == kind, Job.state == "running")
        )
    return int(locked_by.split(":")[1]) if locked_by else None


def done(engine: Engine, shop_id: int, kind: str) -> Job | None:
    with Session(engine) as session:
        finished = select(Job).where(Job.shop_id == shop_id, Job.kind == kind, Job.state == "done")
        return session.scalars(finished.order_by(Job.id)).first()


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    tag = os.getpid() % 10000
    subnets = [f"10.{200 + n}.{os.getpid() % 250}" for n in (0, 1)]
    made: list[Host] = []
    try:
        for n, subnet in enumerate(subnets):
            made.append(Host.make(f"rfm{tag}{'ab'[n]}", subnet))
        yield made[0], made[1]
    finally:
        for host in made:
            host.remove()


def test_a_worker_killed_mid_rescore_and_mid_sync_leaves_the_work_to_the_other(
    engine: Engine, session: Session, settings: Settings, database_url: str, hosts: tuple[Host, Host]
) -> None:
    store = DevStore(client_secret=settings.shopify_api_secret)
    store.create_shop(SHOP, plan="Plus")
    deploy_metafield_definitions(store, SHOP)
    people = [c.id for c in store.create_customers(SHOP, CUSTOMERS)]
    token = store.issue_access_token(SHOP, SCOPES)
    shop = create_shop(session, SHOP)
    shop.access_token_encrypted = token_cipher(settings).encrypt(token)
    shop.access_token_expires_at = datetime.now(UTC) + timedelta(days=1)
    session.commit()
    shop_id = shop.shop_id
    now = datetime.now(UTC)
    orders = [
        (c, now - timedelta(days=3 + (i * 37) % 300 + k * 41), 20.0 + i + k)
        for i, c in enumerate(people)
        for k in range(1 + i % 3)
    ]
    bulk_orders(session, shop_id, orders, now)

    gate = HoldSecondCustomerWrite(create_devstore_app(store))
    server, double_port = serve(gate)
    database = make_url(database_url)
    forwarders = [
        Forwarder((host.address, 0), (database.host or "127.0.0.1", database.port or 5432)) for host in hosts
    ] + [Forwarder((host.address, 0), ("127.0.0.1", double_port)) for host in hosts]
    port_of = {(f.address[0], f.target[1]): f.address[1] for f in forwarders}

    def env(host: Host) -> dict[str, str]:
        db = database.set(host=host.address, port=port_of[(host.address, database.port or 5432)])
        double = port_of[(host.address, double_port)]
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "APP_ENV": "test",
            "DATABASE_URL": db.render_as_string(hide_password=False),
            "SHOPIFY_API_KEY": settings.shopify_api_key,
            "SHOPIFY_API_SECRET": settings.shopify_api_secret,
            "SHOPIFY_ADMIN_BASE_URL_TEMPLATE": f"http://{host.address}:{double}/shops/{{shop}}",
            "WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_S),
            "WORKER_HEARTBEAT_EXPIRY_SECONDS": str(EXPIRY_S),
            "LOG_LEVEL": "WARNING",
        }

    workers = Workers(env)
    lock = engine.connect()
    try:
        # Mid-rescore: the rescore has read and computed, and waits for the shop's scores lock
        # (held here) to write; its worker is killed there.
        scores_lock = {"name": lock_key("scores", shop_id)}
        lock.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), scores_lock)
        enqueue_rescore(session, shop_id, now, full=True)
        session.commit()
        started = {workers.start(host) for host in hosts}
        rescoring = wait_for(lambda: holder(engine, shop_id, "rescore"), "a worker to claim the rescore")
        assert rescoring in started
        waiting = text(
            "SELECT count(*) FROM pg_locks JOIN pg_database d ON d.oid = pg_locks.database"
            " WHERE NOT granted AND locktype = 'advisory' AND d.datname = current_database()"
        )
        wait_for(lambda: lock.execute(waiting).scalar(), "the rescore to wait for the scores lock")
        workers.kill(rescoring)
        killed_at = time.monotonic()
        lock.commit()
        assert len(workers.running) == 1  # the other worker alone, until the killed one's host gets a new one
        workers.start(workers.host_of[rescoring])
        job = wait_for(lambda: done(engine, shop_id, "rescore"), "the other worker to finish the rescore")
        assert (
            time.monotonic() - killed_at < EXPIRY_S + 60
        )  # the expiry, not the kind's lease (600 s and more)
        assert job.attempts == 2  # the killed run and the finished one
        scored = session.scalar(select(func.count()).where(CustomerScore.shop_id == shop_id))
        assert scored == CUSTOMERS
        repeated = session.execute(
            select(StageChange.customer_id)
            .where(StageChange.shop_id == shop_id)
            .group_by(StageChange.customer_id)
            .having(func.count() > 1)
        ).all()
        assert repeated == []
        assert not session.scalar(
            select(func.bool_or(Customer.score_pending)).where(Customer.shop_id == shop_id)
        )

        # Mid-sync: the sync the rescore set off wrote its first document of customers; its
        # second is held at the double until its worker is killed, and never arrives.
        wait_for(gate.held.is_set, "the sync's second document of customer writes")
        syncing = wait_for(lambda: holder(engine, shop_id, "sync"), "the sync's worker")
        workers.kill(syncing)
        killed_at = time.monotonic()
        wait_for(gate.dropped.is_set, "the killed worker's request to be dropped")
        job = wait_for(lambda: done(engine, shop_id, "sync"), "the other worker to finish the sync")
        assert (
            time.monotonic() - killed_at < EXPIRY_S + 60
        )  # the expiry, not the kind's lease (600 s and more)
        assert job.attempts == 2
    finally:
        lock.close()
        workers.stop_all()
        server.should_exit = True
        for forwarder in forwarders:
            forwarder.close()

    written: Counter[tuple[str, str]] = Counter()
    for call in store.calls_for(SHOP):
        if "metafieldsSet" in call.query and not call.errors:
            for value in _inputs(call.variables):
                written[(value["ownerId"], value["key"])] += 1
    assert written and max(written.values()) == 1  # nothing written twice
    shop_state = store.shop(SHOP)
    missing = [c for c in people if not shop_state.metafields_of(f"gid://shopify/Customer/{c}")]
    assert missing == []  # nobody lost
    assert len(written) == sum(len(shop_state.metafields_of(f"gid://shopify/Customer/{c}")) for c in people)


def _inputs(value: Any) -> Iterator[dict[str, Any]]:
    """The metafield inputs anywhere in a document's variables."""
    if isinstance(value, dict):
        if "ownerId" in value and "key" in value:
            yield value
        else:
            for item in value.values():
                yield from _inputs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _inputs(item)
