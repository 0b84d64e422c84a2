"""A prescription that needs a clinician's yes, presented to an API that wants a proof of possession.

Everything runs here, offline: the embedded broker, a small FastAPI prescriptions API (``possession="required"``:
only key-bound tokens, each request with a fresh proof by the holder's key) under uvicorn on a loopback port, and
a task whose prescription tool needs approval. The approver is a plain function standing in for a person: it
approves the first prescription and refuses the second. While the approved call's token is still alive, someone
who copied it (and its proof) out of a log tries it without the key.

    python examples/approval_and_pop.py
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI

from agentwrit_tools import ApprovalRequest, Broker, Claims, Credential, Policy, Task, Verifier, scoped_tool
from agentwrit_tools.broker import EmbeddedBroker
from agentwrit_tools.resource.fastapi import Requires, install


def prescriptions_api(verifier: Verifier) -> FastAPI:
    api = FastAPI()
    install(api)
    write = Requires(verifier, "write:prescriptions:{patient_id}", access_log=None, possession="required")

    @api.post("/prescriptions/{patient_id}")
    def prescribe(patient_id: str, drug: str, claims: Claims = Depends(write)) -> dict[str, Any]:  # noqa: B008
        return {"patient_id": patient_id, "drug": drug, "written_by": claims.sub}

    return api


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    running = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


def approver(request: ApprovalRequest) -> Any:
    """Stands in for a clinician looking at exactly this call."""
    print(f"  asked: {request.tool} {request.canonical_arguments} needing {', '.join(request.scope)}")
    return request.approve("dr-house") if request.arguments["drug"] == "atorvastatin" else request.deny("dr-house")


def someone_reads_the_log(url: str, logged: dict[str, str]) -> None:
    """The token and proof a debug log kept, tried by whoever reads the log (the token is still alive)."""
    token = logged["Authorization"].partition(" ")[2]
    for how, headers in (("as a bearer token", {"Authorization": f"Bearer {token}"}), ("with its proof", logged)):
        answer = httpx.post(url, params={"drug": "fentanyl"}, headers=headers)
        print(f"  the copied token {how}: {answer.status_code} ({answer.json()['detail']})")


def main() -> None:
    with EmbeddedBroker() as broker, Verifier(broker.url) as verifier, served(prescriptions_api(verifier)) as api:
        app = broker.create_app("clinic", ["write:prescriptions:*"])

        @scoped_tool("write:prescriptions:{patient_id}", ttl=15, approval=True)
        def write_prescription(patient_id: str, drug: str, credential: Credential) -> str:
            """Write a prescription."""
            url = f"{api}/prescriptions/{patient_id}"
            headers = credential.headers_for("POST", url)  # Authorization: DPoP …, DPoP: <a proof for this request>
            written = httpx.post(url, params={"drug": drug}, headers=headers).json()
            someone_reads_the_log(url, headers)  # a careless debug log kept both headers
            return str(written)

        policy = Policy().with_approval(approver, scopes=["write:prescriptions:*"])
        with (
            Broker(broker.url, app.client_id, app.client_secret, proof_of_possession=True) as client,
            Task(client, orch_id="clinic", task_id="visit-1", ceiling="write:prescriptions:P-1042", policy=policy) as t,
        ):
            for drug in ("atorvastatin", "warfarin"):
                result = t.call(write_prescription, {"patient_id": "P-1042", "drug": drug})
                print(f"{drug}: {result.content}")
            decisions = [e.type for e in t.events if e.type.startswith("approval_")]
            print("trace:", ", ".join(decisions))
            print(f"{len([e for e in t.events if e.type == 'minted'])} credential(s) minted")


if __name__ == "__main__":
    main()
