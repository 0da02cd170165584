"""Admin commands of the ``uniql`` entry point: ``jobs``, ``models``, ``tokens`` and ``devices``.

They talk to a running cloud service over HTTP; ``services.admin_cli.client`` documents the
exit codes and where the server address and token come from.
"""

from services.admin_cli.devices import devices
from services.admin_cli.jobs import jobs
from services.admin_cli.models import models
from services.admin_cli.tokens import tokens

__all__ = ["devices", "jobs", "models", "tokens"]
