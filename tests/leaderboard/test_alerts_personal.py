"""Alerts: a state machine that fires once per crossing, delivered through Celery by a signed webhook
(to a real local HTTP server) and by e-mail (locmem backend), with a test button and a delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache

from leaderboard import alerts
from leaderboard import tasks as personal_tasks
from leaderboard.models import AlertDelivery, PersonalAlert
from naap_site.celery import QUEUE_BROADCAST
from naap_site.celery import app as celery_app
from sla.scores import active_config, compute_window
from tests.leaderboard.test_personal_support import (
    ADDR_A,
    KEY_A,
    NOW,
    build_network,
    clock,  # noqa: F401  (fixture)
    post,
    sign_in,
)
from tests.sla.rollup_factories import PIPE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


class Receiver:
    """A real HTTP server in a thread that records what it receives and answers with ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.NAAP_ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def eager() -> Iterator[None]:
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def make_alert(metric: str = "score", threshold: float = 99.0, **kw: Any) -> PersonalAlert:
    data = {
        "name": "low score",
        "metric": metric,
        "workflow": PIPE,
        "period": "1h",
        "threshold": str(threshold),
    }
    data.update(kw)
    return alerts.create_alert(ADDR_A, ADDR_A, alerts.parse_alert(data))


def test_the_state_machine_changes_state_only_on_a_crossing():
    steps = [("ok", 50.0), ("firing", 40.0), ("firing", 95.0), ("ok", 97.0), ("ok", None)]
    state, events = "ok", []
    for _, value in steps:
        state, event = alerts.transition(state, "score", value, 90.0)
        events.append(event)
    assert events == ["firing", None, "resolved", None, None]
    # P2FF alerts when above the threshold.
    assert alerts.transition("ok", "p2ff_ms", 3500.0, 3000.0) == ("firing", "firing")
    assert alerts.transition("ok", "p2ff_ms", 2500.0, 3000.0) == ("ok", None)


def test_delivery_tasks_run_on_the_broadcast_queue():
    assert personal_tasks.deliver_alert.queue == QUEUE_BROADCAST
    assert personal_tasks.evaluate_alerts.queue == QUEUE_BROADCAST


