"""scaling/docker-compose.yml (rung 3 on one Docker host) checked against the code, since no test here runs Docker:
every node runs a real `main.py` command with the compose config, which loads and names only compose services;
nginx (the shipped scaling/nginx.conf) sends requests to the app nodes; nodes start after the migration; every
volume is declared; and the bucket-making script works against a real S3 (SeaweedFS)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import yaml

from app.cli import _parser
from app.config import REDIS_SECTIONS, load_config, redis_url
from tests.backends import make_config

ROOT = Path(__file__).resolve().parents[1]
SCALING = ROOT / "scaling"
COMPOSE = yaml.safe_load((SCALING / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
NODES = {name: s for name, s in SERVICES.items() if "build" in s}  # built from the repo's Dockerfile


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each of the service's volumes."""
    return [tuple(entry.split(":")[:2]) for entry in service.get("volumes", [])]


def host_path(service: dict, inside: str) -> Path:
    """The repo file a bind mount puts at `inside` in the service's container."""
    for source, target in mounts(service):
        if source.startswith(".") and PurePosixPath(inside).is_relative_to(target):
            return SCALING / source / PurePosixPath(inside).relative_to(target)
    raise AssertionError(f"nothing is mounted at {inside}: {service.get('volumes')}")


def main_py_command(name: str) -> str | None:
    """The main.py subcommand the service runs (its arguments parsed as main.py does), or None for a script."""
    command = NODES[name]["command"]
    assert command[0] == "python", f"{name}: {command}"
    if command[1] != "main.py":
        return None
    try:
        return _parser().parse_args(command[2:]).command
    except SystemExit:
        raise AssertionError(f"{name}: `{' '.join(command)}` is not a main.py command line") from None


def running(command: str) -> list[str]:
    return [name for name in NODES if main_py_command(name) == command]


def config_of(name: str, environ: dict[str, str] | None = None):
    service = NODES[name]
    return load_config(host_path(service, service["environment"]["PINHOLE_CONFIG"]), environ=environ or {})


def aliases(service: dict) -> list[str]:
    networks = service.get("networks", [])  # a list of names, or a mapping with each network's settings
    return [] if isinstance(networks, list) else networks["pinhole"].get("aliases", [])


def address_of(service: dict) -> str:
    return service["networks"]["pinhole"]["ipv4_address"]


def test_every_node_runs_a_real_command_and_the_shape_is_rung_3():
    for name in NODES:
        script = main_py_command(name)
        if script is None:
            assert host_path(NODES[name], NODES[name]["command"][1]).is_file()
    assert len(running("serve")) == 2 and len(running("worker")) == 1 and len(running("migrate")) == 1
    assert NODES[running("worker")[0]]["deploy"]["replicas"] >= 2


def test_the_nodes_start_after_the_migration_which_runs_once():
    [migrate] = running("migrate")
    assert SERVICES[migrate]["restart"] == "no"
    for name in running("serve") + running("worker"):
        assert SERVICES[name]["depends_on"][migrate] == {"condition": "service_completed_successfully"}, name
        assert config_of(name).server.migrate_on_start is False, "the app nodes would migrate again, side by side"
    for name, service in SERVICES.items():
        for needed in service.get("depends_on", {}):
            assert needed in SERVICES, f"{name} waits for {needed}, which is not a service"


def test_the_compose_config_loads_and_names_only_compose_services():
    names = set(SERVICES) | {alias for s in SERVICES.values() for alias in aliases(s)}
    for name in NODES:
        config = config_of(name)
        assert config.queue.embedded_workers == 0, "the app nodes would run the queue too"
        dsns = [dsn for server in config.database.servers for dsn in [server.dsn, *server.replicas]]
        hosts = {urlparse(dsn).hostname for dsn in dsns}
        hosts |= {server.rpartition(":")[0] for server in config.cache.servers}
        on_redis = [section for section in REDIS_SECTIONS if getattr(config, section).backend == "redis"]
        hosts |= {urlparse(redis_url(config, section)).hostname for section in on_redis}
        hosts.add(urlparse(config.media.s3_endpoint).hostname)
        assert hosts <= names, f"{name}'s config names hosts that are not compose services: {hosts - names}"
        postgres = {urlparse(server.dsn).hostname for server in config.database.servers}
        assert len(postgres) == 2 and all(server.shard_list for server in config.database.servers)
        secret = {k: "from-the-environment" for k in SERVICES[name]["environment"] if k.startswith("PINHOLE_")}
        secret.pop("PINHOLE_CONFIG")
        assert config_of(name, secret).server.secret_key == ("from-the-environment" if secret else "")


