"""Admin policies: the policy file, its renderer to Slurm settings, and a simulator.

One frozen data model (:class:`~sandfill.policies.document.model.Policy`) is loaded from YAML by
:mod:`sandfill.policies.document.load`; the renderer and the simulator both read only that model.
"""

from sandfill.policies.document.errors import PolicyError, Problem
from sandfill.policies.document.load import (
    load_policy,
    policy_from_mapping,
    policy_to_mapping,
    policy_warnings,
)
from sandfill.policies.document.model import ClusterShape, Policy, Tier
from sandfill.units import Duration

__all__ = [
    "ClusterShape",
    "Duration",
    "Policy",
    "PolicyError",
    "Problem",
    "Tier",
    "load_policy",
    "policy_from_mapping",
    "policy_to_mapping",
    "policy_warnings",
]
