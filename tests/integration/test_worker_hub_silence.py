"""A logic worker whose hub never answers its hello exits (the hub died while starting it); one that
got ``hello.ok`` keeps waiting for work however long it idles."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from vehicle_host.wire import API_LEVEL, decode, encode

pytestmark = pytest.mark.integration

WORKER = """
import sys
from vehicle_host.logic_worker import worker
worker.HUB_SILENCE_S = 0.5
sys.exit(worker.serve(sys.argv[1]))
"""


def start(endpoint: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WORKER, endpoint], stderr=subprocess.PIPE)


def test_a_worker_whose_hub_never_answers_exits(short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'w.sock'}"
    with zmq.Context() as ctx, ctx.socket(zmq.ROUTER) as hub:
        hub.bind(endpoint)
        worker = start(endpoint)
        assert hub.poll(20_000), "the worker never said hello"
        assert decode(hub.recv_multipart()[1]).type == "hello"
        _, err = worker.communicate(timeout=20)
    assert worker.returncode == 75
    assert b"the hub has not answered" in err


def test_a_worker_that_was_answered_stays(short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'w.sock'}"
    with zmq.Context() as ctx, ctx.socket(zmq.ROUTER) as hub:
        hub.bind(endpoint)
        worker = start(endpoint)
        try:
            assert hub.poll(20_000), "the worker never said hello"
            peer, data = hub.recv_multipart()
            hello = decode(data)
            answer = hello.reply("hello.ok", {"api_level": API_LEVEL, "hub_version": "test"})
            hub.send_multipart([peer, encode(answer)])
            time.sleep(2.0)  # four times its silence limit, with heartbeats only
            assert worker.poll() is None, worker.communicate()[1]
        finally:
            worker.kill()
            worker.wait()


def test_a_worker_exits_when_its_hub_goes_away(short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'w.sock'}"
    ctx = zmq.Context()
    hub = ctx.socket(zmq.ROUTER)
    hub.bind(endpoint)
    worker = start(endpoint)
    try:
        assert hub.poll(20_000), "the worker never said hello"
        peer, data = hub.recv_multipart()
        hub.send_multipart(
            [peer, encode(decode(data).reply("hello.ok", {"api_level": API_LEVEL, "hub_version": "t"}))]
        )
        time.sleep(1.0)  # answered: past its silence limit it still waits for work
        assert worker.poll() is None
        hub.close(linger=0)  # as when the hub process dies: its end of the connection closes
        _, err = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        ctx.term()
    assert worker.returncode == 75
    assert b"the connection to the hub closed" in err
