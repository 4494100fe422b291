#!/usr/bin/env python3
"""Extracts kustomize's own krusty tests into trees that `kubectl kustomize` builds.

Usage: python3 tests/kustomize/extract.py KUSTOMIZE_REPO [OUT_DIR]

KUSTOMIZE_REPO is a clone (or bare mirror) of https://github.com/kubernetes-sigs/kustomize
holding the tag pinned below (`git clone --bare https://github.com/kubernetes-sigs/kustomize`
gets one). OUT_DIR defaults to testdata/kustomize-cases of this repository; it is emptied
first. Needs Python 3.11 (standard library only), git and kubectl with kustomize v5.5.0
(`kubectl version --client`).

Every test function of api/krusty/*_test.go is run by a small interpreter of the Go subset
the tests use (gosubset.py) on a fake harness that records the files the test writes
(`th.WriteK`, `th.WriteF`, `th.WriteC`) and the builds it runs (`th.Run`,
`th.RunWithErr`). Each build becomes a case:

    OUT_DIR/NAME/tree/...        the files the test wrote, `/` being tree/
    OUT_DIR/NAME/build           the directory built, relative to tree/
    OUT_DIR/NAME/options         present when the build needs kubectl options
                                 (`load-restrictor: none`)
    OUT_DIR/NAME/expected.yaml   kubectl's output, or
    OUT_DIR/NAME/expected-error.txt  kubectl's error (the tree's path replaced by <ROOT>)

A test that is not only files and builds (plugins, remote resources, exec or container
functions, helm, configurations built by Go code, options kubectl does not have, Go code
the interpreter does not understand) is listed in OUT_DIR/SKIPPED with the reason, one
`NAME: reason` a line. The output is deterministic: running the script twice gives the same
tree.
"""

from __future__ import annotations

import concurrent.futures
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gosubset import Interp, Opaque, Package, Skip, TestingT, concrete  # noqa: E402

# The kustomize release embedded in kubectl v1.32 (`kubectl version --client`).
TAG = "kustomize/v5.5.0"
COMMIT = "afe77936761f8f7ee735a67f167a8382c8406f74"
KRUSTY = "api/krusty"

KUST_HEADER = "\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
COMP_HEADER = "\napiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"

# Content that makes kubectl reach outside the tree or run programs.
FORBIDDEN = [
    (re.compile(r"(https?|ssh|git)://|git@|github\.com/|gitlab\.com/|\?ref="), "remote resource"),
    (re.compile(r"^\s*helm(Charts|Globals|ChartInflationGenerator)\s*:", re.M), "helm"),
    (re.compile(r"config\.kubernetes\.io/function|config\.k8s\.io/function"), "KRM function (exec or container)"),
    (re.compile(r"^kind:\s*HelmChartInflationGenerator", re.M), "helm"),
]


class Options:
    def __init__(self):
        self.load_restrictor = None

    def set_field(self, name, value):
        if name == "LoadRestrictions":
            if value == ("pkg", "types.LoadRestrictionsNone"):
                self.load_restrictor = "none"
                return
            if value == ("pkg", "types.LoadRestrictionsRootOnly"):
                self.load_restrictor = None
                return
        raise Skip(f"sets the krusty option {name}, which kubectl kustomize does not have")

    def attr(self, name):
        if name == "PluginConfig":
            raise Skip("configures plugins")
        raise Skip(f"reads the krusty option {name}")


class Harness:
    def __init__(self, ex: "Extractor", kind: str):
        self.ex = ex
        self.files: dict[str, str] = {}
        self.kind = kind

    @staticmethod
    def path(p) -> str:
        p = concrete(p, "a path")
        if not isinstance(p, str):
            raise Skip("a path that is not a string")
        return posixpath.normpath(posixpath.join("/", p))

    def write(self, path: str, content: str):
        content = concrete(content, "the content of a file")
        if not isinstance(content, str):
            raise Skip("file content that is not a string")
        self.files[path] = content

    def attr(self, name):
        if name == "Harness":
            return self
        raise Skip(f"reads the harness field {name}")

    def method(self, name: str, args: list, interp: Interp):
        if name == "WriteK":
            return self.write(posixpath.join(self.path(args[0]), "kustomization.yaml"),
                              KUST_HEADER + concrete(args[1], "a kustomization"))
        if name == "WriteC":
            return self.write(posixpath.join(self.path(args[0]), "kustomization.yaml"),
                              COMP_HEADER + concrete(args[1], "a component"))
        if name == "WriteF":
            return self.write(self.path(args[0]), args[1])
        if name == "MkDir":
            return self.path(args[0])
        if name == "GetRoot":
            return "/"
        if name in ("MakeDefaultOptions", "MakeOptionsPluginsDisabled"):
            return Options()
        if name == "MakeOptionsPluginsEnabled":
            raise Skip("enables plugins (MakeOptionsPluginsEnabled)")
        if name in ("Run", "RunWithErr"):
            opts = args[1]
            if not isinstance(opts, Options):
                raise Skip("builds with options computed by Go code")
            self.ex.record(interp.t_name, self.path(args[0]), dict(self.files), opts)
            return Opaque("the result of a build") if name == "Run" else Opaque("a build error")
        if name.startswith("Assert") or name in ("Reset", "GetT"):
            return None
        if name == "PrepBuiltin":
            return self  # builtin plugins are compiled into kubectl
        if name in ("PrepExecPlugin", "BuildGoPlugin", "PrepContainerPlugin"):
            raise Skip(f"builds a plugin ({name})")
        if name == "ErrIfNoHelm":
            raise Skip("helm")
        if name == "WriteLegacyConfigs":
            raise Skip("writes configurations built by Go code (WriteLegacyConfigs)")
        raise Skip(f"calls the harness method {name}")


