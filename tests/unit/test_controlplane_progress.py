"""hack/controlplane/progress.py, the one line per build step of build.sh, driven with a
stand-in `go` on PATH (a real build takes minutes; `make controlplane` runs the real one):
package counts from `go list`, progress from `go build -v`, the raw output in the log, and
the log's path when the build fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRESS = ROOT / "hack" / "controlplane" / "progress.py"

FAKE_GO = """#!/usr/bin/env bash
# A stand-in for go: `go env`, `go list -deps` (N stale packages), `go build -v` (names
# them one by one on stderr, plus a warning), `go mod download`.
case "$1" in
  env) echo "$FAKE_MODCACHE" ;;
  list) for i in $(seq 1 "$FAKE_PACKAGES"); do echo "example.com/pkg$i"; done ;;
  mod) echo "go: downloading example.com/mod v1.0.0" >&2 ;;
  build|install)
    echo "# some raw compiler chatter" >&2
    for i in $(seq 1 "$FAKE_PACKAGES"); do echo "example.com/pkg$i" >&2; sleep 0.1; done
    if [[ -n "$FAKE_FAIL" ]]; then
      echo "pkg7/x.go:3:1: syntax error: unexpected }" >&2; exit 1
    fi ;;
esac
"""


def run(tmp_path: Path, *extra: str, fail: bool = False, packages: int = 30):
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "go").write_text(FAKE_GO)
    (bin_dir / "go").chmod(0o755)
    module = tmp_path / "module"
    module.mkdir(exist_ok=True)
    (module / "go.mod").write_text("module example.com/wrapper\n")
    (module / "go.sum").write_text("")
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}",
                        "FAKE_PACKAGES": str(packages), "FAKE_FAIL": "1" if fail else "",
                        "FAKE_MODCACHE": str(tmp_path / "modcache")}
    log = tmp_path / "logs" / "controlplane-demo.log"
    result = subprocess.run(
        [sys.executable, str(PROGRESS), "go-build", "demo", str(log), "--what", "demo-binary",
         "--dir", str(module), "--bin-dir", str(tmp_path), *extra, "--packages", "./cmd/demo",
         "--", "go", "build", "-v", "./cmd/demo"],
        capture_output=True, text=True, env=env, timeout=60, check=False)
    return result, log


def test_a_build_prints_what_how_far_and_the_time_it_took(tmp_path):
    result, log = run(tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Not a terminal: the first line, one per 10 %, the end; never the raw output.
    assert lines[0].startswith("[controlplane] demo: compiling demo-binary: 0/30 packages")
    done = [int(line.split(": ")[2].split("/")[0]) for line in lines[:-1]]
    assert done == sorted(done) and any(0 < n < 30 for n in done), lines
    assert lines[-1].startswith("[controlplane] demo: built demo-binary in ")
    assert "example.com/pkg" not in result.stdout and "chatter" not in result.stdout
    assert "example.com/pkg30" in log.read_text() and "chatter" in log.read_text()
    assert (tmp_path / ".duration-demo").read_text().strip().isdigit()


def test_the_next_build_estimates_from_the_last_one(tmp_path):
    (tmp_path / ".duration-demo").write_text("540\n")
    result, _ = run(tmp_path)
    assert "left (last build took 9 min 00 s)" in result.stdout.splitlines()[0]


def test_a_failed_build_names_its_log_and_shows_its_end(tmp_path):
    result, log = run(tmp_path, fail=True)
    assert result.returncode == 1
    assert "[controlplane] demo: FAILED after" in result.stdout
    assert "syntax error: unexpected }" in result.stderr  # the tail of the raw output
    assert f"the whole output is in {log}" in result.stderr
    assert "syntax error" in log.read_text()
    assert not (tmp_path / ".duration-demo").exists()


def test_build_sh_sends_go_through_the_progress_line():
    script = (ROOT / "hack" / "controlplane" / "build.sh").read_text()
    for step in ("kubernetes", "etcd", "kwok", "eventing"):
        assert f"go_step {step} " in script
    assert "quiet_step helm-kubectl " in script
    # No raw go build left outside the progress line.
    raw = [line for line in script.splitlines()
           if line.strip().startswith(("go build", "(cd")) and "go_step" not in line]
    assert raw == []