def test_an_alert_fires_once_per_crossing_with_a_signed_webhook_and_an_email(
    receiver, eager, django_capture_on_commit_callbacks
):
    build_network()
    cache.delete(personal_tasks.LAST_RUN_KEY)  # the cache outlives a test's database
    alert = make_alert(threshold=99.0, webhook_url=receiver.url, email="ops@example.org")

    with django_capture_on_commit_callbacks(execute=True):
        assert personal_tasks.evaluate_if_new_scores() == 2  # webhook + e-mail
    with django_capture_on_commit_callbacks(execute=True):
        assert personal_tasks.evaluate_if_new_scores() is None  # no new score run: nothing evaluated
    # A new score run with the same (still breaching) numbers: evaluated, but no second delivery.
    compute_window(active_config(), "1h", NOW, NOW.replace(minute=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert personal_tasks.evaluate_if_new_scores() == 0

    alert.refresh_from_db()
    assert alert.state == "firing" and alert.last_value is not None and alert.last_value < 99.0
    (request,) = receiver.requests
    body = request["body"]
    expected = "sha256=" + hmac.new(alert.secret.encode(), body, hashlib.sha256).hexdigest()
    assert request["headers"]["X-NaaP-Signature"] == expected
    sent = json.loads(body)
    assert sent["event"] == "firing" and sent["orchestrator"] == ADDR_A
    assert sent["alert"]["condition"] == "below" and sent["value"] == pytest.approx(alert.last_value)
    (email,) = mail.outbox
    assert email.to == ["ops@example.org"] and "firing" in email.subject
    log = AlertDelivery.objects.filter(alert=alert).order_by("channel")
    assert [(d.channel, d.event, d.status, d.http_status) for d in log] == [
        ("email", "firing", "sent", None),
        ("webhook", "firing", "sent", 200),
    ]

    # Lower the threshold below the value: the alert resolves, once.
    PersonalAlert.objects.filter(id=alert.id).update(threshold=1.0)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.evaluate_all()
        alerts.evaluate_all()
    assert [json.loads(r["body"])["event"] for r in receiver.requests] == ["firing", "resolved"]


def test_the_send_test_button_delivers_and_logs_a_test_event(
    receiver, eager, django_capture_on_commit_callbacks
):
    build_network()
    browser = sign_in(KEY_A)
    alert = make_alert(webhook_url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(browser, f"/me/alerts/{alert.id}/test")
    assert response.status_code == 303
    (request,) = receiver.requests
    assert json.loads(request["body"])["event"] == "test"
    page = browser.get("/me").content.decode()
    assert 'data-status="sent"' in page and "Test sent on 1 channel(s)" in page
    alert.refresh_from_db()
    assert alert.state == "ok"  # a test never changes the state


def test_a_failing_webhook_is_logged_as_failed_with_its_status(
    receiver, eager, django_capture_on_commit_callbacks
):
    build_network()
    receiver.status = 500
    alert = make_alert(webhook_url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.send_test(alert)
    (delivery,) = AlertDelivery.objects.filter(alert=alert)
    assert (delivery.status, delivery.http_status, delivery.error) == ("failed", 500, "HTTP 500")


def test_webhooks_to_loopback_addresses_are_refused_unless_allowed(eager, django_capture_on_commit_callbacks):
    build_network()
    alert = make_alert(webhook_url="http://127.0.0.1:9/hook")
    with django_capture_on_commit_callbacks(execute=True):
        alerts.send_test(alert)
    (delivery,) = AlertDelivery.objects.filter(alert=alert)
    assert delivery.status == "failed" and "private or loopback" in delivery.error


def test_alerts_are_created_through_the_form_with_csrf_and_clear_errors():
    build_network()
    browser = sign_in(KEY_A)
    form = {
        "name": "slow",
        "metric": "p2ff_ms",
        "workflow": PIPE,
        "period": "24h",
        "threshold": "2500",
        "email": "ops@example.org",
    }
    assert browser.post("/me/alerts", form).status_code == 403  # no CSRF token
    assert post(browser, "/me/alerts", form).status_code == 303
    (saved,) = PersonalAlert.objects.filter(orchestrator=ADDR_A)
    assert (saved.metric, saved.period, saved.threshold, saved.state) == ("p2ff_ms", "24h", 2500.0, "ok")

    bad = post(browser, "/me/alerts", {**form, "threshold": "lots"})
    assert bad.status_code == 400
    assert "threshold: a number" in bad.content.decode()
    none = post(browser, "/me/alerts", {**form, "email": ""})
    assert none.status_code == 400
    assert "give a webhook URL, an e-mail address, or both" in none.content.decode()
    assert post(browser, "/me/alerts", {**form, "webhook_url": "ftp://x"}).status_code == 400


def test_a_committed_score_run_announced_by_sla_triggers_the_evaluation(
    receiver, eager, django_capture_on_commit_callbacks
):
    from sla.signals import refresh_completed

    build_network()
    cache.delete(personal_tasks.LAST_RUN_KEY)
    alert = make_alert(threshold=99.0, webhook_url=receiver.url)
    refresh_completed.send(sender=None, ranges=[], scores=0)  # a run without scores: nothing to do
    alert.refresh_from_db()
    assert alert.last_evaluated_at is None
    with django_capture_on_commit_callbacks(execute=True):
        refresh_completed.send(sender=None, ranges=[], scores=2)
    alert.refresh_from_db()
    assert alert.state == "firing"
    assert [json.loads(r["body"])["event"] for r in receiver.requests] == ["firing"]


class FakeDns:
    """Answers ``getaddrinfo`` for made-up names with fixed addresses (IP literals go to the real resolver),
    and counts the lookups of each name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: dict[str, int] = {}
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name not in self.answers:
                return real(host, port, *args, **kwargs)
            self.lookups[name] = self.lookups.get(name, 0) + 1
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, int(port or 0)),
                )
                for ip in self.answers[name]
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_webhook_connects_to_the_address_it_checked_without_resolving_again(
    receiver, eager, django_capture_on_commit_callbacks, monkeypatch
):
    build_network()
    dns = FakeDns(monkeypatch, {"hooks.example.test": ["127.0.0.1"]})
    port = receiver.server.server_port
    alert = make_alert(webhook_url=f"http://hooks.example.test:{port}/hook")
    with django_capture_on_commit_callbacks(execute=True):
        alerts.send_test(alert)

    (delivery,) = AlertDelivery.objects.filter(alert=alert)
    assert (delivery.status, delivery.http_status) == ("sent", 200)
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example.test:{port}"  # the receiver sees its own name
    assert request["path"] == "/hook"
    # One lookup, for the check; the connection went to the checked address (a second lookup could
    # have answered differently: DNS rebinding).
    assert dns.lookups == {"hooks.example.test": 1}


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.215.14", "10.0.0.5"],  # one private address among public ones is enough to refuse
        ["::ffff:127.0.0.1"],  # loopback written as an IPv4-mapped IPv6 address
        ["0.0.0.0"],  # "this host": connects to loopback
        ["169.254.169.254"],  # cloud metadata service (link-local)
        ["fd00::1"],
    ],
)
def test_webhooks_whose_name_resolves_to_an_internal_address_are_refused(
    eager, django_capture_on_commit_callbacks, monkeypatch, settings, answers
):
    settings.NAAP_ALERT_WEBHOOK_ALLOW_PRIVATE = False
    build_network()
    dns = FakeDns(monkeypatch, {"hooks.example.test": answers})
    alert = make_alert(webhook_url="https://hooks.example.test/hook")
    with django_capture_on_commit_callbacks(execute=True):
        alerts.send_test(alert)

    (delivery,) = AlertDelivery.objects.filter(alert=alert)
    assert delivery.status == "failed" and delivery.http_status is None
    assert delivery.error == "refused: the webhook resolves to a private or loopback address"
    assert dns.lookups == {"hooks.example.test": 1}


def test_a_public_webhook_address_passes_the_check_and_is_the_one_dialled(monkeypatch):
    dns = FakeDns(monkeypatch, {"hooks.example.test": ["93.184.215.14"]})
    assert alerts.resolve_webhook_host("hooks.example.test", 443, allow_private=False) == "93.184.215.14"
    assert dns.lookups == {"hooks.example.test": 1}
