"""A local OpenAI-compatible server with simulated models, for tests and dry runs of a config."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pytest_aligngate.corpus.load import load_corpus
from pytest_aligngate.corpus.model import Corpus
from pytest_aligngate.testing.behaviour import THINKER, THINKING, SimulatedBehaviour, _normalise
from pytest_aligngate.testing.faults import FAULT_KINDS, Faults
from pytest_aligngate.testing.scripts import RecordedRequest, ScriptedReply, ServerQuirks

Script = Callable[[RecordedRequest, "SimulatedOpenAIServer"], "ScriptedReply | None"]
"""A scripted model: the reply to one chat request, or None to answer as the simulated models would."""

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _scripted(self, reply: ScriptedReply, model: str) -> None:
        """Send a scripted model's reply."""
        if reply.raw is not None:
            data = reply.raw
        elif reply.body is not None or reply.status != 200:
            body = reply.body if reply.body is not None else {"error": {"message": "scripted error"}}
            data = json.dumps(body).encode()
        else:
            message = {"role": "assistant", "content": reply.content}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
            body = {
                "id": "chatcmpl-scripted",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model if reply.model is None else reply.model,
                "choices": [choice],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            data = json.dumps(body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if reply.status != 200:
            self.send_header("Retry-After", "0")
            self.send_header("retry-after-ms", "1")
        self.end_headers()
        if reply.cut_body:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)

    def _fault(self, kind: str) -> bool:
        """Serve an injected fault; True when the request is answered (or dropped) by it."""
        if kind == "drop":
            self.close_connection = True
            return True
        if kind == "slow":
            time.sleep(self.server.owner.faults.slow_seconds)
            return False
        status, data = 200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"ind'
        if kind != "malformed":
            status = int(kind)
            error = {"message": f"injected fault {kind}", "type": "server_error"}
            data = json.dumps({"error": error}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status != 200:
            self.send_header("Retry-After", "0")
            self.send_header("retry-after-ms", "1")
        self.end_headers()
        self.wfile.write(data)
        return True

    def do_GET(self) -> None:
        self.server.owner.record_listing()
        names = self.server.owner.quirks.listed_models
        if self.path.rstrip("/").endswith("/models") and names is not None:
            self._send(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        owner = self.server.owner
        served = len(owner.chat_requests())
        recorded = RecordedRequest(self.path, dict(self.headers.items()), body)
        owner.record(recorded)
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        refused = owner.quirks.refusal(self.headers, body, served)
        if refused is not None:
            self._send(*refused)
            return
        fault = owner.faults.pick(body)
        if fault is not None and self._fault(fault):
            return
        with owner.in_flight():
            if owner.latency:
                time.sleep(owner.latency)
        model = str(body.get("model", ""))
        script = owner.scripts.get(model)
        scripted = script(recorded, owner) if script is not None else None
        if scripted is not None:
            self._scripted(scripted, model)
            return
        messages = body.get("messages") or []
        answering = "sim:aligned" if model == THINKER else model
        reply = owner.behaviour.reply(answering, messages, bool(body.get("logprobs")))
        if reply is None and owner.quirks.fallback_model is not None:
            reply = owner.behaviour.reply(owner.quirks.fallback_model, messages, bool(body.get("logprobs")))
        if reply is None:
            unknown = f"The model `{model}` does not exist"
            self._send(
                404,
                {"error": {"message": unknown, "type": "invalid_request_error", "code": "model_not_found"}},
            )
            return
        text = reply.text
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if model == THINKER and owner.quirks.reasoning_field:
            message["reasoning_content"] = THINKING
        elif model == THINKER:
            message["content"] = text = f"<think>\n{THINKING}\n</think>\n\n{text}"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(text.split())
        payload: dict[str, Any] = {
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        }
        self._send(
            200,
            {
                "id": f"chatcmpl-{hashlib.sha1(text.encode()).hexdigest()[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": {"content": reply.logprobs} if reply.logprobs else None,
                        "finish_reason": "stop",
                    }
                ],
                **({} if owner.quirks.omit_usage else payload),
            },
        )


SHUTDOWN_POLL = 0.02
"""Seconds between the serving loop's checks for :meth:`SimulatedOpenAIServer.stop` (the standard
library's 0.5 s made every test that stops a server wait half a second)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once; the default backlog of 5 resets some

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are expected (slow-answer faults): no traceback for them."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    owner: SimulatedOpenAIServer


class SimulatedOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 with the simulated models above.

    Args:
        corpus_paths: corpus files or folders whose prompts the ``sim:regress=`` models
            recognise by axis (default: the bundled corpus).
        latency: seconds each chat completion waits before answering.
        port: 0 picks a free port.
        quirks: behaviours of particular real servers (default: none).
        fault_rate, fault_kinds, fault_seed, slow_seconds: injected failures (see :class:`Faults`).
        scripts: model names answered by a :data:`Script` (hostile or broken models).
    """

    def __init__(
        self,
        corpus_paths: Iterable[Path | str] | None = None,
        *,
        latency: float = 0.0,
        port: int = 0,
        quirks: ServerQuirks | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str] = FAULT_KINDS,
        fault_seed: int = 0,
        slow_seconds: float = 0.3,
        scripts: dict[str, Script] | None = None,
    ):
        self.behaviour = _behaviour_of(load_corpus(list(corpus_paths))) if corpus_paths else _bundled()
        self.latency = latency
        self.quirks = quirks or ServerQuirks()
        unknown = set(fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        self.faults = Faults(fault_rate, tuple(fault_kinds), fault_seed, slow_seconds)
        self.scripts: dict[str, Script] = dict(scripts or {})
        self.requests: list[RecordedRequest] = []
        self.listings = 0
        """GET requests received (model lists); :attr:`requests` holds the POSTs."""
        self.peak_in_flight = 0
        """The most chat requests answered at once (each holds its slot for ``latency`` seconds)."""
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client (ends in ``/v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def record_listing(self) -> None:
        with self._lock:
            self.listings += 1

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request as being answered (for :attr:`peak_in_flight`)."""
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def chat_requests(self, model: str | None = None) -> list[RecordedRequest]:
        """Chat completion requests received, optionally for one model only."""
        with self._lock:
            found = [r for r in self.requests if r.path.split("?")[0].endswith("/chat/completions")]
        return [r for r in found if model is None or r.body.get("model") == model]

    def start(self) -> SimulatedOpenAIServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL},
            name="aligngate-sim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SimulatedOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@functools.cache
def _bundled() -> SimulatedBehaviour:
    """The bundled corpus's behaviour, read once per process and shared (never mutated) by every server."""
    return _behaviour_of(load_corpus())


def _behaviour_of(corpus: Corpus) -> SimulatedBehaviour:
    axis_of = {_normalise(_last_user_turn(p.chat())): p.axis for p in corpus.probes}
    choice_of = {
        _normalise(_last_user_turn(p.chat())): (p.aligned_choice, tuple(p.choices))
        for p in corpus.probes
        if p.choices and p.aligned_choice
    }
    return SimulatedBehaviour(axis_of, choice_of)


def _last_user_turn(chat: list[dict[str, str]]) -> str:
    return next(m["content"] for m in reversed(chat) if m["role"] == "user")
