"""Every job kind and schedule of the app, registered by importing each domain's `tasks` module.

The worker (`python -m app.worker`), the web app (`create_app`: enqueueing a job reads its kind's
retry policy) and the demo import this module; the worker itself knows no domain. A new kind goes
in its domain's `tasks.py` and, for a new domain, one import line here."""

from __future__ import annotations

from types import ModuleType
from typing import Final

from app.imports import tasks as imports_tasks
from app.jobs import tasks as jobs_tasks
from app.scoring import tasks as scoring_tasks
from app.sync import tasks as sync_tasks

DOMAIN_TASKS: Final[tuple[ModuleType, ...]] = (jobs_tasks, scoring_tasks, imports_tasks, sync_tasks)
