"""Settings validation: every field declares its constraint; every bad value is one line, exit 2.

The bad values are run through the real command line (``streamseg.__main__.main``,
in process) with the variable in the environment, as an operator would set it.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streamseg.__main__ import main
from streamseg.config import TOOL_VARIABLES, Settings, rule_of, variable
from streamseg.errors import ConfigError
from streamseg.worker import check_web_port, serve_metrics

# (variable, bad value, a fragment of the one-line message)
BAD = [
    ("STREAMSEG_BROKER", "127.0.0.1", "want kafka://host:port"),
    ("STREAMSEG_BROKER", "http://x:9092", "scheme must be kafka://"),
    ("STREAMSEG_BROKER", "kafka://x:0", "port must be 1-65535"),
    ("STREAMSEG_BROKER", "", "must name at least one broker"),
    ("STREAMSEG_BROKER_WAIT_S", "-1", "must be >= 0"),
    ("STREAMSEG_APP_ID", "my app", "must be 1-249 of"),
    ("STREAMSEG_PARTITIONS", "0", "must be >= 1"),
    ("STREAMSEG_PARTITIONS", "eight", "expected an integer"),
    ("STREAMSEG_REPLICATION_FACTOR", "0", "must be >= 1"),
    ("STREAMSEG_REPLICATION_FACTOR", "3.5", "expected an integer"),
    ("STREAMSEG_STORE", "foo://", "must be rocksdb:// or memory://"),
    ("STREAMSEG_STORE_CACHE_MB", "0", "must be >= 1"),
    ("STREAMSEG_STORE_WRITE_BUFFER_MB", "5000", "must be <= 4096"),
    ("STREAMSEG_DATA_DIR", " ", "must not be empty"),
    ("STREAMSEG_DATA_DIR", "/proc/nope", "cannot create '/proc/nope' in '/proc'"),
    ("STREAMSEG_DATA_DIR", "/proc/x/missing-parent/data", "cannot create"),
    ("STREAMSEG_DATA_DIR", "/etc/hostname/data", "'/etc/hostname' is not a directory"),
    ("STREAMSEG_DATA_DIR", "/tmp/{app}-data", "must not contain { or }"),
    ("STREAMSEG_PROCESSING_GUARANTEE", "exactly-once", "expected at_least_once"),
    ("STREAMSEG_PROCESSING_GUARANTEE", "exactly_once", "exactly_once is not supported"),
    ("STREAMSEG_BROKER_SESSION_TIMEOUT_S", "0", "must be > 0"),
    ("STREAMSEG_BROKER_HEARTBEAT_INTERVAL_S", "90", "must be below"),
    ("STREAMSEG_BROKER_COMMIT_INTERVAL_S", "inf", "must be a finite number"),
    ("STREAMSEG_CONFIRM_OUTPUTS", "maybe", "expected true or false"),
    ("STREAMSEG_PRODUCER_LINGER_S", "-0.1", "must be >= 0"),
    ("STREAMSEG_METRICS_PORT", "99999", "must be <= 65535"),
    ("STREAMSEG_METRICS_PORT", "-1", "must be >= 0"),
    ("STREAMSEG_LAG_INTERVAL_S", "0", "must be >= 1"),
    ("STREAMSEG_WEB_PORT", "70000", "must be <= 65535"),
    ("STREAMSEG_BATCH_SIZE", "0", "must be >= 1"),
    ("STREAMSEG_STREAM_BUFFER_MAXSIZE", "8", "must be >= 16"),
    ("STREAMSEG_BATCH_WAIT_S", "0", "must be > 0"),
    ("STREAMSEG_BATCH_FLUSH", "never", "must be one of idle, window"),
    ("STREAMSEG_BATCH_IDLE_S", "-1", "must be >= 0"),
    ("STREAMSEG_GATE_HOLD_S", "-1", "must be > 0"),
    ("STREAMSEG_WEB_BIND", "", "must not be empty"),
    ("STREAMSEG_WEB_HOST", "http://x", "want a host name or address"),
    ("STREAMSEG_DEAD_LETTER_RETENTION_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_LOG_LEVEL", "loud", "must be one of"),
    ("STREAMSEG_TOPIC_CLICKSTREAM", "click stream", "must be 1-249 of"),
    ("STREAMSEG_TOPIC_PURCHASES", "clickstream", "is also STREAMSEG_TOPIC_CLICKSTREAM"),
    ("STREAMSEG_TOPIC_CONSENT", "..", "must be 1-249 of"),
    ("STREAMSEG_TOPIC_PROFILES", "a b", "must be 1-249 of"),
    ("STREAMSEG_TOPIC_CHANGES", "x" * 250, "must be 1-249 of"),
    ("STREAMSEG_TOPIC_SEGMENTS", "", "must be 1-249 of"),
    ("STREAMSEG_TOPIC_DEAD_LETTERS", "dl/1", "must be 1-249 of"),
    ("STREAMSEG_TOPIC_MODELS", "m m", "must be 1-249 of"),
    ("STREAMSEG_TOPIC_TICKS", "t*", "must be 1-249 of"),
    ("STREAMSEG_MAX_EVENT_BYTES", "-1", "must be >= 64"),
    ("STREAMSEG_MAX_ATTRIBUTES", "5000", "must be <= 2048"),
    ("STREAMSEG_MAX_FUTURE_SKEW_S", "0", "must be > 0"),
    ("STREAMSEG_BASE_CURRENCY", "euro", "must be 3 upper-case letters"),
    ("STREAMSEG_FX_RATES", "EUR=1,USD=nan", "bad entry 'USD=nan'"),
    ("STREAMSEG_FX_RATES", "EUR=1,USD=-1", "'USD=-1' (a rate must be a positive number)"),
    ("STREAMSEG_BROKER", "a:1,b:2", "(several brokers are separated by ';')"),
    ("STREAMSEG_FX_RATES", "USD=1", "must include STREAMSEG_BASE_CURRENCY"),
    ("STREAMSEG_FX_RATES", "EUR=2,USD=0.92", "EUR=2, but the base currency's rate must be 1"),
    ("STREAMSEG_PSEUDONYMISE_KEY", "short", "must be empty (off) or at least 8"),
    ("STREAMSEG_DEDUP_WINDOW", "-3", "must be >= 0"),
    ("STREAMSEG_HALF_LIFE_DAYS", "nan", "must be a finite number"),
    ("STREAMSEG_SESSION_GAP_MINUTES", "0", "must be > 0"),
    ("STREAMSEG_KPI_REPEAT_DAYS", "0", "must be > 0"),
    ("STREAMSEG_ALLOWED_LATENESS_S", "-5", "must be >= 0"),
    ("STREAMSEG_TICK_INTERVAL_S", "0", "must be >= 0.1"),
    ("STREAMSEG_SOURCE_IDLE_S", "-1", "must be >= 0"),
    ("STREAMSEG_BUYING_DAY_START_H", "24", "must be < 24"),
    ("STREAMSEG_FREQ_HIGH_MAX_DAYS", "0", "must be > 0"),
    ("STREAMSEG_FREQ_HIGH_MIN_DAYS", "1", "must be >= 2"),
    ("STREAMSEG_FREQ_MEDIUM_MAX_DAYS", "3", "STREAMSEG_FREQ_HIGH_MAX_DAYS < "),
    ("STREAMSEG_LAPSED_DAYS", "-inf", "must be a finite number"),
    ("STREAMSEG_NEW_DAYS", "0", "must be > 0"),
    ("STREAMSEG_AT_RISK_DAYS", "200", "must be below STREAMSEG_LAPSED_DAYS"),
    ("STREAMSEG_REACTIVATED_DAYS", "-1", "must be > 0"),
    ("STREAMSEG_RFM_MIN_SAMPLES", "0", "must be >= 1"),
    ("STREAMSEG_RFM_WARMUP_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_RFM_RECENCY", "days", "ranks"),
    ("STREAMSEG_RFM_RECENCY_BANDS", "30,14,90,180", "four increasing day counts"),
    ("STREAMSEG_RFM_HOLD_MARGIN", "0.5", "must be < 0.2"),
    ("STREAMSEG_RFM_HOLD_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_CLUSTER_K", "0", "must be >= 1"),
    ("STREAMSEG_CLUSTER_SEED", "-1", "must be >= 0"),
    ("STREAMSEG_CLUSTER_HALFLIFE", "2", "must be <= 1"),
    ("STREAMSEG_CLUSTER_WARMUP", "0", "must be >= 1"),
    ("STREAMSEG_CLUSTER_REFRESH_EVERY", "1.5", "expected an integer"),
    ("STREAMSEG_CLUSTER_MIN_SHARE", "1", "must be < 1"),
    ("STREAMSEG_CLUSTER_MIN_CUSTOMERS", "5000", "must not exceed STREAMSEG_CLUSTER_SAMPLE_SIZE"),
    ("STREAMSEG_CLUSTER_SAMPLE_SIZE", "0", "must be >= 1"),
    ("STREAMSEG_VALUE_HORIZON_DAYS", "0", "must be > 0"),
    ("STREAMSEG_VALUE_REFIT_DAYS", "-1", "must be > 0"),
    ("STREAMSEG_VALUE_WARMUP_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_VALUE_MIN_CUSTOMERS", "30000", "must not exceed STREAMSEG_VALUE_SAMPLE_SIZE"),
    ("STREAMSEG_VALUE_SAMPLE_SIZE", "1", "must be >= 2"),
    ("STREAMSEG_VALUE_HOLD_SHARE", "0.5", "must be < 0.5"),
    ("STREAMSEG_VALUE_GRACE_GAPS", "-1", "must be >= 0"),
    ("STREAMSEG_VALUE_IDLE_DWELL_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_VALUE_IDLE_DWELL_DAYS", "14.5", "expected an integer"),  # whole days
    ("STREAMSEG_CLUSTER_RECENCY_GRACE_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_CLUSTER_IDLE_DWELL_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_CHANNEL_DOMINANCE", "0", "must be > 0"),
    ("STREAMSEG_MODEL_PUBLISH_INTERVAL_S", "0", "must be > 0"),
    ("STREAMSEG_MIN_DWELL_S", "-1", "must be >= 0"),
    ("STREAMSEG_MIN_MARGIN", "nan", "must be a finite number"),
    ("STREAMSEG_FREQ_HIGH_MARGIN_DAYS", "-1", "must be >= 0"),
    ("STREAMSEG_FREQ_MEDIUM_MARGIN_DAYS", "nan", "must be a finite number"),
    ("STREAMSEG_FREQ_MARGIN_PURCHASES", "-2", "must be >= 0"),
    ("STREAMSEG_LIFECYCLE_MARGIN_DAYS", "-0.5", "must be >= 0"),
    ("STREAMSEG_CHANNEL_MARGIN", "2", "must be <= 1"),
    ("STREAMSEG_EVENT_TIME_MIN", "yesterday", "not an RFC 3339 time"),
    ("STREAMSEG_EVENT_TIME_MAX", "1960-01-01T00:00:00Z", "must be before STREAMSEG_EVENT_TIME_MAX"),
    ("STREAMSEG_FLAP_WINDOW_S", "0", "must be > 0"),
    ("STREAMSEG_AUDIENCES_FILE", "/nonexistent/audiences.json", "no such file"),
    ("STREAMSEG_AUDIENCE_MIN_SIZE", "-1", "must be >= 0"),
    ("STREAMSEG_HOLDOUT_SHARE", "1.5", "must be <= 1"),
    ("STREAMSEG_HOLDOUT_SALT", " ", "must not be empty"),
    ("STREAMSEG_PARTITONS", "8", "unknown setting (did you mean STREAMSEG_PARTITIONS?)"),
    ("STREAMSEG_TICK_INTERVAL", "5", "unknown setting (did you mean STREAMSEG_TICK_INTERVAL_S?)"),
]


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("STREAMSEG_"):
            monkeypatch.delenv(var)


@pytest.mark.parametrize(("var", "raw", "fragment"), BAD, ids=[f"{v}={r[:12]}" for v, r, _ in BAD])
def test_a_bad_value_is_one_line_naming_the_variable_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    var: str, raw: str, fragment: str,
) -> None:
    clean_env(monkeypatch)
    monkeypatch.setenv(var, raw)
    assert main(["check", "--offline"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("streamseg: error: STREAMSEG_"), lines[0]
    assert fragment in lines[0], lines[0]
    assert var in lines[0]


def test_every_setting_has_a_bad_value_in_the_table() -> None:
    tried = {v for v, _, _ in BAD}
    missing = [variable(f.name) for f in dataclasses.fields(Settings)
               if f.type != "bool" and variable(f.name) not in tried]
    assert missing == []


def test_every_non_bool_setting_declares_its_constraint() -> None:
    """A new field gets validated by declaring ``setting(default, ...)`` next to it."""
    undeclared = [f.name for f in dataclasses.fields(Settings)
                  if f.type != "bool" and not rule_of(f).declared]
    assert undeclared == [], (
        "declare these with setting(default, ge=/gt=/le=/lt=/choices=/check=...) in config.py "
        "(optional(check) accepts an empty string as 'derive it')")


def test_every_streamseg_variable_the_repository_uses_is_a_setting_or_a_tool_variable() -> None:
    """A script or test that reads a new ``STREAMSEG_*`` knob must list it in TOOL_VARIABLES,
    or ``Settings.from_env`` would stop every command with "unknown setting"."""
    root = Path(__file__).resolve().parents[2]
    used: set[str] = set()
    for path in [*root.glob("scripts/*"), *root.glob(".ci/*"), *root.glob("tests/**/*.py"),
                 *root.glob("streamseg/**/*.py"), root / "docker-compose.yml", root / "Dockerfile"]:
        if path.is_file() and path.name not in {"test_config.py", "config.py"}:
            used |= set(re.findall(r"\bSTREAMSEG_[A-Z0-9]+(?:_[A-Z0-9]+)*\b", path.read_text()))
    known = {variable(f.name) for f in dataclasses.fields(Settings)} | TOOL_VARIABLES
    assert sorted(v for v in used if v not in known and not v.endswith("_")) == []


def test_the_defaults_are_valid_and_tool_variables_are_not_settings() -> None:
    Settings().validate()
    env = dict.fromkeys(TOOL_VARIABLES, "1")
    assert Settings.from_env(env) == Settings()


def test_good_values_parse() -> None:
    s = Settings.from_env({"STREAMSEG_METRICS_PORT": "0", "STREAMSEG_LOG_LEVEL": "DEBUG",
                           "STREAMSEG_STORE": "memory://", "STREAMSEG_CONFIRM_OUTPUTS": "no",
                           "STREAMSEG_BROKER": "kafka://a:1;b.example:9093"})
    assert (s.metrics_port, s.log_level, s.store, s.confirm_outputs) == (0, "DEBUG", "memory://",
                                                                          False)
    assert s.bootstrap_servers == "a:1,b.example:9093"


def test_the_broker_scheme_is_optional_as_documented() -> None:
    """README: ``host:port`` or ``kafka://host:port``; Faust and aiokafka get the same broker."""
    from streamseg.app import build_app

    bare = Settings.from_env({"STREAMSEG_BROKER": "127.0.0.1:19981;b.example:9093"})
    assert bare.bootstrap_servers == "127.0.0.1:19981,b.example:9093"
    urls = [str(u) for u in build_app(bare).app.conf.broker]
    assert urls == ["kafka://127.0.0.1:19981", "kafka://b.example:9093"]