class Extractor:
    def __init__(self):
        self.cases: list[tuple[str, str, dict, Options]] = []
        self.pending: list[tuple[str, str, dict, Options]] = []

    def record(self, test: str, build: str, files: dict, opts: Options):
        self.pending.append((test, build, files, opts))


def case_name(test: str) -> str:
    name = test.removeprefix("Test")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.replace("/", "--"))
    return name.strip("-")


def extract(repo: str) -> tuple[list, list[str]]:
    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout

    got = git("rev-parse", f"{TAG}^{{commit}}").decode().strip()
    if got != COMMIT:
        sys.exit(f"{TAG} is {got} in {repo}, expected {COMMIT}")
    names = git("ls-tree", "--name-only", f"{COMMIT}:{KRUSTY}").decode().split()
    files = sorted(n for n in names if n.endswith("_test.go"))
    pkg = Package()
    tests: list[tuple[str, str]] = []
    for f in files:
        src = git("show", f"{COMMIT}:{KRUSTY}/{f}").decode()
        try:
            for t in pkg.add_file(src):
                tests.append((f, t))
        except Skip as e:
            sys.exit(f"{f}: {e}")
    ex = Extractor()
    skipped: list[str] = []
    cases = []
    for f, t in tests:
        ex.pending = []
        interp = Interp(pkg, lambda kind: Harness(ex, kind), t)
        interp.read_source = lambda p: git(
            "show", f"{COMMIT}:{posixpath.normpath(posixpath.join(KRUSTY, p))}").decode()
        reason = None
        try:
            interp.run_func(pkg.funcs[t], [TestingT()])
        except Skip as e:
            reason = str(e)
        except (RecursionError, KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            reason = f"the extractor does not understand it ({type(e).__name__}: {e})"
        if reason is None and not ex.pending:
            reason = "runs no build"
        if reason is None:
            for _, _, fs, _ in ex.pending:
                for path, content in fs.items():
                    for pat, why in FORBIDDEN:
                        if pat.search(content):
                            reason = f"{why} (in {path})"
                            break
                    if reason:
                        break
                if reason:
                    break
        if reason is not None:
            skipped.append(f"{case_name(t)}: {reason}")
            continue
        counts: dict[str, int] = {}
        for test, build, fs, opts in ex.pending:
            base = case_name(test)
            counts[base] = counts.get(base, 0) + 1
            name = base if counts[base] == 1 else f"{base}-{counts[base]}"
            cases.append((name, build, fs, opts))
    # Names of a test that ran several builds: the first gets `-1` too when there are more.
    multi = {}
    for name, *_ in cases:
        stem = re.sub(r"-\d+$", "", name)
        multi[stem] = multi.get(stem, 0) + 1
    renamed = []
    for name, build, fs, opts in cases:
        if name in multi and multi[name] > 1 and not re.search(r"-\d+$", name):
            name = f"{name}-1"
        renamed.append((name, build, fs, opts))
    return renamed, skipped


# kubectl's home (it may write a cache there): outside the output.
HOME = tempfile.mkdtemp(prefix="kustomize-cases-home-")
KLOG = re.compile(r'^E\d{4} [0-9:.]+\s+\d+ \S+\] "command failed" err=')


def run_kubectl(case_dir: Path, build: str, opts: Options) -> tuple[str, str | None]:
    tree = case_dir / "tree"
    target = tree / build.lstrip("/")
    cmd = ["kubectl", "kustomize", str(target)]
    if opts.load_restrictor == "none":
        cmd[2:2] = ["--load-restrictor", "LoadRestrictionsNone"]
    env = dict(os.environ, KUBECONFIG="/dev/null", HOME=HOME)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        return "", "timeout"
    if p.returncode == 0:
        return p.stdout, None
    lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("# Warning:")]
    err = "\n".join(lines).strip()
    m = KLOG.match(err)
    if m:
        err = err[m.end():]
        if err.startswith('"') and err.endswith('"'):
            err = err[1:-1].replace('\\"', '"')
        elif err.startswith("<") and err.endswith(">"):
            err = "\n".join(ln.removeprefix("\t") for ln in err[1:-1].strip().splitlines())
    err = err.replace(str(tree.resolve()), "<ROOT>").replace(str(tree), "<ROOT>")
    err = re.sub(r"0x[0-9a-f]{6,}", "0x...", err)
    return "", err + "\n"


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    repo = sys.argv[1]
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else (
        Path(__file__).resolve().parents[2] / "testdata" / "kustomize-cases")
    cases, skipped = extract(repo)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name, build, fs, opts in cases:
        d = out / name
        for path, content in sorted(fs.items()):
            p = d / "tree" / path.lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
        (d / "tree" / build.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (d / "build").write_text(build.lstrip("/") + "\n")
        if opts.load_restrictor:
            (d / "options").write_text(f"load-restrictor: {opts.load_restrictor}\n")

    def one(case):
        name, build, _, opts = case
        return name, run_kubectl(out / name, build, opts)

    ok = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for name, (yaml, err) in pool.map(one, cases):
            if err is not None and str(out.resolve()) in err:
                # `..` above `/`: the in-memory file system of the test stays at `/`, a
                # tree on disk does not.
                shutil.rmtree(out / name)
                skipped.append(f"{name}: reads above `/` (`..` of the in-memory root is the root)")
                continue
            if err is None:
                (out / name / "expected.yaml").write_text(yaml)
                ok += 1
            else:
                (out / name / "expected-error.txt").write_text(err)
                failed += 1
    (out / "SKIPPED").write_text("".join(f"{s}\n" for s in sorted(skipped)))
    print(f"{ok + failed} cases ({ok} built, {failed} kubectl errors), {len(skipped)} tests skipped")


if __name__ == "__main__":
    main()
