"""The EHR API: the protected service behind MedAssist's tools. It trusts no one, the agents included.

Every route declares the scope it needs as a template over its path (``read:labs:{patient_id}``) and checks the
presented token with the resource-side helper: signature, expiry, revocation (synced with the broker on every
request here, so a revoked token is refused at once), proof of possession (only key-bound tokens, each request
with a fresh proof signed by the agent's own key: a token copied out of a log is refused), and that the
*verified* claims cover the route's scope. A billing token is refused at ``/records``; a token for P-1042 is
refused at ``/labs/P-2000``. Unknown patients are
a 404 problem — only after the token was accepted, so a caller without access learns nothing about who exists.
"""

# No ``from __future__ import annotations`` here: FastAPI reads each route's ``Annotated[Claims, needs(...)]`` at
# definition time, and ``needs`` is local to create_ehr_api, where a string annotation could not be resolved.

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agentwrit_tools import AsyncBroker, Claims
from agentwrit_tools.demo import BackendContext
from agentwrit_tools.resource import PROBLEM_CONTENT_TYPE, Possession
from agentwrit_tools.resource.fastapi import Requires, install

from . import data

__all__ = ["create_ehr_api"]

DRUG = r"^[a-z][a-z-]{1,39}$"


class NotFoundProblem(Exception):
    def __init__(self, what: str) -> None:
        self.what = what


class PrescriptionCheck(BaseModel):
    drug: Annotated[str, Field(pattern=DRUG)]


class Prescription(BaseModel):
    drug: Annotated[str, Field(pattern=DRUG)]
    dose_mg: Annotated[int, Field(ge=1, le=2000)]


def _patient(patient_id: str) -> dict[str, Any]:
    found = data.PATIENTS.get(patient_id)
    if found is None:
        raise NotFoundProblem(f"no patient {patient_id} in this EHR")
    return found


def _interactions(drug: str, current: list[str]) -> list[dict[str, str]]:
    found = []
    for medication in current:
        other = medication.split()[0]
        hit = data.INTERACTIONS.get(frozenset({drug, other}))
        if hit is not None:
            found.append({"with": other, **hit})
    return found


def create_ehr_api(context: BackendContext) -> FastAPI:
    """The EHR API for the broker in ``context``; prescriptions written are kept in memory."""
    verifier = AsyncBroker(context.broker_url, context.client_id, context.client_secret, revocation_bound=0.0)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await verifier.aclose()

    # Only key-bound tokens (with a proof per request) where the broker binds keys; a reference broker issues bearer
    # tokens only, and those are all the API could ever be shown there.
    possession: Possession = "required" if context.key_bound else "auto"
    app = FastAPI(title="MedAssist EHR API", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    install(app)
    written: list[dict[str, Any]] = []
    numbers = itertools.count(5001)

    @app.exception_handler(NotFoundProblem)
    async def not_found(request: Request, exc: NotFoundProblem) -> JSONResponse:
        body = {
            "type": "urn:agentwrit:error:not_found",
            "title": "Not Found",
            "status": 404,
            "detail": exc.what,
            "instance": request.url.path,
            "error_code": "not_found",
        }
        return JSONResponse(body, status_code=404, media_type=PROBLEM_CONTENT_TYPE)

    def needs(*scopes: str) -> Any:
        return Depends(Requires(verifier, list(scopes), access_log=None, possession=possession))

    @app.get("/records/{patient_id}")
    async def record(patient_id: str, claims: Annotated[Claims, needs("read:records:{patient_id}")]) -> dict[str, Any]:
        return {"patient_id": patient_id, **_patient(patient_id)}

    @app.get("/labs/{patient_id}")
    async def labs(patient_id: str, claims: Annotated[Claims, needs("read:labs:{patient_id}")]) -> dict[str, Any]:
        _patient(patient_id)
        return {"patient_id": patient_id, "labs": data.LABS.get(patient_id, [])}

    @app.get("/notes/{patient_id}")
    async def notes(patient_id: str, claims: Annotated[Claims, needs("read:notes:{patient_id}")]) -> dict[str, Any]:
        _patient(patient_id)
        return {"patient_id": patient_id, "notes": data.NOTES.get(patient_id, [])}

    @app.get("/interactions")
    async def interactions(
        drug_a: str, drug_b: str, claims: Annotated[Claims, needs("read:formulary:interactions")]
    ) -> dict[str, Any]:
        hit = data.INTERACTIONS.get(frozenset({drug_a.lower(), drug_b.lower()}))
        return {"drugs": [drug_a, drug_b], "interaction": hit}

    @app.post("/prescriptions/{patient_id}/check")
    async def check(
        patient_id: str,
        body: PrescriptionCheck,
        claims: Annotated[Claims, needs("read:records:{patient_id}", "read:formulary:interactions")],
    ) -> dict[str, Any]:
        patient = _patient(patient_id)
        found = _interactions(body.drug, patient["medications"])
        allergic = body.drug in patient["allergies"]
        safe = not allergic and all(hit["severity"] != "major" for hit in found)
        return {"patient_id": patient_id, "drug": body.drug, "interactions": found, "allergy": allergic, "safe": safe}

    @app.post("/prescriptions/{patient_id}")
    async def prescribe(
        patient_id: str, body: Prescription, claims: Annotated[Claims, needs("write:prescriptions:{patient_id}")]
    ) -> dict[str, Any]:
        _patient(patient_id)
        entry = {
            "rx_id": f"RX-{next(numbers)}",
            "patient_id": patient_id,
            "drug": body.drug,
            "dose_mg": body.dose_mg,
            "written_by": claims.sub,
            "delegated_from": [record.agent for record in claims.delegation_chain],
        }
        written.append(entry)
        return entry

    @app.get("/billing/{patient_id}")
    async def billing(patient_id: str, claims: Annotated[Claims, needs("read:billing:{patient_id}")]) -> dict[str, Any]:
        _patient(patient_id)
        return {
            "patient_id": patient_id,
            "items": data.BILLING.get(patient_id, []),
            "balance": data.balance(patient_id),
        }

    @app.get("/insurance/{patient_id}")
    async def insurance(
        patient_id: str, claims: Annotated[Claims, needs("read:insurance:{patient_id}")]
    ) -> dict[str, Any]:
        _patient(patient_id)
        return {"patient_id": patient_id, **data.INSURANCE[patient_id]}

    @app.get("/claims/{patient_id}")
    async def claims_list(
        patient_id: str, claims: Annotated[Claims, needs("read:claims:{patient_id}")]
    ) -> dict[str, Any]:
        _patient(patient_id)
        return {"patient_id": patient_id, "claims": data.CLAIMS.get(patient_id, [])}

    @app.get("/codes/{code}")
    async def code(code: str, claims: Annotated[Claims, needs("read:codes:{code}")]) -> dict[str, Any]:
        text = data.BILLING_CODES.get(code)
        if text is None:
            raise NotFoundProblem(f"no billing code {code}")
        return {"code": code, "description": text}

    return app
