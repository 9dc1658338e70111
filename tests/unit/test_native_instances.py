"""A second native stack on the same machine: its own state directory and ports (but for the servers
the stacks share), its own cluster label, remote write to a global store."""

import json
import subprocess
import sys

import pytest

from native import paths, ports
from native.derive import prometheus_config

DERIVE = """
import json
from native import derive, paths, ports
prom = derive.prometheus_config(paths.REPO / "prometheus" / "prometheus.yml", 2, "b", "http://127.0.0.1:9390/api/v1/write")
am = derive.alertmanager_config(paths.REPO / "alertmanager" / "alertmanager.yml")
print(json.dumps({"state": str(paths.STATE), "ports": ports.PORTS, "prom": prom, "am": am}))
"""


def derived(env):
    out = subprocess.run(
        [sys.executable, "-c", DERIVE],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def targets(prom, job):
    return [
        t for j in prom["scrape_configs"] if j["job_name"] == job for sc in j["static_configs"] for t in sc["targets"]
    ]


def test_a_second_instance_moves_its_own_ports_and_keeps_the_shared_ones():
    first, second = derived({}), derived({"NATIVE_INSTANCE": "b", "NATIVE_PORT_OFFSET": "1000"})
    assert second["state"] == str(paths.REPO / ".native" / "instances" / "b") != first["state"]
    for name, port in first["ports"].items():
        assert second["ports"][name] == port + (0 if name in ports.SHARED else 1000), name
    assert targets(second["prom"], "celery_exporter") == ["127.0.0.1:10808"]
    assert targets(second["prom"], "celery_worker") == ["127.0.0.1:10191", "127.0.0.1:10192"]
    assert targets(second["prom"], "rabbitmq") == targets(first["prom"], "rabbitmq") == ["127.0.0.1:15692"]
    assert second["prom"]["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:10093"]
    assert "http://127.0.0.1:9080/api/alerts" in second["am"] and "http://127.0.0.1:8080/api/alerts" in first["am"]


def test_the_cluster_label_and_remote_write_are_set():
    prom = prometheus_config(paths.REPO / "prometheus" / "prometheus.yml", 1, "b", "http://127.0.0.1:9390/api/v1/write")
    assert prom["global"]["external_labels"]["cluster"] == "b"
    assert prom["remote_write"] == [{"url": "http://127.0.0.1:9390/api/v1/write"}]
    plain = prometheus_config(paths.REPO / "prometheus" / "prometheus.yml", 1)
    assert "cluster" not in plain["global"].get("external_labels", {}) and "remote_write" not in plain


@pytest.mark.parametrize("value", ["-1", "20001", "ten", "1.5"])
def test_a_bad_port_offset_is_refused_naming_it(value):
    with pytest.raises(ValueError, match=f"NATIVE_PORT_OFFSET must be a whole number from 0 to 20000, got '{value}'"):
        ports.port_offset({"NATIVE_PORT_OFFSET": value})


@pytest.mark.parametrize("value", ["Redis", "a/b", "../x", "-x"])
def test_a_bad_instance_name_is_refused_naming_it(value):
    with pytest.raises(ValueError, match="NATIVE_INSTANCE must be lowercase letters, digits and dashes"):
        paths.instance({"NATIVE_INSTANCE": value})


def test_make_up_refuses_a_bad_offset_in_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "native", "status"],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NATIVE_PORT_OFFSET": "x"},
        timeout=60,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
    assert "NATIVE_PORT_OFFSET must be a whole number from 0 to 20000, got 'x'" in out.stderr + out.stdout
