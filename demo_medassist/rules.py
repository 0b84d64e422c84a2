"""The stand-in model's rules for MedAssist: which tools a plain-language question leads to.

The app sends the question as ``[patient P-1042] <question>`` (the patient comes from the clinician's selection,
never from the model). Each rule is a regular expression over that text; named groups fill tool arguments. Some
rules misbehave on purpose — a wildcard, an injected scope — so the demo can show the guard refusing a model that
tries. Questions no rule covers get an honest "cannot answer". None of this is a language model.
"""

from __future__ import annotations

from agentwrit_tools.offline import Misbehaviour, Rule, RuleSet, ToolCallSpec

__all__ = ["RULES"]

_P = r"(?is)^\[patient (?P<patient_id>[^\]\s]*)\]"


def _call(tool: str, misbehave: Misbehaviour | None = None, **arguments: object) -> ToolCallSpec:
    return ToolCallSpec(tool, arguments, misbehave)


RULES = RuleSet(
    rules=(
        Rule(
            "every-patient",
            _P + r".*?(every patient|all patients|ignore (?:all |any |previous |prior )*instructions)",
            calls=(
                _call("get_patient_record", Misbehaviour("wildcard", "patient_id"), patient_id="{patient_id}"),
                _call("get_lab_results", Misbehaviour("injection", "patient_id"), patient_id="{patient_id}"),
            ),
            answer="I tried to read more than this patient's chart and was stopped: {results}",
            description="try (and fail) to read every patient's records",
        ),
        Rule(
            "chart-number",
            _P + r".*?chart (?:number|no\.?) (?P<chart>[^\s?!]+?)[.?!]*(?:\s|$)",
            calls=(_call("get_lab_results", patient_id="{chart}"),),
            answer="For chart number {chart}: {results}",
            description="read labs by a chart number given in the question",
        ),
        Rule(
            "prescribe",
            _P + r".*?\b(?:prescribe|start|begin|add)\s+(?P<drug>[a-z][a-z-]+)\s+(?P<dose>\d{1,4})\s*mg",
            calls=(_call("propose_prescription", patient_id="{patient_id}", drug="{drug}", dose_mg="{dose}"),),
            answer="I checked {drug} {dose} mg against the chart of {patient_id}: {propose_prescription}",
            description="check a new prescription and hand it to the prescription agent",
        ),
        Rule(
            "interactions",
            _P + r".*?\b(?P<drug_a>[a-z]{4,})\s+interacts?\s+with\s+(?P<drug_b>[a-z]{4,})\b",
            calls=(_call("check_drug_interactions", drug_a="{drug_a}", drug_b="{drug_b}"),),
            answer="{check_drug_interactions}",
            description="look up an interaction between two drugs",
        ),
        Rule(
            "interactions-between",
            _P + r".*?interact\w*.*?\b(?P<drug_a>[a-z]{4,})\s+(?:and|with|\+)\s+(?P<drug_b>[a-z]{4,})\b",
            calls=(_call("check_drug_interactions", drug_a="{drug_a}", drug_b="{drug_b}"),),
            answer="{check_drug_interactions}",
            description="look up an interaction between two named drugs",
        ),
        Rule(
            "compare-patients",
            _P + r".*?\b(?:compare|versus|vs\.?|with|and|also)\b.*?(?P<other>P-\d{4})",
            calls=(
                _call("get_lab_results", patient_id="{patient_id}"),
                _call("get_lab_results", patient_id="{other}"),
            ),
            answer="Comparing {patient_id} with {other}: {results}",
            description="compare this patient's labs with another patient's",
        ),
        Rule(
            "diagnosis-for-claim",
            _P + r".*?\b(?:diagnos\w*|justif\w*)",
            calls=(
                _call("get_claims", patient_id="{patient_id}"),
                _call("get_billing_history", patient_id="{patient_id}"),
                _call("get_patient_record", patient_id="{patient_id}"),
            ),
            answer="{results}",
            description="find the diagnosis behind a claim",
        ),
        Rule(
            "summary",
            _P + r".*?\b(?:summar\w*|overview|brief me|catch me up)",
            calls=(
                _call("get_patient_record", patient_id="{patient_id}"),
                _call("get_lab_results", patient_id="{patient_id}"),
            ),
            answer="Summary for {patient_id}. {get_patient_record} {get_lab_results}",
            description="summarise a patient's chart and latest labs",
        ),
        Rule(
            "labs",
            _P + r".*?\b(?:labs?|a1c|hba1c|inr|results?|blood|potassium|cholesterol|ldl|egfr)\b",
            calls=(_call("get_lab_results", patient_id="{patient_id}"),),
            answer="{get_lab_results}",
            description="read a patient's labs",
        ),
        Rule(
            "notes",
            _P + r".*?\b(?:notes?|visit|plan|follow[- ]?up)\b",
            calls=(_call("get_clinical_notes", patient_id="{patient_id}"),),
            answer="{get_clinical_notes}",
            description="read a patient's clinical notes",
        ),
        Rule(
            "record",
            _P + r".*?\b(?:record|chart|history|medications?|meds|allerg\w*|conditions?|problems?)\b",
            calls=(_call("get_patient_record", patient_id="{patient_id}"),),
            answer="{get_patient_record}",
            description="read a patient's chart",
        ),
        Rule(
            "billing-code",
            _P + r".*?\bcode\s+(?P<code>\d{5})\b",
            calls=(_call("lookup_billing_code", code="{code}"),),
            answer="{lookup_billing_code}",
            description="explain a billing code",
        ),
        Rule(
            "balance",
            _P + r".*?\b(?:balance|owe\w*|bill\w*|charges?|payments?)\b",
            calls=(_call("get_billing_history", patient_id="{patient_id}"),),
            answer="{get_billing_history}",
            description="read a patient's bills and balance",
        ),
        Rule(
            "insurance",
            _P + r".*?\b(?:insurance|insured|coverage|covered|payer|copay)\b",
            calls=(_call("get_insurance", patient_id="{patient_id}"),),
            answer="{get_insurance}",
            description="read a patient's insurance",
        ),
        Rule(
            "claims",
            _P + r".*?\bclaims?\b",
            calls=(_call("get_claims", patient_id="{patient_id}"),),
            answer="{get_claims}",
            description="read a patient's claims",
        ),
    ),
    help=(
        "I cannot answer that: I am a rule-based stand-in, not a language model, and none of my rules covers it. "
        "I can read a patient's chart, labs or notes, look up a drug interaction, check a new prescription "
        '("start atorvastatin 20 mg"), and read bills, insurance, claims and billing codes.'
    ),
)
