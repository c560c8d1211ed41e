"""The simulated network: gateways, orchestrators (GPUs, regions, quality) and the workflows they serve.

Everything is drawn from one seeded ``random.Random`` so that a seed always builds the same network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from eth_utils import to_checksum_address

# (pipeline, target output fps, emits a data channel → gateway_receive_first_data_segment)
PIPELINES: tuple[tuple[str, float, bool], ...] = (
    ("streamdiffusion-sdxl", 20.0, False),
    ("streamdiffusion-sdxl-faceid", 18.0, False),
    ("streamdiffusion", 24.0, True),
    ("comfystream", 15.0, True),
)
REGIONS: tuple[tuple[str, str, float], ...] = (  # region, country, typical RTT to gateways in ms
    ("us-east-1", "US", 18.0),
    ("us-west-2", "US", 45.0),
    ("eu-central-1", "DE", 90.0),
    ("eu-west-1", "IE", 80.0),
    ("ap-southeast-1", "SG", 190.0),
)
GPU_TYPES: tuple[tuple[str, int, int, int], ...] = (  # name, memory bytes, compute major, minor
    ("NVIDIA GeForce RTX 4090", 25757220864, 8, 9),
    ("NVIDIA GeForce RTX 3090", 25769803776, 8, 6),
    ("NVIDIA GeForce RTX 5090", 34190917632, 12, 0),
    ("NVIDIA L40S", 48305799168, 8, 9),
    ("NVIDIA A100 80GB PCIe", 85899345920, 8, 0),
    ("NVIDIA H100 80GB HBM3", 85520809984, 9, 0),
)
# Win probabilities as the gateway prints them (strings with 10 decimals), parsed exactly by the truth.
WIN_PROBS: tuple[str, ...] = ("0.0010000000", "0.0000147059", "0.0005000000", "0.0002500000")
# go-livepeer sends the envelope time as a string of Unix ms; newer producers send RFC 3339; some numbers.
TIMESTAMP_STYLES: tuple[str, ...] = ("ms_string", "rfc3339", "ms_number")


@dataclass(frozen=True, slots=True)
class Gpu:
    gpu_id: str
    name: str
    memory_total: int
    major: int
    minor: int


@dataclass(frozen=True, slots=True)
class Quality:
    """How an orchestrator behaves: output fps relative to the workflow target, failures, swaps."""

    tier: str
    fps_factor: float
    fps_jitter: float  # σ of fps as a fraction of the target
    startup_ms: float  # median cold start (runner_in → runner_out)
    p_fail_start: float  # fails before first output (orchestrator error)
    p_fail_run: float  # orchestrator error while streaming
    p_swap: float  # the gateway swaps away from it while streaming
    p_restart: float  # runner restarts per session


QUALITIES: dict[str, Quality] = {
    "good": Quality("good", 1.0, 0.03, 1200.0, 0.01, 0.02, 0.02, 0.02),
    "fair": Quality("fair", 0.85, 0.10, 3500.0, 0.05, 0.05, 0.08, 0.10),
    "bad": Quality("bad", 0.55, 0.30, 9000.0, 0.18, 0.12, 0.25, 0.40),
}


@dataclass(slots=True)
class Orchestrator:
    index: int
    address: str  # on-chain address, lower-case
    signing_address: str  # orchestrator_info.address (the node's key), lower-case
    url: str
    region: str
    country: str
    rtt_ms: float
    gpus: tuple[Gpu, ...]
    pipelines: tuple[str, ...]
    quality: Quality
    price_wei_per_pixel: str
    face_value_wei: int
    win_prob: str
    version: str
    checksum_address: str = ""
    checksum_signing_address: str = ""
    active_until: list[int] = field(default_factory=list)  # end times of sessions it serves (capacity)

    def __post_init__(self) -> None:
        self.checksum_address = str(to_checksum_address(self.address))
        self.checksum_signing_address = str(to_checksum_address(self.signing_address))

    @property
    def capacity(self) -> int:
        return 2 * len(self.gpus)


@dataclass(frozen=True, slots=True)
class Gateway:
    index: int
    name: str  # the envelope's ``gateway`` field ("" for producers that leave it empty)
    sender: str  # checksummed ETH address paying tickets
    timestamp_style: str
    empty_first_ingest_address: bool  # first ingest trace carries address "" (URL only)


@dataclass(frozen=True, slots=True)
class Network:
    gateways: tuple[Gateway, ...]
    orchestrators: tuple[Orchestrator, ...]

    def serving(self, pipeline: str) -> list[Orchestrator]:
        return [o for o in self.orchestrators if pipeline in o.pipelines]


def randint(rng: random.Random, low: int, high: int) -> int:
    """Like ``rng.randint`` (inclusive) but a few times faster; deterministic for a seed."""
    return low + int(rng.random() * (high - low + 1))


def randbelow(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def random_address(rng: random.Random) -> str:
    return f"0x{rng.getrandbits(160):040x}"


def random_uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _tier(index: int, count: int) -> str:
    if count >= 2 and index == count - 1:
        return "bad"
    share = index / max(count, 1)
    if share < 0.6:
        return "good"
    if share < 0.85:
        return "fair"
    return "bad"


def build_network(rng: random.Random, orchestrators: int, gateways: int = 3) -> Network:
    orchs = []
    for i in range(orchestrators):
        address = random_address(rng)
        # About a third of the nodes sign with a key that differs from their on-chain address.
        signing = random_address(rng) if i % 3 == 1 else address
        region, country, rtt = REGIONS[rng.randrange(len(REGIONS))]
        gpu_type = GPU_TYPES[rng.randrange(len(GPU_TYPES))]
        gpus = tuple(
            Gpu(f"GPU-{random_uuid(rng)}", gpu_type[0], gpu_type[1], gpu_type[2], gpu_type[3])
            for _ in range(1 + rng.randrange(4))
        )
        first = PIPELINES[i % len(PIPELINES)][0]
        extra = [p for p, _, _ in PIPELINES if p != first and rng.random() < 0.4]
        orchs.append(
            Orchestrator(
                index=i,
                address=address,
                signing_address=signing,
                url=f"https://orch-{i:03d}.{region}.example-orch.net:{8935 + rng.randrange(200)}",
                region=region,
                country=country,
                rtt_ms=rtt,
                gpus=gpus,
                pipelines=(first, *extra),
                quality=QUALITIES[_tier(i, orchestrators)],
                price_wei_per_pixel=f"{rng.uniform(100, 2500):.3f}",
                face_value_wei=rng.randrange(1, 50) * 100_000_000_000_000,
                win_prob=WIN_PROBS[rng.randrange(len(WIN_PROBS))],
                version=rng.choice(("0.8.3", "0.8.4", "0.8.5")),
            )
        )
    gws = tuple(
        Gateway(
            index=g,
            name="" if g == gateways - 1 and gateways > 1 else f"gateway-{g}.livepeer.example",
            sender=str(to_checksum_address(random_address(rng))),
            timestamp_style=TIMESTAMP_STYLES[g % len(TIMESTAMP_STYLES)],
            empty_first_ingest_address=g % 2 == 1,
        )
        for g in range(gateways)
    )
    return Network(gateways=gws, orchestrators=tuple(orchs))
