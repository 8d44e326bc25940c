"""Admin policies: the policy file, its renderer to Slurm settings, and a simulator.

One frozen data model (:class:`~sandfill.policies.model.Policy`) is loaded from YAML by
:mod:`sandfill.policies.load`; the renderer and the simulator both read only that model.
"""

from sandfill.policies.duration import Duration
from sandfill.policies.errors import PolicyError, Problem
from sandfill.policies.load import (
    load_policy,
    policy_from_mapping,
    policy_to_mapping,
    policy_warnings,
)
from sandfill.policies.model import ClusterShape, Policy, Tier

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
