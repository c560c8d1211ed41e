from telemetry.contracts.envelope import Event, normalise
from telemetry.contracts.errors import Rejection

__all__ = ["Event", "Rejection", "normalise"]