def test_s3_knows_the_identity_the_config_uses_and_both_ports_reach_the_browser():
    [app, *_] = running("serve")
    config = config_of(app)
    [s3] = [s for s in SERVICES.values() if urlparse(config.media.s3_endpoint).hostname in aliases(s)]
    [config_flag] = [arg for arg in s3["command"] if arg.startswith("-s3.config=")]
    identities = json.loads(host_path(s3, config_flag.partition("=")[2]).read_text())["identities"]
    keys = {(c["accessKey"], c["secretKey"]) for identity in identities for c in identity["credentials"]}
    assert (config.media.s3_access_key, config.media.s3_secret_key) in keys
    # Presigned URLs and the pages' links: the browser reaches S3 and nginx on the ports the config names.
    port = urlparse(config.media.s3_endpoint).port
    assert f"-s3.port={port}" in s3["command"] and f"127.0.0.1:{port}:{port}" in s3["ports"]
    assert f"127.0.0.1:{urlparse(config.public_url).port}:80" in SERVICES["nginx"]["ports"]


def test_nginx_runs_the_shipped_conf_in_front_of_the_app_nodes():
    nginx = SERVICES["nginx"]
    assert host_path(nginx, "/etc/nginx/nginx.conf").resolve() == SCALING / "nginx.conf"
    conf = (SCALING / "nginx.conf").read_text()
    upstream = re.search(r"upstream pinhole_app \{(.*?)\}", conf, re.S)[1]
    servers = set(re.findall(r"^\s*server\s+([\d.]+):(\d+)", upstream, re.M))
    apps = running("serve")
    assert servers == {(address_of(SERVICES[a]), str(config_of(a).server.port)) for a in apps}
    assert set(nginx["depends_on"]) == set(apps)
    for app in apps:  # the visitor's address, not nginx's, for the rate limits
        assert config_of(app).server.trusted_proxies == [address_of(nginx)]
    network = COMPOSE["networks"]["pinhole"]["ipam"]["config"][0]
    fixed = [ipaddress.ip_address(address_of(SERVICES[n])) for n in [*apps, "nginx"]]
    subnet, handed_out = ipaddress.ip_network(network["subnet"]), ipaddress.ip_network(network["ip_range"])
    assert all(ip in subnet and ip not in handed_out for ip in fixed)


def test_every_volume_is_declared_and_every_mounted_file_exists():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES.items():
        for source, _target in mounts(service):
            if source.startswith("."):
                assert (SCALING / source).exists(), f"{name} mounts {source}, which is not in the repo"
            else:
                assert source in declared, f"{name} uses the volume {source}, not declared under volumes:"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_the_bucket_script_makes_the_bucket_once(tmp_path, seaweedfs):
    [maker] = [n for n in NODES if main_py_command(n) is None]
    script = host_path(NODES[maker], NODES[maker]["command"][1])
    bucket = f"compose-{os.getpid()}"
    settings = {**seaweedfs.settings(bucket), "backend": "s3"}
    config = make_config(tmp_path, media=settings)
    env = {**os.environ, "PINHOLE_CONFIG": str(config.source), "PYTHONPATH": str(ROOT)}
    try:
        first = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and f"made the bucket {bucket}" in first.stdout, first.stderr
        seaweedfs.admin.head_bucket(Bucket=bucket)
        again = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already there" in again.stdout, again.stderr
    finally:
        seaweedfs.remove_bucket(bucket)
