"""The spawner's side of the form: what a user may choose now (the site's settings and the
scheduler's partitions), the form rendered with what was typed after a refusal, and the
validation of ``user_options`` into the one request a batch script sees. A mixin of
:class:`~sandfill.hub.spawner.BackfillSlurmSpawner` (it reads the spawner's settings and
JupyterHub's ``user``, ``orm_spawner`` and ``db``)."""

from __future__ import annotations

from typing import Any

from sandfill.hub.form import (
    Choices,
    FormError,
    FormSettings,
    ResourceRequest,
    flatten_form,
    load_choices,
    previous_request,
    render_form,
    validate_request,
)

# profile → the reason last logged for not offering it (logged once per reason)
_hidden_logged: dict[str, str] = {}


def _log_hidden(log: Any, choices: Choices) -> Choices:
    """Log each profile the form does not offer, with why, once per profile and reason."""
    for name, why in choices.hidden:
        if _hidden_logged.get(name) != why:
            _hidden_logged[name] = why
            log.warning("Profile %r is not offered: it cannot start here (%s)", name, why)
    return choices


class FormFlow:
    """Choices, rendering, and validation into ``self.request`` (saved as ``user_options``)."""

    request: ResourceRequest | None = None
    _refused_form: tuple[dict[str, str], FormError] | None = None  # what was typed, and why refused
    user: Any
    orm_spawner: Any
    db: Any
    log: Any
    user_options: Any

    async def choices(self) -> Choices:
        settings = FormSettings(
            partitions=self.partitions,
            default_partition=self.default_partition,
            profiles=self.profiles,
            max_cpus=self.max_cpus,
            max_memory_mb=self.max_memory,
            max_walltime_s=self.max_walltime.seconds,
            gres=self.partition_gres,
        )
        return _log_hidden(self.log, await load_choices(self.view, self.user.name, settings))

    async def render_options_form(self) -> str:
        choices = await self.choices()
        saved = self.orm_spawner.user_options if self.orm_spawner is not None else None
        typed, self._refused_form = self._refused_form, None  # shown once, right after the refusal
        return render_form(choices, previous_request(saved, choices), refused=typed)

    async def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:  # type: ignore[override]
        raw = flatten_form(formdata)
        try:
            request = validate_request(raw, await self.choices())
        except FormError as exc:
            self._refused_form = (raw, exc)  # JupyterHub re-renders the form next: keep what was typed
            raise
        return request.as_options()

    async def apply_request(self, options: dict[str, Any]) -> ResourceRequest:
        """Validate ``user_options`` (from the form or the REST API) into ``self.request``.

        JupyterHub has already saved the options in its database (it reuses them when a
        later spawn brings none, also after a restart): refused options are replaced by
        none (the next spawn without options gets the defaults), accepted ones by their
        validated form."""
        try:
            self.request = validate_request(options or {}, await self.choices())
        except FormError:
            self.request = None
            self._save_options({})
            raise
        self._save_options(self.request.as_options())
        return self.request

    def _save_options(self, options: dict[str, Any]) -> None:
        self.user_options = options
        if self.orm_spawner is not None and self.orm_spawner.user_options != options:
            self.orm_spawner.user_options = options
            self.db.commit()
