"""hack/up.sh, hack/down.sh and hack/knative-crds/fetch.sh without a cluster.

The scripts only run their main when executed, so tests source them and call single
functions, with a fake kubectl on PATH that records its arguments.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack import deploy
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
UP = ROOT / "hack" / "up.sh"
DOWN = ROOT / "hack" / "down.sh"
FETCH = ROOT / "hack" / "knative-crds" / "fetch.sh"
SCRIPTS = (UP, DOWN, FETCH)


def bash(script: str, env: dict[str, str] | None = None,
         cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=(os.environ | (env or {})), check=False)


def setting(script: Path, name: str) -> str:
    match = re.search(rf'^{name}="([^"]+)"', script.read_text(), re.MULTILINE)
    assert match, f"{name} not set in {script.name}"
    return match.group(1)


@pytest.fixture
def fake_kubectl(tmp_path):
    """A kubectl that logs each call to calls.log and answers from small scripted rules."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "kubectl").write_text(f"""#!/usr/bin/env bash
echo "$*" >> {log}
case "$*" in
  *"config current-context"*) [[ -n "$FAKE_CONTEXT" ]] && echo "$FAKE_CONTEXT" || exit 1 ;;
  *"get --raw /readyz"*) [[ "$FAKE_READY" == 1 ]] || exit 1 ;;
  *"get namespaces -l"*) printf '%s' "$FAKE_STORES" ;;
