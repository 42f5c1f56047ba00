"""Dashboard and alerts as code (deploy/): valid, tested, and only about declared metrics.

* ``promtool check rules`` and ``promtool test rules`` pass, and every alert of
  ``alerts.yml`` has a test case in ``alerts.test.yml``;
* every metric that the Grafana dashboard or an alert rule queries is declared in
  ``streamseg/metrics.py`` (so a renamed metric breaks this test, not a dashboard);
* every dashboard expression parses (``promtool check rules`` on them as recording rules);
* docker-compose provisions the dashboard and the rules, and pins every image.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamseg.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "streamseg.json"
METRIC = re.compile(r"\b(streamseg_[a-z0-9_]+)\b")
PROMETHEUS_OWN = {"up"}  # series Prometheus itself adds per scrape target
PANELS = ("Throughput by outcome", "Consumer lag", "Event-time lag", "Dead letters by reason",
          "latency p99", "Segment sizes", "Transitions per minute", "Model version per worker")
ALERT_NAMES = ("StreamsegWorkerDown", "StreamsegLagGrowing", "StreamsegDeadLetterSpike",
               "StreamsegNoInput", "StreamsegModelsOutOfSync")


def declared_series() -> set[str]:
    """Every series name the worker exposes (counters with _total, histograms with _bucket...)."""
    m = Metrics(CollectorRegistry())
    text = generate_latest(m.registry).decode()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                "gauge": ("",)}
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in suffixes.get(family.type, ("",))}


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dash["panels"]
            for target in panel["targets"]]


def test_promtool_checks_the_rules(promtool: str) -> None:
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_alerts_pass(promtool: str) -> None:
    done = subprocess.run([promtool, "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_every_alert_fires_in_a_test_and_stays_quiet_in_another() -> None:
    alerts = re.findall(r"^\s*- alert: (\w+)", ALERTS.read_text(), re.M)
    assert set(ALERT_NAMES) <= set(alerts)
    tests = ALERT_TESTS.read_text()
    cases = re.findall(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", tests)
    firing = {name for name, empty in cases if not empty}
    quiet = {name for name, empty in cases if empty}
    assert set(alerts) <= firing, f"alerts never tested firing: {set(alerts) - firing}"
    assert set(alerts) <= quiet, f"alerts never tested quiet: {set(alerts) - quiet}"


def test_the_dashboard_and_the_rules_query_only_declared_metrics() -> None:
    declared = declared_series()
    queried = {(where, name) for where, expr in dashboard_exprs()
               for name in METRIC.findall(expr)}
    queried |= {("alerts.yml", name) for name in METRIC.findall(ALERTS.read_text())}
    queried |= {("alerts.test.yml", name) for name in METRIC.findall(ALERT_TESTS.read_text())}
    unknown = sorted((where, name) for where, name in queried if name not in declared)
    assert unknown == []
    assert len({name for _, name in queried}) >= 10


def test_dashboard_has_the_operator_panels_on_the_provisioned_datasource() -> None:
    dash = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in dash["panels"]]
    for wanted in PANELS:
        assert any(wanted in t for t in titles), wanted
    datasource = (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = re.search(r"^\s*uid: (\S+)$", datasource.read_text(), re.M)
    assert uid is not None
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == uid.group(1)
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
    assert len({p["id"] for p in dash["panels"]}) == len(titles)


def test_every_dashboard_expression_parses(promtool: str, tmp_path: Path) -> None:
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, expr) in enumerate(dashboard_exprs()):
        rules += [f"      - record: dashboard:expr_{i}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text("\n".join(rules) + "\n")
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_provisions_dashboard_and_rules_and_pins_every_image() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards" in compose
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml" in compose
    assert "/etc/prometheus/alerts.yml" in (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    provider = (DEPLOY / "grafana" / "provisioning" / "dashboards" / "streamseg.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    images = re.findall(r"^\s*image: (\S+)$", compose, re.M)
    pulled = [i for i in images if not i.startswith("streamseg:")]
    assert len(pulled) >= 3
    for image in pulled:
        name, _, tag = image.rpartition(":")
        assert name and re.fullmatch(r"v?\d+(\.\d+)+(-[\w.]+)?", tag), image
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert base is not None and re.search(r":\d+\.\d+\.\d+", base.group(1)), base


def test_every_alert_has_a_runbook_entry() -> None:
    ops = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for name in re.findall(r"^\s*- alert: (\w+)", ALERTS.read_text(), re.M):
        assert f"docs/OPERATIONS.md#{name.lower()}" in ALERTS.read_text()
        assert re.search(rf"^#+ {name}$", ops, re.M), f"no runbook heading for {name}"
