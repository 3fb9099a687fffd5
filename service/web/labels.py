"""Display labels of stored codes (verdicts, statuses...): msgids, translated where shown."""

from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802  # gettext's conventional name: marks a msgid for extraction
    return text


VERDICT = {
    "identified": N_("Identified"),
    "mixture": N_("Mixture"),
    "inconclusive": N_("Inconclusive"),
    "no_match": N_("No match"),
}
CUSTODY = {
    "sealed": N_("Sealed"),
    "handed_over": N_("Handed over"),
    "transferred_to_lab": N_("Transferred to laboratory"),
    "received": N_("Received"),
    "stored": N_("Stored"),
    "sampled": N_("Sampled"),
    "destroyed": N_("Destroyed"),
}
STATUS = {
    "open": N_("Open"),
    "under_review": N_("Under review"),
    "awaiting_lab": N_("Awaiting laboratory"),
    "lab_confirmed": N_("Laboratory confirmed"),
    "closed": N_("Closed"),
}
TRANSPORT = {
    "air": N_("Air"),
    "sea": N_("Sea"),
    "road": N_("Road"),
    "rail": N_("Rail"),
    "postal": N_("Postal"),
    "courier": N_("Courier"),
}
ROLE = {
    "officer": N_("Officer"),
    "supervisor": N_("Supervisor"),
    "investigator": N_("Investigator"),
    "analyst": N_("Analyst"),
    "admin": N_("Administrator"),
}
#: Who may read a record (seizures, cases): :class:`service.sharing.SharingLevel`.
SHARING = {
    "own": N_("Own agency only"),
    "partners": N_("Named partner agencies"),
    "all": N_("All participating agencies"),
}
APPROVAL = {
    "pending": N_("Pending"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}
LAB_METHOD = {
    "gc_ms": "GC-MS",
    "lc_ms": "LC-MS",
    "ftir": "FTIR",
    "raman": "Raman",
    "nmr": "NMR",
    "hplc": "HPLC",
    "other": N_("Other"),
}
GAP = {
    "no_custody": N_("Tested but no custody event"),
    "not_sealed_first": N_("First custody event is not a seal"),
    "party_mismatch": N_("Handed over by someone who did not hold it"),
    "after_destruction": N_("Events recorded after destruction"),
}