esac
exit 0
""")
    (bin_dir / "kubectl").chmod(0o755)
    path = f"{bin_dir}:/usr/bin:/bin"
    return {"PATH": path, "HOME": str(tmp_path), "LOG": str(log)}


# ---------------------------------------------------------------- hygiene


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_shellcheck_clean(script):
    if not shutil.which("shellcheck"):
        unavailable("shellcheck is not installed (apt-get install shellcheck)")
    # -x follows `source hack/lib.sh`, so the shared helpers are checked with each script.
    result = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True,
                            timeout=60, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_and_strict(script):
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in script.read_text()


def test_knative_release_matches_the_crd_modules_the_tests_validate():
    """Knative 1.N is the Go module v0.(N+27): make up installs what CI validated against."""
    major, minor, patch = setting(UP, "KNATIVE_VERSION").split(".")
    gomod = (ROOT / "hack" / "knative-crds" / "go.mod").read_text()
    for module in ("knative.dev/serving", "knative.dev/eventing"):
        (version,) = re.findall(rf"^\s*{module} (v\S+)$", gomod, re.MULTILINE)
        assert version == f"v0.{int(minor) + 27}.{patch}", (module, version)
    # ... and what make dev and the integration tests run (hack/controlplane/eventing).
    built = (ROOT / "hack" / "controlplane" / "eventing" / "go.mod").read_text()
    assert re.search(rf"^require knative.dev/eventing v0.{int(minor) + 27}.{patch}$", built,
                     re.MULTILINE), "hack/controlplane/eventing/go.mod pins another release"
    assert major == "1"


def test_other_pins_are_exact_versions():
    assert re.fullmatch(r"v\d+\.\d+\.\d+", setting(UP, "KIND_VERSION"))
    assert re.fullmatch(r"controller-v\d+\.\d+\.\d+", setting(UP, "INGRESS_NGINX_VERSION"))


# ---------------------------------------------------------------- up.sh pieces


def test_rendered_manifests_carry_the_chosen_images_and_a_build_id(tmp_path):
    result = bash(f"""
        source {UP}
        FUNCTIONS_IMAGE=registry.invalid/team/functions:1.0
        RUNNER_IMAGE=registry.invalid/team/runner:1.0
        have_docker() {{ return 0; }}
        image_id() {{ echo sha256:0123abcd; }}
        dir="$(render_manifests)"
        cp "$dir"/*.yaml {tmp_path}/ && rm -rf "$dir"
    """)
    assert result.returncode == 0, result.stderr
    rendered = sorted(tmp_path.glob("*.yaml"))
    assert [p.name for p in rendered] == sorted(p.name for p in (ROOT / "knative").glob("*.yaml"))
    text = "".join(p.read_text() for p in rendered)
    assert "storeplatform/functions:dev" not in text
    assert "storeplatform/helm-runner:dev" not in text
    services = [d for p in rendered for d in yaml.safe_load_all(p.read_text())
                if d and d["kind"] == "Service"]
    assert len(services) == 4
    for service in services:
        template = service["spec"]["template"]
        assert template["metadata"]["annotations"]["storeplatform.io/image-id"] == \
            "sha256:0123abcd"
        (box,) = template["spec"]["containers"]
        assert box["image"] == "registry.invalid/team/functions:1.0"
    # create- and delete-store, and the admission policy's parameter (the only image a
    # runner Job may run).
    assert text.count("registry.invalid/team/runner:1.0") == 3
    params = next(d for p in rendered for d in yaml.safe_load_all(p.read_text())
                  if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] ==
                  "storeplatform-admission")
    assert params["data"]["runnerImage"] == "registry.invalid/team/runner:1.0"


def test_without_docker_the_manifests_are_only_retagged(tmp_path):
    result = bash(f"""
        source {UP}
        have_docker() {{ return 1; }}
        dir="$(render_manifests)"
        diff -r {ROOT / "knative"} "$dir"; status=$?; rm -rf "$dir"; exit $status
    """)
    assert result.returncode == 0, result.stdout + result.stderr


def test_apply_order_and_waits_are_those_the_integration_tests_run(fake_kubectl):
    """up.sh applies file by file and waits where devstack.deploy waits (the same rule runs
    against the real Eventing controllers in tests/integration/test_eventing.py)."""
    result = bash(f"""
        source {UP}
        KUBECTL=kubectl CONTEXT=test
        have_docker() {{ return 1; }}
        apply_platform
    """, env=fake_kubectl)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = Path(fake_kubectl["LOG"]).read_text().splitlines()
    seen = []
    for call in calls:
        file = re.search(r"-f \S*/(\d{3}-[a-z0-9-]+\.yaml)", call)
        if " apply " in f" {call} " and file:
            seen.append(("apply", file.group(1)))
        elif " wait " in f" {call} " and file:
            seen.append(("wait", file.group(1)))
        elif " wait " in f" {call} " and deploy.SINKBINDING_WEBHOOK in call:
            seen.append(("wait", "sinkbinding webhook"))
        elif " wait " in f" {call} ":
            seen.append(("wait", call.split("condition=Ready ")[1].split()[0]))
    expected = []
    for path, docs in deploy.manifest_files():
        expected.append(("apply", path.name))
        if any(d["kind"] == "SinkBinding" for d in docs):  # deploy.wait_intercepted
            expected.append(("wait", "sinkbinding webhook"))
        if deploy.waits_after(docs):
            expected.append(("wait", path.name))
    expected += [("wait", "sinkbinding")]
    assert seen == expected


