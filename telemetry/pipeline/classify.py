"""Error classification for ``ai_stream_events`` (and any error text): who is to blame for a failure.

Classes (stored in ``telemetry_fact_error.error_class``):

* ``client`` — the user's side ended or broke the stream: the WHIP/WHEP connection was disconnected or
  closed by the peer, the user stopped or cancelled, the input stream ended, bad request parameters
  (invalid prompt/params, unauthorised, payment/balance refused). These never count against an
  orchestrator.
* ``network`` — transport between the parties: timeouts and deadlines, connection refused/reset/closed,
  broken pipe, EOF, DNS or TLS failures, unreachable hosts, ICE/peer-connection failures, HTTP 502/503/504
  from a proxy, "no orchestrators available" is *not* here (that is missing capacity, below).
* ``orchestrator`` — the serving side failed: inference, model, pipeline, runner, worker, container,
  CUDA/GPU errors, out of memory (OOM), crashes, panics, restarts, segmentation faults, "no processed
  output", capability/capacity refusals by the orchestrator and "no orchestrators available" (the
  network had nobody to serve the request).
* ``unknown`` — anything else, including an empty message.

Rules are checked in this order and the first match wins: client, then orchestrator, then network. The
order matters for messages such as "whip disconnected: timeout" (the user left: client) and "inference
timeout" (the model did not answer: orchestrator). Matching is on lower-cased substrings and compiled
once at import; classifying a message costs a few regex scans.
"""

from __future__ import annotations

import re

CLIENT = "client"
NETWORK = "network"
ORCHESTRATOR = "orchestrator"
UNKNOWN = "unknown"
CLASSES = (ORCHESTRATOR, NETWORK, CLIENT, UNKNOWN)

_CLIENT = re.compile(
    r"whip|whep|user (?:disconnect|left|stopped|cancel)|client (?:disconnect|closed|cancel|gone)"
    r"|disconnected by (?:user|client)|stream (?:stopped|ended) by|input stream (?:ended|closed)"
    r"|context canceled by client|invalid (?:param|prompt|request|input)|bad request|unauthori[sz]ed"
    r"|forbidden|insufficient (?:balance|funds)|payment (?:rejected|required)"
)
_ORCHESTRATOR = re.compile(
    r"inference|model|pipeline|runner|worker|container|cuda|gpu|out of memory|\boom\b|crash|panic"
    r"|segfault|segmentation fault|restart|no processed|no output|capacity|capability"
    r"|no orchestrators? available|orchestrator (?:error|failed|busy)|internal server error|\b500\b"
)
_NETWORK = re.compile(
    r"timeout|timed out|deadline exceeded|connection (?:refused|reset|closed|aborted|lost)"
    r"|broken pipe|\beof\b|no route to host|host unreachable|network|dns|tls|certificate|\bice\b"
    r"|peer connection|\b50[234]\b|bad gateway|service unavailable|gateway timeout|i/o"
)


def classify_error(message: str, kind: str = "") -> str:
    """The class of one error message (``kind`` is the event's subtype, e.g. ``error``)."""
    text = f"{kind} {message}".lower() if kind and kind != "error" else message.lower()
    if not text.strip():
        return UNKNOWN
    if _CLIENT.search(text):
        return CLIENT
    if _ORCHESTRATOR.search(text):
        return ORCHESTRATOR
    if _NETWORK.search(text):
        return NETWORK
    return UNKNOWN