def test_a_metrics_port_in_use_is_one_line_naming_the_variable() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^STREAMSEG_METRICS_PORT: cannot listen on port "
                                              rf"{port}: Address already in use$"):
            serve_metrics(port)


def test_the_metrics_endpoint_is_metrics_only() -> None:
    """``/metrics`` answers the Prometheus text; any other path is 404 (was the metrics, 200)."""
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve_metrics(port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.status == 200 and b"# TYPE " in resp.read()
        for path in ("/metrics/bogus", "/", "/favicon.ico"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert err.value.code == 404, path
    finally:
        server.shutdown()
        server.server_close()


def test_a_web_port_in_use_is_one_line_naming_the_variable() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^STREAMSEG_WEB_PORT: cannot listen on port {port} "
                                              rf"\(STREAMSEG_WEB_BIND=0\.0\.0\.0\): "
                                              rf"Address already in use$"):
            check_web_port("0.0.0.0", port)


def test_the_web_port_check_leaves_the_port_free() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_web_port("127.0.0.1", port)
    with socket.socket() as after:  # no SO_REUSEADDR: would fail if the check held the port
        after.bind(("127.0.0.1", port))
        after.listen()


def test_the_worker_command_stops_without_a_traceback() -> None:
    """The real process: a bad setting and an unreachable broker, each one line on stderr."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSEG_")}
    bad = subprocess.run([sys.executable, "-m", "streamseg", "worker"], capture_output=True,
                         text=True, timeout=60, env={**env, "STREAMSEG_LOG_LEVEL": "loud"})
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "streamseg: error: STREAMSEG_LOG_LEVEL: must be one of critical, error, warning, info, "
        "debug, got 'loud'"]
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    away = subprocess.run(
        [sys.executable, "-m", "streamseg", "worker"], capture_output=True, text=True,
        timeout=60, env={**env, "STREAMSEG_BROKER": f"kafka://127.0.0.1:{port}",
                         "STREAMSEG_BROKER_WAIT_S": "2", "STREAMSEG_METRICS_PORT": "0"})
    lines = away.stderr.splitlines()
    assert away.returncode == 3, away.stderr
    assert "Traceback" not in away.stderr
    assert len(lines) >= 2 and all(line.startswith("streamseg: ") for line in lines)
    assert "not reachable (attempt 1:" in lines[0]
    assert lines[-1].startswith(f"streamseg: error: STREAMSEG_BROKER: no Kafka broker reachable "
                                f"at 127.0.0.1:{port} after ")
    with socket.socket() as taken:  # the web port in use: one line before any broker wait
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        web = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "streamseg", "worker"], capture_output=True, text=True,
            timeout=60, env={**env, "STREAMSEG_BROKER": f"kafka://127.0.0.1:{port}",
                             "STREAMSEG_METRICS_PORT": "0", "STREAMSEG_WEB_PORT": str(web)})
    assert busy.returncode == 2 and busy.stdout == ""
    assert busy.stderr.splitlines() == [
        f"streamseg: error: STREAMSEG_WEB_PORT: cannot listen on port {web} "
        f"(STREAMSEG_WEB_BIND=0.0.0.0): Address already in use"]


def test_check_accepts_a_data_dir_with_missing_parents_and_creates_nothing(
        tmp_path: Path) -> None:
    """The worker creates a missing data directory with its parents (``mkdir -p``)."""
    import io

    from streamseg.check import check

    target = tmp_path / "missing-parent" / "data"
    out = io.StringIO()
    assert check(Settings(data_dir=str(target)), offline=True, out=out) == 0
    assert f"data dir: {target} (the worker creates it)" in out.getvalue().splitlines()
    assert list(tmp_path.iterdir()) == []  # the write probe is gone too


def test_the_worker_refuses_an_unusable_data_dir_before_any_broker_wait(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Was: check passed, the worker waited for the broker, then Faust's ``datadir.mkdir``
    ended it with a 51-line traceback (FileNotFoundError), exit code 1."""
    clean_env(monkeypatch)
    with socket.socket() as sock:  # a broker nobody listens on: reaching the wait is exit 3
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for var, value in {"STREAMSEG_DATA_DIR": "/proc/nope", "STREAMSEG_METRICS_PORT": "0",
                       "STREAMSEG_WEB_PORT": "0", "STREAMSEG_BROKER_WAIT_S": "0",
                       "STREAMSEG_BROKER": f"kafka://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(var, value)
    assert main(["worker"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        "streamseg: error: STREAMSEG_DATA_DIR: cannot create '/proc/nope' in '/proc': "
        "No such file or directory"]


def test_the_worker_creates_its_data_dir_with_its_parents_before_faust_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """The start path up to the Faust worker, without a broker: Faust's own directory
    creation (``mkdir`` without parents) then finds the data directory there."""
    from types import SimpleNamespace
    from typing import Any

    from prometheus_client import CollectorRegistry

    from streamseg import worker
    from streamseg.metrics import Metrics

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    made: list[Any] = []

    def fake_worker(app: Any, **kwargs: Any) -> Any:
        made.append(app)
        return SimpleNamespace(loghandlers=[],
                               execute_from_commandline=app._create_directories)

    monkeypatch.setattr(worker, "wait_for_broker", nothing)
    monkeypatch.setattr(worker, "ensure_topics", nothing)
    monkeypatch.setattr(worker, "settle_heap", lambda: 0)
    monkeypatch.setattr(worker, "Metrics", lambda: Metrics(CollectorRegistry()))
    monkeypatch.setattr(worker.faust, "Worker", fake_worker)
    target = tmp_path / "missing-parent" / "data"
    worker.run(Settings(data_dir=str(target), metrics_port=0, web_port=0, store="memory://"))
    assert made and target.is_dir() and (target / "v1" / "tables").is_dir()


def test_the_input_buffer_reaches_faust() -> None:
    """The input buffer is a tuning knob (docs/OPERATIONS.md, "The input buffer"): the
    worker's app must carry it; the default is 32,768, not Faust's 4,096."""
    from streamseg.app import build_app

    ss = build_app(Settings(store="memory://", web_port=0))
    assert ss.app.conf.stream_buffer_maxsize == Settings().stream_buffer_maxsize == 32_768
    ss = build_app(Settings(store="memory://", web_port=0, stream_buffer_maxsize=4096))
    assert ss.app.conf.stream_buffer_maxsize == 4096


def test_the_input_buffer_rule_holds_for_the_installed_faust() -> None:
    """The sizing rule in docs/OPERATIONS.md ("The input buffer") rests on three constants
    of the installed libraries: the queue pauses fetching at 1 / 1.25 of its size and
    resumes at 0.40 of it (mode), and Faust's fetch loop waits up to 1.0 s. An upgrade
    that changes them changes the rule: fail loudly."""
    import inspect

    from faust.transport.consumer import Consumer
    from mode.utils.queues import ThrowableQueue

    assert (ThrowableQueue.pressure_high_ratio, ThrowableQueue.pressure_drop_ratio) == (
        1.25, 0.40)
    assert "getmany(timeout=1.0)" in inspect.getsource(Consumer._drain_messages)


def test_the_input_buffer_also_sizes_the_changelog_queue() -> None:
    """The memory budget of the input buffer (docs/OPERATIONS.md, "The input buffer")
    counts two queues of that size: the agent's input channel and Faust's changelog
    queue (one for both tables: restore and standby reads). An upgrade that sizes them
    otherwise changes the budget: fail loudly."""
    from streamseg.app import build_app

    ss = build_app(Settings(store="memory://", web_port=0, stream_buffer_maxsize=1234))
    assert ss.inputs.queue.maxsize == 1234
    assert ss.app.tables.changelog_queue.maxsize == 1234


@pytest.mark.parametrize("value", ["rocksdb://foo", "rocksdb:///tmp/x", "memory://x"])
def test_a_store_url_with_a_path_is_refused_in_one_line(value: str) -> None:
    """Review 34: ``rocksdb://foo`` passed ``streamseg check`` and the worker then died
    with a 170-line traceback; ``rocksdb:///tmp/x`` wrote outside the data dir."""
    from streamseg.errors import ConfigError

    with pytest.raises(ConfigError, match=r"STREAMSEG_STORE.*no path"):
        Settings.from_env({"STREAMSEG_STORE": value})
    Settings.from_env({"STREAMSEG_STORE": "rocksdb://"})
