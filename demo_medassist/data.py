"""The made-up clinic behind the MedAssist demo: three patients, their charts, bills and claims.

Everything here is invented for the demo. The protected EHR API serves it; nothing else reads it directly.
"""

from __future__ import annotations

from typing import Any

PATIENTS: dict[str, dict[str, Any]] = {
    "P-1042": {
        "name": "Maria Alvarez",
        "born": "1968-03-14",
        "sex": "F",
        "conditions": ["type 2 diabetes", "hypertension"],
        "allergies": ["penicillin"],
        "medications": ["metformin 1000 mg twice daily", "lisinopril 20 mg daily"],
    },
    "P-2000": {
        "name": "James Okafor",
        "born": "1955-09-02",
        "sex": "M",
        "conditions": ["atrial fibrillation", "osteoarthritis"],
        "allergies": [],
        "medications": ["warfarin 5 mg daily", "acetaminophen 500 mg as needed"],
    },
    "P-3117": {
        "name": "Priya Raman",
        "born": "1992-06-21",
        "sex": "F",
        "conditions": ["asthma"],
        "allergies": ["sulfonamides"],
        "medications": ["albuterol inhaler as needed", "fluticasone 110 mcg twice daily"],
    },
}

LABS: dict[str, list[dict[str, str]]] = {
    "P-1042": [
        {"test": "HbA1c", "value": "7.9 %", "flag": "high", "date": "2026-11-20"},
        {"test": "eGFR", "value": "68 mL/min", "flag": "low", "date": "2026-11-20"},
        {"test": "LDL cholesterol", "value": "131 mg/dL", "flag": "high", "date": "2026-11-20"},
        {"test": "potassium", "value": "4.6 mmol/L", "flag": "normal", "date": "2026-11-20"},
    ],
    "P-2000": [
        {"test": "INR", "value": "2.4", "flag": "in range", "date": "2026-11-28"},
        {"test": "hemoglobin", "value": "13.1 g/dL", "flag": "normal", "date": "2026-11-28"},
    ],
    "P-3117": [
        {"test": "eosinophils", "value": "420 /µL", "flag": "high", "date": "2026-10-05"},
    ],
}

NOTES: dict[str, list[dict[str, str]]] = {
    "P-1042": [
        {
            "date": "2026-11-20",
            "author": "Dr. L. Chen",
            "text": "A1c up from 7.4. Diet review done. Consider adding a statin given LDL 131; recheck in 3 months.",
        }
    ],
    "P-2000": [
        {"date": "2026-11-28", "author": "Dr. L. Chen", "text": "INR stable on warfarin 5 mg. Avoid NSAIDs."},
    ],
    "P-3117": [
        {"date": "2026-10-05", "author": "Dr. A. Osei", "text": "Well controlled. Spacer technique reviewed."},
    ],
}

INTERACTIONS: dict[frozenset[str], dict[str, str]] = {
    frozenset({"warfarin", "aspirin"}): {"severity": "major", "effect": "bleeding risk rises sharply"},
    frozenset({"warfarin", "ibuprofen"}): {"severity": "major", "effect": "bleeding risk and INR instability"},
    frozenset({"lisinopril", "spironolactone"}): {"severity": "moderate", "effect": "high potassium"},
    frozenset({"atorvastatin", "clarithromycin"}): {"severity": "major", "effect": "statin toxicity (myopathy)"},
    frozenset({"metformin", "contrast"}): {
        "severity": "moderate",
        "effect": "lactic acidosis after iodinated contrast",
    },
}

BILLING: dict[str, list[dict[str, Any]]] = {
    "P-1042": [
        {"date": "2026-11-20", "code": "99214", "description": "office visit", "charge": 185.00, "paid": 148.00},
        {"date": "2026-11-20", "code": "83036", "description": "HbA1c test", "charge": 42.00, "paid": 42.00},
    ],
    "P-2000": [
        {"date": "2026-11-28", "code": "85610", "description": "INR test", "charge": 28.00, "paid": 28.00},
    ],
    "P-3117": [
        {"date": "2026-10-05", "code": "99213", "description": "office visit", "charge": 130.00, "paid": 130.00},
    ],
}

INSURANCE: dict[str, dict[str, str]] = {
    "P-1042": {"payer": "Harborview Health PPO", "member_id": "HHP-558-2210", "copay": "$25", "status": "active"},
    "P-2000": {"payer": "Medicare Part B", "member_id": "MBI-7QK4-TN2-XY31", "copay": "20 %", "status": "active"},
    "P-3117": {"payer": "Northwind Employee Plan", "member_id": "NEP-00412", "copay": "$15", "status": "active"},
}

CLAIMS: dict[str, list[dict[str, str]]] = {
    "P-1042": [
        {"claim": "CLM-88121", "date": "2026-11-20", "codes": "99214, 83036", "status": "partly paid"},
    ],
    "P-2000": [{"claim": "CLM-88307", "date": "2026-11-28", "codes": "85610", "status": "paid"}],
    "P-3117": [{"claim": "CLM-87004", "date": "2026-10-05", "codes": "99213", "status": "paid"}],
}

BILLING_CODES: dict[str, str] = {
    "99213": "office visit, established patient, low complexity",
    "99214": "office visit, established patient, moderate complexity",
    "83036": "hemoglobin A1c",
    "85610": "prothrombin time (INR)",
    "93000": "electrocardiogram with interpretation",
}


def balance(patient_id: str) -> float:
    """What the patient still owes, from the billing history."""
    owed: float = sum(float(item["charge"]) - float(item["paid"]) for item in BILLING.get(patient_id, []))
    return round(owed, 2)
