"""The verdict: a packet's compat report, its findings, and the claims the findings allow."""

from inferguard.verdict._claims import Claim, Claims, WithheldClaim, derive_claims
from inferguard.verdict._verdict import (
    Verdict,
    collect_and_judge,
    diagnose_packet,
    judge_packet,
    judge_report,
)

__all__ = ["Claim", "Claims", "Verdict", "WithheldClaim", "collect_and_judge", "derive_claims",
           "diagnose_packet", "judge_packet", "judge_report"]
