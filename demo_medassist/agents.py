"""MedAssist's agents: who may do what for which patient, and how a question is answered.

The authority of every request comes from the person asking — their role and the patient they selected — never
from the model. A clinician's question runs a two-stage pipeline: the **clinical** agent (read the chart, labs and
notes of that one patient, check interactions) and, only when it proposed a prescription that passed the checks,
the **prescription** agent, whose authority is *delegated* from the clinical agent's token and narrowed to
``write:prescriptions:<patient>``; its write waits for a clinician's approval of exactly that prescription (the
clinic's policy: every ``write:prescriptions:*`` call), and without it nothing is minted for the write. The
billing office's question runs the **billing** agent, whose ceiling holds billing, insurance and claims scopes
only — no clinical scope at all, whatever tools it is handed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentwrit_tools import Pipeline, Policy, Stage, ToolResult
from agentwrit_tools.demo import ScenarioRun
from agentwrit_tools.pipeline import StageContext

from . import data
from .tools import MedTools, build_tools

__all__ = [
    "APPROVAL_SCOPES",
    "APPROVAL_TIMEOUT",
    "MAX_QUESTION",
    "ROLES",
    "ask",
    "billing_ceiling",
    "clinical_ceiling",
    "problem_with",
    "tools_for",
]

MAX_QUESTION = 1000
APPROVAL_SCOPES = ["write:prescriptions:*"]
"""What a clinician approves before it happens, whichever tool asks for it."""
APPROVAL_TIMEOUT = 60
ROLES = {"clinical": "Clinician — clinical assistant", "billing": "Billing office — billing assistant"}

_SYSTEM = {
    "clinical": (
        "You are MedAssist's clinical assistant. The clinician is looking at patient {pid} ({name}). Use the tools "
        "to answer from the chart; never guess clinical facts. To start a drug, call propose_prescription: a "
        "separate prescription agent writes it if the checks pass. Answer in two or three sentences."
    ),
    "billing": (
        "You are MedAssist's billing assistant for patient {pid} ({name}). Use the tools to answer questions about "
        "bills, insurance, claims and billing codes. Answer in two or three sentences."
    ),
}


def clinical_ceiling(patient_id: str) -> list[str]:
    """What a clinician's request may ever use: this patient's chart, labs, notes, prescriptions; the formulary."""
    return [
        f"read:records:{patient_id}",
        f"read:labs:{patient_id}",
        f"read:notes:{patient_id}",
        "read:formulary:interactions",
        f"write:prescriptions:{patient_id}",
    ]


def billing_ceiling(patient_id: str) -> list[str]:
    """What the billing office's request may ever use: this patient's money matters and the code book."""
    return [f"read:billing:{patient_id}", f"read:insurance:{patient_id}", f"read:claims:{patient_id}", "read:codes:*"]


def problem_with(role: str, patient_id: str, question: str) -> str | None:
    """A plain reply for a request that cannot run (unknown role or patient, empty or oversized question)."""
    if role not in ROLES:
        return f"There is no {role[:40]!r} role here; choose one of: {', '.join(ROLES)}."
    if patient_id not in data.PATIENTS:
        return f"There is no patient {patient_id[:40]!r} in this EHR. Pick one of: {', '.join(data.PATIENTS)}."
    if not question.strip():
        return "Please type a question first."
    if len(question) > MAX_QUESTION:
        return f"That question is {len(question)} characters long; please keep it under {MAX_QUESTION}."
    return None


def messages(role: str, patient_id: str, question: str) -> list[dict[str, str]]:
    name = data.PATIENTS[patient_id]["name"]
    return [
        {"role": "system", "content": _SYSTEM[role].format(pid=patient_id, name=name)},
        {"role": "user", "content": f"[patient {patient_id}] {question.strip()}"},
    ]


def tools_for(run: ScenarioRun) -> MedTools:
    return build_tools(run.api)


def _safe_proposal(results: tuple[ToolResult, ...]) -> dict[str, Any] | None:
    for result in results:
        if result.tool == "propose_prescription" and result.ok and isinstance(result.output, dict):
            out = result.output
            if out.get("safe") is True:
                return {"patient_id": out["patient_id"], "drug": out["drug"], "dose_mg": out["dose_mg"]}
    return None


def clinical_pipeline(
    run: ScenarioRun,
    tools: MedTools,
    patient_id: str,
    conversation: list[dict[str, str]],
    prescriber_extra: Callable[[StageContext], None] | None = None,
) -> Pipeline:
    """Clinical agent → (only for a checked prescription) prescription agent, authority delegated and narrowed."""

    def clinical(ctx: StageContext) -> dict[str, Any]:
        run.witness.saw(ctx.credential)
        result = run.chat(ctx.task, conversation, agent="clinical")
        proposal = _safe_proposal(result.results)
        if proposal is None:
            ctx.halt("no checked prescription to hand over, so the prescription agent gets no authority")
        return proposal

    def prescription(ctx: StageContext) -> ToolResult:
        run.witness.saw(ctx.credential)
        written = ctx.call(tools.write_prescription, ctx.input)
        if prescriber_extra is not None:
            prescriber_extra(ctx)
        if written.ok:
            rx = written.output
            run.answer(
                f"Prescription {rx['rx_id']} written: {rx['drug']} {rx['dose_mg']} mg for {rx['patient_id']}. The EHR "
                f"recorded the writer {rx['written_by']} and the authority it was delegated from: "
                f"{' → '.join(rx['delegated_from'])}.",
                agent="prescription",
                stand_in=False,
            )
        elif written.error_kind == "approval_denied":
            run.answer(f"No prescription was written: {written.message}", agent="prescription", stand_in=False)
        return written

    return Pipeline(
        [
            Stage("clinical", clinical_ceiling(patient_id), clinical, tools=tools.clinical),
            Stage("prescription", "write:prescriptions:{patient_id}", prescription, tools=[tools.write_prescription]),
        ]
    )


def ask(
    run: ScenarioRun,
    role: str,
    patient_id: str,
    question: str,
    *,
    prescriber_extra: Callable[[StageContext], None] | None = None,
) -> None:
    """Answer ``question`` about ``patient_id`` as ``role`` asked it (a plain reply when it cannot run).

    ``prescriber_extra`` runs inside the prescription stage after it wrote (scenarios use it to misbehave there).
    """
    problem = problem_with(role, patient_id, question)
    if problem is not None:
        run.answer(problem, agent="medassist", stand_in=False)
        return
    tools = tools_for(run)
    conversation = messages(role, patient_id, question)
    if role == "billing":
        with run.task(billing_ceiling(patient_id), tools=tools.billing, part="billing") as task:
            run.chat(task, conversation, agent="billing")
        return
    clinical_pipeline(run, tools, patient_id, conversation, prescriber_extra).run(
        run.stack.broker,
        None,
        orch_id=run.stack.demo.orch_id,
        task_id=run.task_id("clinical"),
        ceiling=clinical_ceiling(patient_id),
        call_ttl=30,
        budget=120,
        sinks=[run.sink],
        policy=Policy().with_approval(run.approver, scopes=APPROVAL_SCOPES, timeout=APPROVAL_TIMEOUT),
    )
