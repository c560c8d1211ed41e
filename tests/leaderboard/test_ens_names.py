"""ENS primary names: real ENS contracts on an in-process EVM, cached in the database, read from the cache."""

from __future__ import annotations

import socket
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from leaderboard import ens, tasks
from leaderboard.models import EnsName
from sla.models import Session
from tests.conftest import ANCHOR
from tests.evm.chain import EnsDeployment, deploy_ens, new_chain

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(settings) -> EnsDeployment:
    deployment = deploy_ens(new_chain())
    settings.NAAP_ENS_REGISTRY = deployment.registry.address
    return deployment


def _acct(chain: EnsDeployment, i: int) -> str:
    return chain.w3.eth.accounts[i].lower()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_namehash_matches_the_eip_137_reference_values():
    assert ens.namehash("") == b"\x00" * 32
    assert ens.namehash("eth").hex() == "93cdeb708b7545dc668eb9280176169d1c33cfd8ed6f04690a0bcc88a93fc4ae"
    assert ens.namehash("foo.eth").hex() == "de9b09fd7c5f901e23a3f19fecc54828e9c848539801e86591bd9801b019f84f"


def test_a_registered_primary_name_is_cached_and_served_from_the_database(chain):
    orch = chain.w3.eth.accounts[1]
    chain.register("orch.eth", orch)
    chain.set_primary(orch, "orch.eth")

    summary = ens.refresh_names([orch], w3=chain.w3, now=ANCHOR)

    assert (summary.checked, summary.named, summary.errors) == (1, 1, 0)
    row = EnsName.objects.get(address=orch.lower())
    assert (row.name, row.verified_at, row.expires_at) == ("orch.eth", ANCHOR, ANCHOR + ens.NAME_TTL)
    assert ens.names_for([orch, _acct(chain, 5)], now=ANCHOR) == {orch.lower(): "orch.eth"}
    assert ens.resolve_name("Orch.ETH", now=ANCHOR) == orch.lower()
    assert ens.resolve_name("other.eth", now=ANCHOR) is None


def test_a_name_whose_forward_record_points_elsewhere_is_not_shown(chain):
    liar, victim = chain.w3.eth.accounts[2], chain.w3.eth.accounts[3]
    chain.register("victim.eth", victim)
    chain.set_primary(victim, "victim.eth")
    chain.set_primary(liar, "victim.eth")  # the reverse registrar lets anyone claim any name
    chain.register("mine.eth", liar, points_to=victim)
    chain.set_primary(_acct_checksum := liar, "mine.eth")

    ens.refresh_names([liar, victim], w3=chain.w3, now=ANCHOR)

    assert ens.names_for([liar, victim], now=ANCHOR) == {victim.lower(): "victim.eth"}
    assert EnsName.objects.get(address=_acct_checksum.lower()).error == "forward_mismatch"
    assert ens.resolve_name("mine.eth", now=ANCHOR) is None
    assert ens.resolve_name("victim.eth", now=ANCHOR) == victim.lower()


def test_an_address_without_a_reverse_record_gets_no_name(chain):
    ens.refresh_names([chain.w3.eth.accounts[4]], w3=chain.w3, now=ANCHOR)

    row = EnsName.objects.get(address=_acct(chain, 4))
    assert (row.name, row.error, row.verified_at) == ("", "", None)
    assert ens.names_for([_acct(chain, 4)], now=ANCHOR) == {}


def test_without_an_rpc_endpoint_nothing_is_looked_up_and_names_are_absent(settings):
    settings.NAAP_ETH_RPC_URL = ""
    address = "0x" + "ab" * 20

    assert ens.refresh_names([address], now=ANCHOR).skipped_reason == "no_rpc"
    assert ens.names_for([address], now=ANCHOR) == {}
    assert not EnsName.objects.exists()
    out = StringIO()
    call_command("refresh_ens", address, stdout=out)
    assert "NAAP_ETH_RPC_URL is not set" in out.getvalue()


def test_an_unreachable_rpc_endpoint_breaks_nothing(settings):
    settings.NAAP_ETH_RPC_URL = f"http://127.0.0.1:{_closed_port()}"
    address = "0x" + "cd" * 20

    assert ens.refresh_names([address], now=ANCHOR).skipped_reason == "rpc_unreachable"
    assert ens.names_for([address], now=ANCHOR) == {}
    with pytest.raises(CommandError, match="not reachable"):
        call_command("refresh_ens", address)


def test_an_expired_entry_is_refreshed_and_picks_up_a_changed_record(chain):
    orch = chain.w3.eth.accounts[1]
    chain.register("orch.eth", orch)
    chain.set_primary(orch, "orch.eth")
    ens.refresh_due(w3=chain.w3, now=ANCHOR, addresses=[orch])

    chain.register("renamed.eth", orch)
    chain.set_primary(orch, "renamed.eth")
    before_expiry = ANCHOR + ens.NAME_TTL - timedelta(minutes=1)
    assert ens.refresh_due(w3=chain.w3, now=before_expiry, addresses=[orch]).checked == 0
    assert ens.names_for([orch], now=before_expiry) == {orch.lower(): "orch.eth"}

    after_expiry = ANCHOR + ens.NAME_TTL
    assert ens.refresh_due(w3=chain.w3, now=after_expiry, addresses=[orch]).checked == 1
    assert ens.names_for([orch], now=after_expiry) == {orch.lower(): "renamed.eth"}
    assert ens.resolve_name("orch.eth", now=after_expiry) is None


def test_a_name_not_reverified_for_a_week_is_no_longer_shown(chain):
    orch = chain.w3.eth.accounts[1]
    chain.register("orch.eth", orch)
    chain.set_primary(orch, "orch.eth")
    ens.refresh_names([orch], w3=chain.w3, now=ANCHOR)

    later = ANCHOR + ens.MAX_STALENESS + timedelta(seconds=1)
    assert ens.names_for([orch], now=later) == {}
    assert ens.resolve_name("orch.eth", now=later) is None


def test_the_background_refresh_finds_orchestrators_in_sessions(chain, monkeypatch):
    orch = chain.w3.eth.accounts[6]
    chain.register("sessions.eth", orch)
    chain.set_primary(orch, "sessions.eth")
    Session.objects.create(stream_id="s1", request_id="r1", orchestrator=orch.lower(), updated_at=ANCHOR)
    Session.objects.create(stream_id="s2", request_id="r2", orchestrator="not-an-address", updated_at=ANCHOR)
    monkeypatch.setattr(ens, "web3_from_settings", lambda: chain.w3)

    assert ens.known_orchestrators() == [orch.lower()]
    out = StringIO()
    call_command("refresh_ens", stdout=out)

    assert "1 known, 1 checked, 1 named, 0 errors" in out.getvalue()
    assert ens.names_for([orch]) == {orch.lower(): "sessions.eth"}
    assert tasks.refresh_ens_names() == {"checked": 0, "named": 0, "errors": 0, "skipped": ""}


def test_the_ens_refresh_runs_on_the_beat_schedule_outside_the_ingest_queue():
    from naap_site.celery import app

    app.loader.import_default_modules()
    entry = next(
        e for e in app.conf.beat_schedule.values() if e["task"] == "leaderboard.tasks.refresh_ens_names"
    )
    assert entry["task"] in app.tasks
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "derive"