def test_kind_config_maps_the_ingress_and_kourier_ports():
    result = bash(f"source {UP}; HTTP_PORT=8000 KNATIVE_PORT=9000 kind_config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    (node,) = config["nodes"]
    assert node["labels"] == {"ingress-ready": "true"}
    ports = {(m["containerPort"], m["hostPort"], m["listenAddress"])
             for m in node["extraPortMappings"]}
    assert ports == {(80, 8000, "127.0.0.1"), (31080, 9000, "127.0.0.1")}


@pytest.mark.parametrize(("target", "context", "ready", "docker", "expected"), [
    ("current", "prod", "1", "1", "current prod"),
    ("auto", "kind-storeplatform", "1", "1", "kind kind-storeplatform"),
    ("auto", "", "0", "1", "kind kind-storeplatform"),
    ("auto", "stale", "0", "1", "kind kind-storeplatform"),
    ("kind", "prod", "1", "1", "kind kind-storeplatform"),
])
def test_target_choice(fake_kubectl, target, context, ready, docker, expected):
    result = bash(f"""
        source {UP}
        KUBECTL=kubectl UP_TARGET={target}
        have_docker() {{ [[ {docker} == 1 ]]; }}
        choose_target
        echo "$MODE $CONTEXT"
    """, env=fake_kubectl | {"FAKE_CONTEXT": context, "FAKE_READY": ready})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == expected


def test_up_never_deploys_silently_to_a_context_it_did_not_create(fake_kubectl):
    """auto + a foreign context that answers + no terminal to ask on: a refusal that names
    the context and the ways on, and not a single apply."""
    result = bash(f"bash {UP} < /dev/null", env=fake_kubectl | {
        "FAKE_CONTEXT": "prod", "FAKE_READY": "1"})
    assert result.returncode == 1
    assert "not deploying to kubectl context prod" in result.stderr
    assert "UP_TARGET=current make up" in result.stderr
    calls = Path(fake_kubectl["LOG"]).read_text()
    assert " apply " not in f" {calls} " and "create" not in calls


def run_in_terminal(script: str, env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """Run bash with a pseudo-terminal as its stdin, typing answer; (exit code, output)."""
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(["bash", "-c", script], stdin=secondary, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ | env)
    os.close(secondary)
    os.write(primary, answer)
    out, _ = proc.communicate(timeout=60)
    os.close(primary)
    return proc.returncode, out.decode()


@pytest.mark.parametrize(("answer", "mode"), [(b"y\n", "current"), (b"n\n", None),
                                              (b"\n", None)])
def test_up_asks_at_a_terminal_and_only_yes_deploys(fake_kubectl, answer, mode):
    code, out = run_in_terminal(f"""
        source {UP}
        KUBECTL=kubectl
        have_docker() {{ return 1; }}
        choose_target
        echo "chosen: $MODE $CONTEXT"
    """, fake_kubectl | {"FAKE_CONTEXT": "prod", "FAKE_READY": "1"}, answer)
    assert "make up did not create kubectl context prod" in out
    assert "[y/N]" in out
    if mode:
        assert code == 0 and "chosen: current prod" in out, out
    else:
        assert code == 1 and "not deploying to kubectl context prod" in out, out


def test_a_context_make_up_created_is_used_without_asking(fake_kubectl, tmp_path):
    cache = tmp_path / ".cache" / "storeplatform"
    cache.mkdir(parents=True)
    (cache / "up-created-contexts").write_text("kind-mine\n")
    result = bash(f"""
        source {UP}
        KUBECTL=kubectl
        choose_target < /dev/null
        echo "$MODE $CONTEXT"
    """, env=fake_kubectl | {"FAKE_CONTEXT": "kind-mine", "FAKE_READY": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "kind kind-mine"


def test_creating_the_kind_cluster_remembers_its_context(fake_kubectl, tmp_path):
    result = bash(f"""
        source {UP}
        remember_created kind-storeplatform-2
        remember_created kind-storeplatform-2
        created_here kind-storeplatform-2 && echo yes
        created_here prod || echo no
    """, env=fake_kubectl)
    assert result.stdout.split() == ["yes", "no"]
    created = tmp_path / ".cache" / "storeplatform" / "up-created-contexts"
    assert created.read_text() == "kind-storeplatform-2\n"


def test_no_cluster_and_no_docker_runs_the_embedded_platform(fake_kubectl):
    fake_make = Path(fake_kubectl["PATH"].split(":")[0]) / "make"
    fake_make.write_text('#!/bin/sh\necho "make $*"\n')
    fake_make.chmod(0o755)
    result = bash(f"""
        source {UP}
        KUBECTL=kubectl
        have_docker() {{ return 1; }}
        choose_target
        echo "$MODE"
        run_embedded
    """, env=fake_kubectl | {"FAKE_CONTEXT": "", "FAKE_READY": "0"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().split("\n")
    assert lines[0] == "embedded"
    assert "running the embedded platform (make dev)" in result.stdout
    assert lines[-1].startswith("make -C ") and lines[-1].endswith(" dev")


# ---------------------------------------------------------------- down.sh


def test_down_never_touches_the_current_context_it_was_not_pointed_at(fake_kubectl):
    result = bash(f"bash {DOWN}", env=fake_kubectl | {
        "FAKE_CONTEXT": "prod", "FAKE_STORES": "namespace/store-a"})
    assert result.returncode == 0, result.stderr
    calls = Path(fake_kubectl["LOG"]).read_text().splitlines()
    assert calls == ["config current-context"]  # read, never acted on
    assert "DOWN_CONTEXT=prod make down" in result.stdout


def test_down_pointed_at_a_context_touches_that_one_only(fake_kubectl):
    result = bash(f"bash {DOWN}", env=fake_kubectl | {
        "FAKE_CONTEXT": "prod", "DOWN_CONTEXT": "staging", "FAKE_STORES": ""})
    assert result.returncode == 0, result.stderr
    calls = [c for c in Path(fake_kubectl["LOG"]).read_text().splitlines()
             if c != "config current-context"]
    assert calls and all("--context staging" in c or c.startswith("config get-contexts staging")
                         for c in calls), calls
    assert not any("prod" in c for c in calls)


def test_down_deletes_only_the_kind_cluster_make_up_made(fake_kubectl):
    bin_dir = Path(fake_kubectl["PATH"].split(":")[0])
    kind_log = Path(fake_kubectl["LOG"]).with_name("kind.log")
    (bin_dir / "kind").write_text(f"""#!/usr/bin/env bash
echo "$*" >> {kind_log}
[[ "$1 $2" == "get clusters" ]] && echo storeplatform
exit 0
""")
    (bin_dir / "kind").chmod(0o755)
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "docker").chmod(0o755)
    result = bash(f"bash {DOWN}", env=fake_kubectl | {"FAKE_CONTEXT": "prod"})
    assert result.returncode == 0, result.stderr
    assert "delete cluster --name storeplatform" in kind_log.read_text()
    kubectl_calls = Path(fake_kubectl["LOG"]).read_text().splitlines()
    assert kubectl_calls == ["config current-context"]


def test_down_on_another_cluster_deletes_knative_objects_in_reverse_order(fake_kubectl):
    result = bash(f"bash {DOWN}", env=fake_kubectl | {
        "FAKE_CONTEXT": "prod", "DOWN_CONTEXT": "prod",
        "FAKE_STORES": "namespace/store-a\nnamespace/store-b"})
    assert result.returncode == 0, result.stderr
    calls = Path(fake_kubectl["LOG"]).read_text().splitlines()
    deleted = [re.search(r"-f \S*/knative/(\S+)", c).group(1) for c in calls
               if " delete " in f" {c} " and "/knative/" in c]
    files = sorted(p.name for p in (ROOT / "knative").glob("*.yaml"))
    assert deleted == files[::-1]
    assert all("--context prod" in c for c in calls if "delete" in c)
    assert not any("delete namespaces -l" in c for c in calls)  # stores stay by default
    assert "DELETE_STORES=1 make down" in result.stdout


def test_down_deletes_stores_only_when_asked(fake_kubectl):
    result = bash(f"bash {DOWN}", env=fake_kubectl | {
        "FAKE_CONTEXT": "prod", "DOWN_CONTEXT": "prod", "FAKE_STORES": "namespace/store-a",
        "DELETE_STORES": "1"})
    assert result.returncode == 0, result.stderr
    calls = Path(fake_kubectl["LOG"]).read_text()
    assert "delete namespaces -l app.kubernetes.io/managed-by=storeplatform" in calls


def test_down_with_nothing_configured_is_a_no_op(fake_kubectl):
    result = bash(f"bash {DOWN}", env=fake_kubectl | {"FAKE_CONTEXT": ""})
    assert result.returncode == 0, result.stderr
    assert "Nothing to remove" in result.stdout


# ---------------------------------------------------------------- kn event send examples

# The flags of `kn event send` in kn-plugin-event knative-v1.23.0: internal/cli/send.go
# (--to/-r, --addressable-uri), internal/cli/builder.go (--type/-t, --id/-i, --source/-s,
# --field/-f, --raw-field), pkg/k8s/params.go (--namespace/-n, plus the client's
# --kubeconfig/--context), internal/cli/root.go (--verbose/-v, --output/-o).
KN_EVENT_SEND_FLAGS = {"--to", "-r", "--addressable-uri", "--type", "-t", "--id", "-i",
                       "--source", "-s", "--field", "-f", "--raw-field", "--namespace", "-n",
                       "--kubeconfig", "--context", "--verbose", "-v", "--output", "-o"}
# knative/client pkg/flags/sink: a URL, or <prefix>:<name>[:<namespace>].
KN_SINK_PREFIXES = {"broker", "channel", "ksvc", "kservice", "svc", "service"}
DOCS_WITH_KN = [ROOT / "README.md", ROOT / "docs" / "knative.md"]


def kn_examples() -> list[tuple[str, list[str]]]:
    examples = []
    for doc in DOCS_WITH_KN:
        text = doc.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip().startswith("kn event send"):
                examples.append((doc.name, line.split()[3:]))
    return examples


def test_there_are_kn_event_examples():
    assert len(kn_examples()) >= 4


@pytest.mark.parametrize(("doc", "args"), kn_examples(), ids=lambda v: str(v)[:60])
def test_kn_event_send_examples_use_the_v1_23_plugin_flags(doc, args):
    flags = [a.split("=")[0] for a in args if a.startswith("-")]
    assert set(flags) <= KN_EVENT_SEND_FLAGS, (doc, set(flags) - KN_EVENT_SEND_FLAGS)
    sink = args[args.index("--to") + 1]
    if not sink.startswith(("http://", "https://")):
        prefix, _, rest = sink.partition(":")
        assert prefix in KN_SINK_PREFIXES and rest and rest.count(":") <= 1, (doc, sink)
    fields = [args[i + 1] for i, a in enumerate(args) if a in ("--raw-field", "--field", "-f")]
    assert any(f.startswith("name=store-") for f in fields), (doc, args)


def test_make_up_creates_a_random_gateway_token_once_and_never_prints_it(tmp_path):
    """ensure_gateway_token with kubectl stood in for: the token goes in by stdin (never an
    argument), only when the Secret is missing; the output names the Secret, not the value."""
    result = bash(f"""
        source {UP}
        PLATFORM_NS=storeplatform
        k() {{
          if [[ "$1 $2 $3" == "-n storeplatform get" ]]; then
            [[ -e {tmp_path}/exists ]]; return
          fi
          echo "$*" >> {tmp_path}/calls
          cat > {tmp_path}/secret-value
          touch {tmp_path}/exists
        }}
        ensure_gateway_token
        ensure_gateway_token
    """)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["-n storeplatform create secret generic storeplatform-gateway "
                     "--from-file=token=/dev/stdin"]
    token = (tmp_path / "secret-value").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert token not in result.stdout + result.stderr
    assert "created" in result.stdout and "kept" in result.stdout


SERVICE_SUBJECT = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "gateway"}


@pytest.mark.parametrize(("rules", "covered"), [
    ([], False),  # before the webhook has seen the first binding of the kind
    ([{"apiGroups": ["apps"], "resources": ["deployments/*"],
       "operations": ["CREATE", "UPDATE"]}], False),
    ([{"apiGroups": ["serving.knative.dev"], "resources": ["services/*"],
       "operations": ["CREATE", "UPDATE"]}], True),
    ([{"apiGroups": ["serving.knative.dev"], "resources": ["services/*"],
       "operations": ["UPDATE"]}], False),
])
def test_services_are_applied_once_the_sinkbinding_webhook_intercepts_them(rules, covered):
    webhook = {"webhooks": [{"name": deploy.SINKBINDING_WEBHOOK, "rules": rules}]}
    assert deploy.intercepted(webhook, SERVICE_SUBJECT) is covered
    assert deploy.intercepted(None, SERVICE_SUBJECT) is False
