"""MedAssist's tools: what the agents may ask for, and the exact scope each call needs.

Each tool is a plain function declared with :func:`scoped_tool`: the template names the scope, the model's
arguments fill in the identifier, and the guard mints a credential for exactly that before the body runs (a
prescription only once a clinician approved it). Bodies call the protected EHR API with the credential they were
given — with a proof of possession per request — and turn its JSON into a few readable lines for the model. A
patient id is any string to the schema; the scope template refuses every value that is not a plain identifier
before anything is minted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from agentwrit_tools import Credential, ScopedTool, scoped_tool
from agentwrit_tools.demo import BackendClient

__all__ = ["MedTools", "build_tools"]

# Deliberately no pattern: the scope template is the gate that refuses "*", "a:b", "../x" and the like, and the
# demo shows it doing so. (The EHR API checks the format again on its side.)
PatientId = Annotated[str, Field(description="the patient's id, e.g. P-1042")]
Drug = Annotated[str, Field(pattern=r"^[a-z][a-z-]{1,39}$", description="a drug's generic name, lower case")]
Code = Annotated[str, Field(pattern=r"^\d{5}$", description="a five-digit billing (CPT) code")]


@dataclass(frozen=True)
class MedTools:
    """Every MedAssist tool, bound to one run's API client."""

    get_patient_record: ScopedTool
    get_lab_results: ScopedTool
    get_clinical_notes: ScopedTool
    check_drug_interactions: ScopedTool
    propose_prescription: ScopedTool
    write_prescription: ScopedTool
    get_billing_history: ScopedTool
    get_insurance: ScopedTool
    get_claims: ScopedTool
    lookup_billing_code: ScopedTool

    @property
    def clinical(self) -> list[ScopedTool]:
        """What the clinical agent is offered (writing goes through the prescription agent)."""
        return [
            self.get_patient_record,
            self.get_lab_results,
            self.get_clinical_notes,
            self.check_drug_interactions,
            self.propose_prescription,
        ]

    @property
    def billing(self) -> list[ScopedTool]:
        """What the billing agent is offered. The records tool is in its toolbox; its ceiling still says no."""
        return [
            self.get_billing_history,
            self.get_insurance,
            self.get_claims,
            self.lookup_billing_code,
            self.get_patient_record,
        ]


def _lines(items: list[dict[str, Any]], fields: tuple[str, ...]) -> str:
    return "; ".join(", ".join(str(item[f]) for f in fields if item.get(f) not in (None, "")) for item in items)


def build_tools(api: BackendClient) -> MedTools:
    """The tools, each calling the EHR API through ``api`` with its own credential."""

    @scoped_tool("read:records:{patient_id}", ttl=30, timeout=10)
    def get_patient_record(patient_id: PatientId, credential: Credential) -> str:
        """Read a patient's chart: demographics, conditions, allergies and current medications."""
        r = api.get(f"/records/{patient_id}", credential)
        return (
            f"{r['name']} ({patient_id}, born {r['born']}): conditions {', '.join(r['conditions'])}; "
            f"allergies {', '.join(r['allergies']) or 'none known'}; medications {'; '.join(r['medications'])}."
        )

    @scoped_tool("read:labs:{patient_id}", ttl=30, timeout=10)
    def get_lab_results(patient_id: PatientId, credential: Credential) -> str:
        """Read a patient's latest laboratory results."""
        r = api.get(f"/labs/{patient_id}", credential)
        return f"Labs for {patient_id}: " + (_lines(r["labs"], ("test", "value", "flag", "date")) or "none on file")

    @scoped_tool("read:notes:{patient_id}", ttl=30, timeout=10)
    def get_clinical_notes(patient_id: PatientId, credential: Credential) -> str:
        """Read a patient's clinical notes, newest first."""
        r = api.get(f"/notes/{patient_id}", credential)
        return f"Notes for {patient_id}: " + (_lines(r["notes"], ("date", "author", "text")) or "none on file")

    @scoped_tool("read:formulary:interactions", ttl=30, timeout=10)
    def check_drug_interactions(drug_a: Drug, drug_b: Drug, credential: Credential) -> str:
        """Look up a known interaction between two drugs in the formulary."""
        r = api.get("/interactions", credential, drug_a=drug_a, drug_b=drug_b)
        hit = r["interaction"]
        if hit is None:
            return f"No known interaction between {drug_a} and {drug_b}."
        return f"{drug_a} + {drug_b}: {hit['severity']} interaction ({hit['effect']})."

    @scoped_tool(["read:records:{patient_id}", "read:formulary:interactions"], ttl=30, timeout=10)
    def propose_prescription(patient_id: PatientId, drug: Drug, dose_mg: int, credential: Credential) -> dict[str, Any]:
        """Check a new prescription against the patient's medications and allergies, and propose it if safe.

        Args:
            patient_id: the patient's id.
            drug: the drug to start.
            dose_mg: the dose in milligrams.
        """
        r = api.post(f"/prescriptions/{patient_id}/check", credential, {"drug": drug})
        return {**r, "dose_mg": dose_mg}

    # approval=True: a clinician says yes to exactly this patient, drug and dose before its credential exists.
    @scoped_tool("write:prescriptions:{patient_id}", ttl=15, timeout=10, approval=True)
    def write_prescription(patient_id: PatientId, drug: Drug, dose_mg: int, credential: Credential) -> dict[str, Any]:
        """Write a prescription into the patient's chart (the prescription agent's one tool).

        Args:
            patient_id: the patient's id.
            drug: the drug.
            dose_mg: the dose in milligrams.
        """
        result: dict[str, Any] = api.post(
            f"/prescriptions/{patient_id}", credential, {"drug": drug, "dose_mg": dose_mg}
        )
        return result

    @scoped_tool("read:billing:{patient_id}", ttl=30, timeout=10)
    def get_billing_history(patient_id: PatientId, credential: Credential) -> str:
        """Read a patient's charges, payments and outstanding balance."""
        r = api.get(f"/billing/{patient_id}", credential)
        items = _lines(r["items"], ("date", "code", "description"))
        return f"Billing for {patient_id}: {items}. Outstanding balance ${r['balance']:.2f}."

    @scoped_tool("read:insurance:{patient_id}", ttl=30, timeout=10)
    def get_insurance(patient_id: PatientId, credential: Credential) -> str:
        """Read a patient's insurance coverage."""
        r = api.get(f"/insurance/{patient_id}", credential)
        return f"{patient_id} is covered by {r['payer']} (member {r['member_id']}, copay {r['copay']}, {r['status']})."

    @scoped_tool("read:claims:{patient_id}", ttl=30, timeout=10)
    def get_claims(patient_id: PatientId, credential: Credential) -> str:
        """Read the insurance claims filed for a patient."""
        r = api.get(f"/claims/{patient_id}", credential)
        return f"Claims for {patient_id}: " + (_lines(r["claims"], ("claim", "date", "codes", "status")) or "none")

    @scoped_tool("read:codes:{code}", ttl=30, timeout=10)
    def lookup_billing_code(code: Code, credential: Credential) -> str:
        """Explain a billing (CPT) code."""
        r = api.get(f"/codes/{code}", credential)
        return f"{code}: {r['description']}."

    return MedTools(
        get_patient_record,
        get_lab_results,
        get_clinical_notes,
        check_drug_interactions,
        propose_prescription,
        write_prescription,
        get_billing_history,
        get_insurance,
        get_claims,
        lookup_billing_code,
    )
