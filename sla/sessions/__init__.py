"""Sessions, orchestrator segments and attribution, derived from telemetry facts (METRICS.md "Sessions").

* ``identity`` — signing address / URL → on-chain address, and GPU/region of an orchestrator at a time;
* ``taxonomy`` — swap reasons from trace details and error messages;
* ``assembly`` — pure assembly of one stream's sessions from its facts (no Django);
* ``derive`` — incremental derivation and full rebuild into the ``sla_session`` tables.
"""
