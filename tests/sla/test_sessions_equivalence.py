"""Order independence: the same facts delivered in order, shuffled, duplicated and partly hours late, with
derivations in between, give exactly the rows of one full rebuild."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from sla.models import DeriveCursor, Segment, SegmentMinute, Session
from sla.sessions.derive import derive
from telemetry.tables import FACT_CAPABILITY, FACT_ERROR, FACT_STATUS, FACT_TRACE
from tests.conftest import ANCHOR
from tests.sla.factories import Fact, capability, error, insert, status, trace

pytestmark = pytest.mark.django_db

NODES = [  # (signing address, on-chain address, url, gpu type, region)
    ("0x" + "a1" * 20, "0x" + "b1" * 20, "https://n1:8935", "RTX 4090", "eu-west"),
    ("0x" + "a2" * 20, "0x" + "a2" * 20, "https://n2:8935", "RTX 3090", "us-east"),
    ("0x" + "a3" * 20, "0x" + "b3" * 20, "https://n3:8935", "A100", "eu-west"),
    ("0x" + "a4" * 20, "0x" + "b4" * 20, "https://n4:8935", "L40S", "ap-south"),
]


def simulated(seed: int) -> list[Fact]:
    """A small network: four nodes (one re-keyed midway), fourteen streams with retries, swaps, errors,
    silent endings and a request that found nobody."""
    rng = random.Random(seed)
    facts: list[Fact] = []
    for i, (signing, onchain, url, gpu, region) in enumerate(NODES):
        facts.append(
            capability(-120, onchain, local_address=signing, url=url, gpu_id=f"GPU-{i}", gpu_type=gpu)
        )
        facts.append(capability(-90, onchain, origin="naap", pipeline="", model_id="", region=region))
    facts.append(capability(600, NODES[3][1], local_address=NODES[0][0], url=NODES[0][2], gpu_id="GPU-x"))
    for i in range(14):
        stream = f"stream-{i}"
        t = i * 55.0
        for r in range(rng.choice((1, 1, 2))):
            keys = {"stream": stream, "request": f"req-{i}-{r}"}
            facts.append(trace(t, "gateway_receive_stream_request", **keys))
            if i == 5 and r == 0:
                facts.append(trace(t + 1, "gateway_no_orchestrators_available", **keys))
                t += 5
                continue
            node = rng.choice(NODES)
            facts.append(trace(t + 0.4, "gateway_send_first_ingest_segment", **keys))
            facts.append(trace(t + 0.9, "runner_receive_first_ingest_segment", url=node[2], **keys))
            facts.append(
                trace(t + 2.5 + rng.random(), "runner_send_first_processed_segment", url=node[2], **keys)
            )
            facts.append(
                trace(
                    t + 3.7 + rng.random(),
                    "gateway_receive_first_processed_segment",
                    orch=node[0],
                    url=node[2],
                    **keys,
                )
            )
            restarts = 0
            for k in range(rng.randint(3, 14)):
                at_s = t + 10.0 * (k + 1)
                if k == 4 and rng.random() < 0.4:
                    facts.append(error(at_s - 2, "inference error: model crashed", "orchestrator", **keys))
                    facts.append(trace(at_s - 1, "orchestrator_swap", detail="model error", **keys))
                    node = rng.choice([n for n in NODES if n is not node])
                if rng.random() < 0.1:
                    restarts += 1
                fps = round(rng.uniform(8, 26), 2)
                facts.append(
                    status(at_s, fps, orch=node[0], url=node[2], in_fps=30.0, restarts=restarts, **keys)
                )
            end = t + 10.0 * (k + 1) + 4
            ending = rng.choice(("close", "close", "client", "orchestrator", "silence"))
            if ending == "close":
                facts.append(trace(end, "gateway_ingest_stream_closed", **keys))
            elif ending == "client":
                facts.append(error(end, "whip disconnected by client", "client", **keys))
            elif ending == "orchestrator":
                facts.append(error(end, "runner restart limit exceeded", "orchestrator", **keys))
            t = end + 3
    facts.append(status(2000, 20.0, stream="tail", request="x", orch=NODES[1][0], url=NODES[1][2]))
    return facts


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    def fields(model: Any, skip: set[str]) -> list[str]:
        return [f.attname for f in model._meta.concrete_fields if f.attname not in skip]

    session_fields = fields(Session, {"id", "updated_at"})
    segment_fields = fields(Segment, {"id", "session_id"})
    minute_fields = fields(SegmentMinute, {"id", "segment_id"})
    return {
        "sessions": [
            tuple(v.values())
            for v in Session.objects.order_by("stream_id", "request_id").values(*session_fields)
        ],
        "segments": [
            tuple(v.values())
            for v in Segment.objects.order_by("session__stream_id", "session__request_id", "ordinal").values(
                "session__stream_id", "session__request_id", *segment_fields
            )
        ],
        "minutes": [
            tuple(v.values())
            for v in SegmentMinute.objects.order_by(
                "segment__session__stream_id", "segment__session__request_id", "segment__ordinal", "bucket"
            ).values(
                "segment__session__stream_id",
                "segment__session__request_id",
                "segment__ordinal",
                *minute_fields,
            )
        ],
    }


def wipe() -> None:
    with connection.cursor() as cursor:
        for table in (FACT_STATUS, FACT_TRACE, FACT_ERROR, FACT_CAPABILITY):
            cursor.execute(f"TRUNCATE {table.name}")  # noqa: S608 - constant table names
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE sla_segment_minute, sla_segment, sla_session")
    DeriveCursor.objects.all().delete()


def test_shuffled_duplicated_and_late_delivery_gives_the_rows_of_a_full_rebuild() -> None:
    facts = simulated(seed=11)
    received = ANCHOR + timedelta(hours=1)
    insert(facts, received)
    derive(now=received)
    in_order = snapshot()
    assert len(in_order["sessions"]) >= 15 and len(in_order["segments"]) > len(in_order["sessions"]) - 2
    assert {row[0] for row in in_order["segments"]} - {"stream-5"}  # segments exist
    outcomes = {s.outcome for s in Session.objects.all()}
    assert {"ok", "failed", "no_orchestrator"} <= outcomes
    assert Segment.objects.filter(swapped_away=True).exists()

    wipe()
    rng = random.Random(3)
    shuffled = facts[:]
    rng.shuffle(shuffled)
    late = shuffled[: len(shuffled) // 8]
    rest = shuffled[len(late) :]
    batches = [rest[i::4] for i in range(4)]
    delivered: list[Fact] = []
    for n, batch in enumerate(batches):
        duplicates = rng.sample(delivered, min(len(delivered), 10))
        at_time = received + timedelta(minutes=n)
        insert(batch + duplicates, at_time)
        delivered.extend(batch)
        derive(now=at_time)
    hours_late = received + timedelta(hours=4)
    insert(late + rng.sample(delivered, 20), hours_late)
    derive(now=hours_late)
    incremental = snapshot()

    derive(now=hours_late + timedelta(minutes=1), rebuild=True)
    rebuilt = snapshot()

    assert incremental == in_order
    assert rebuilt == in_order
