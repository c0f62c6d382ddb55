"""One line per build step of hack/controlplane/build.sh: what it builds, how far along it is,
and an estimate; the raw `go` output goes to a log file, named again when a step fails.

    progress.py go-build NAME LOG --what TEXT [--packages PKG...] -- go build -v ...
    progress.py run NAME LOG --what TEXT -- COMMAND...

go-build first makes sure the module's dependencies are downloaded (`go mod download`,
counted against go.sum's module zips found in the module cache), then counts the packages
the build will compile (`go list -deps`, those Stale), then runs the build with -v, which
names each package as it is compiled, and shows done/total with the time left at the
measured rate (before enough is measured: the last successful build's duration, kept next
to the binaries). On a terminal the line is redrawn in place; otherwise a line is printed
every 10 % and at the end. Standard library only (it runs before any virtualenv exists).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

PREFIX = "[controlplane]"
REDRAW_SECONDS = 1.0
UNKNOWN_TOTAL_EVERY = 30.0
MIN_SAMPLE = (20, 10.0)  # packages and seconds measured before the rate is trusted


def clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


def left(seconds: float) -> str:
    """A rounded estimate: "~40 s left", "~3 min left"."""
    if seconds < 60:
        return f"~{max(5, round(seconds / 5) * 5)} s left"
    return f"~{round(seconds / 60)} min left"


class Line:
    """The one line of a step: redrawn in place on a terminal, else printed sparingly."""

    def __init__(self, name: str, stream=sys.stdout) -> None:
        self.name = name
        self.stream = stream
        self.tty = stream.isatty()
        self.printed_decile = -1
        self.printed_at = -UNKNOWN_TOTAL_EVERY
        self.width = 0

    def show(self, text: str, fraction: float | None = None) -> None:
        line = f"{PREFIX} {self.name}: {text}"
        if self.tty:
            pad = max(0, self.width - len(line))
            self.stream.write(f"\r{line}{' ' * pad}")
            self.width = len(line)
            self.stream.flush()
            return
        # Not a terminal (CI, a log): a line per 10 %, or every 30 s when the total is unknown.
        if fraction is None:
            due = time.monotonic() - self.printed_at >= UNKNOWN_TOTAL_EVERY
        else:
            due = int(fraction * 10) > self.printed_decile
            self.printed_decile = max(self.printed_decile, int(fraction * 10))
        if due:
            self.printed_at = time.monotonic()
            print(line, file=self.stream, flush=True)

    def done(self, text: str) -> None:
        self.printed_decile = -1  # the next part of the step starts its own count
        self.printed_at = -UNKNOWN_TOTAL_EVERY
        line = f"{PREFIX} {self.name}: {text}"
        if self.tty:
            pad = max(0, self.width - len(line))
            self.stream.write(f"\r{line}{' ' * pad}\n")
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)


def history_file(bin_dir: Path, name: str) -> Path:
    return bin_dir / f".duration-{name}"


def last_duration(bin_dir: Path, name: str) -> float | None:
    try:
        return float(history_file(bin_dir, name).read_text().strip())
    except (OSError, ValueError):
        return None


def estimate(done: int, total: int, elapsed: float, previous: float | None) -> str:
    if total and done >= MIN_SAMPLE[0] and elapsed >= MIN_SAMPLE[1]:
        return left((total - done) * elapsed / done)
    if previous:
        return f"~{clock(max(0.0, previous - elapsed))} left (last build took {clock(previous)})"
    return "estimating"


# ---------------------------------------------------------------- modules


def _escape(path: str) -> str:
    """The module cache's case encoding: an upper-case letter becomes '!' + lower case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def module_zips(go_sum: Path) -> list[tuple[str, str]]:
    """(module, version) of every module zip go.sum pins (not the /go.mod-only lines)."""
    pins = []
    for line in go_sum.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not parts[1].endswith("/go.mod"):
            pins.append((parts[0], parts[1]))
    return pins


def present(modcache: Path, pins: list[tuple[str, str]]) -> int:
    return sum((modcache / "cache" / "download" / _escape(path) / "@v" /
                f"{_escape(version)}.zip").exists() for path, version in pins)


def go_env(name: str, cwd: Path) -> str:
    return subprocess.run(["go", "env", name], capture_output=True, text=True, cwd=cwd,
                          check=True).stdout.strip()


