"""A deterministic simulator of a Livepeer AI network emitting real go-livepeer events (issue 3 §4).

``python manage.py simulate --seed N --duration 30m (--out FILE.jsonl | --publish URL)``.
"""

from telemetry.simulator.engine import Delivered, SimConfig, Simulation, parse_duration
from telemetry.simulator.output import publish, truth_path, write_file

__all__ = ["Delivered", "SimConfig", "Simulation", "parse_duration", "publish", "truth_path", "write_file"]
