"""Unit-bearing traitlets types for the spawner, read by :mod:`sandfill.units`.

A value set in ``jupyterhub_config.py`` (or by :func:`sandfill.hub.config.apply_site`) is read
exactly as the site file and the spawn form read it: ``"2:00"`` is two minutes, ``"2h"`` two
hours, a bare number of minutes (walltime) or MiB (memory), as in Slurm. A
:class:`~sandfill.units.Duration` is taken as it is (that is how typed values arrive from the
site file). A duration trait's value is a ``Duration``; a memory trait's is whole MiB.
"""

from __future__ import annotations

from typing import Any

from traitlets import TraitError, TraitType

from sandfill import units
from sandfill.hub.site import Profile, SiteError
from sandfill.schema import check_slurm_name, validate


class Walltime(TraitType[units.Duration, Any]):
    """A duration (> 0), stored as a :class:`~sandfill.units.Duration` (``.seconds``).

    The stored value is typed, not a bare number, so that validating it again (traitlets does,
    when config is loaded) cannot read seconds as minutes."""

    info_text = f"a duration ({units.DURATION_FORMS})"

    def validate(self, obj: Any, value: Any) -> units.Duration:
        try:
            return units.Duration(units.parse_duration(value, key=self.name, positive=True))
        except units.UnitError as exc:
            raise TraitError(str(exc)) from None


class Memory(TraitType[int, Any]):
    """An amount of memory, stored as whole MiB (> 0)."""

    info_text = f"an amount of memory ({units.MEMORY_FORMS})"

    def validate(self, obj: Any, value: Any) -> int:
        try:
            return units.parse_memory(value, key=self.name)
        except units.UnitError as exc:
            raise TraitError(str(exc)) from None


class SlurmNames(TraitType[list[str], Any]):
    """A non-empty list of partition, QOS or account names (Slurm's charset, see
    :data:`sandfill.schema.SLURM_NAME`)."""

    info_text = "a list of Slurm names (letters, digits, '_' and '-', at most 64)"

    def validate(self, obj: Any, value: Any) -> list[str]:
        if not isinstance(value, list | tuple) or not value:
            raise TraitError(f"{self.name}: {value!r} is not a non-empty list of names")
        try:
            return [check_slurm_name(item) for item in value]
        except ValueError as exc:
            raise TraitError(f"{self.name}: {exc}") from None


class Profiles(TraitType[list[Profile], Any]):
    """The spawn form's profiles: :class:`~sandfill.hub.site.Profile` objects, or mappings
    written as the site file writes them (``{name, cpus, memory: 4G, walltime: "02:00:00"}``)."""

    info_text = "a list of profiles (name, description, cpus, memory, walltime[, partition])"

    def validate(self, obj: Any, value: Any) -> list[Profile]:
        if not isinstance(value, list | tuple):
            raise TraitError(f"{self.name}: {value!r} is not a list of profiles")
        try:
            return [p if isinstance(p, Profile) else validate(Profile, p, source=f"{self.name}[{i}]", error=SiteError)
                    for i, p in enumerate(value)]
        except SiteError as exc:
            raise TraitError(str(exc)) from None