def download(line: Line, module_dir: Path, log) -> None:
    """`go mod download`, counting the pinned module zips that are in the cache."""
    pins = module_zips(module_dir / "go.sum") if (module_dir / "go.sum").exists() else []
    modcache = Path(go_env("GOMODCACHE", module_dir))
    have = present(modcache, pins)
    if have == len(pins):  # everything pinned is there already (or nothing is pinned)
        return
    started = time.monotonic()
    proc = subprocess.Popen(["go", "mod", "download", "-x"], cwd=module_dir, stdout=log,
                            stderr=subprocess.STDOUT)
    start_have = have
    while proc.poll() is None:
        have = present(modcache, pins)
        elapsed = time.monotonic() - started
        got = have - start_have
        rest = (len(pins) - have) * elapsed / got if got >= 5 and elapsed > 5 else None
        line.show(f"downloading Go modules {have}/{len(pins)}"
                  + (f", {left(rest)}" if rest is not None else ""),
                  have / len(pins) if pins else None)
        time.sleep(REDRAW_SECONDS)
    if proc.returncode != 0:
        raise StepFailed(f"go mod download failed (exit {proc.returncode})")
    line.done(f"downloaded Go modules ({len(pins)} pinned) in "
              f"{clock(time.monotonic() - started)}")


# ---------------------------------------------------------------- compiling


class StepFailed(RuntimeError):
    pass


def stale_packages(module_dir: Path, packages: list[str], log) -> int:
    """How many packages the build will compile (those `go list` calls Stale)."""
    result = subprocess.run(
        ["go", "list", "-trimpath", "-deps", "-f", "{{if .Stale}}{{.ImportPath}}{{end}}",
         *packages], cwd=module_dir, capture_output=True, text=True, check=False)
    log.write(result.stderr)
    if result.returncode != 0:
        raise StepFailed("go list failed")
    return sum(1 for name in result.stdout.splitlines() if name.strip())


def compile_with_progress(line: Line, what: str, command: list[str], cwd: Path, total: int,
                          previous: float | None, log) -> None:
    """Run `go build -v` (or install); each package name it prints is one more done."""
    done = 0
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.PIPE, text=True)
    lock = threading.Lock()

    def count() -> None:
        nonlocal done
        assert proc.stderr is not None
        for text in proc.stderr:
            log.write(text)
            if re.fullmatch(r"[\w./~+-]+", text.strip()):  # a package path: one compiled
                with lock:
                    done += 1

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    while proc.poll() is None or reader.is_alive():
        with lock:
            now_done = done
        elapsed = time.monotonic() - started
        if total:
            shown = min(now_done, total)
            rest = ("linking" if shown == total
                    else estimate(shown, total, elapsed, previous))
            text = f"compiling {what}: {shown}/{total} packages ({100 * shown // total} %), {rest}"
            line.show(text, shown / total)
        else:
            line.show(f"compiling {what}: {now_done} packages, "
                      f"{estimate(0, 0, elapsed, previous)}")
        reader.join(REDRAW_SECONDS)
    if proc.returncode != 0:
        raise StepFailed(f"go build failed (exit {proc.returncode})")


# ---------------------------------------------------------------- entry points


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="progress.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("go-build", "run"))
    parser.add_argument("name")
    parser.add_argument("log", type=Path)
    parser.add_argument("--what", required=True, help="what the step builds, for people")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="the Go module")
    parser.add_argument("--bin-dir", type=Path, required=True, help="where durations are kept")
    parser.add_argument("--packages", nargs="*", default=[],
                        help="what the build compiles, to count its stale dependencies")
    if "--" not in argv:
        parser.error("the command to run follows --")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]
    line = Line(args.name)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    previous = last_duration(args.bin_dir, args.name)
    started = time.monotonic()
    with args.log.open("w") as log:
        try:
            if args.mode == "go-build":
                if (args.dir / "go.mod").exists():
                    download(line, args.dir, log)
                total = stale_packages(args.dir, args.packages, log) if args.packages else 0
                compile_with_progress(line, args.what, command, args.dir, total, previous, log)
            else:
                line.show(f"{args.what}, {estimate(0, 0, 0.0, previous)}")
                result = subprocess.run(command, cwd=args.dir, stdout=log,
                                        stderr=subprocess.STDOUT, check=False)
                if result.returncode != 0:
                    raise StepFailed(f"{command[0]} failed (exit {result.returncode})")
        except StepFailed as err:
            log.flush()
            line.done(f"FAILED after {clock(time.monotonic() - started)}: {err}")
            print(tail(args.log), file=sys.stderr)
            print(f"{PREFIX} {args.name}: the whole output is in {args.log}", file=sys.stderr)
            return 1
    took = time.monotonic() - started
    history_file(args.bin_dir, args.name).write_text(f"{took:.0f}\n")
    line.done(f"built {args.what} in {clock(took)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
