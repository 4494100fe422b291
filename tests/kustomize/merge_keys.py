#!/usr/bin/env python3
"""Writes compiler/src/resolve/data/merge-keys.txt: the strategic-merge keys and strategies of
the Kubernetes schema kustomize embeds (kyaml/openapi/kubernetesapi/v1_21_2/swagger.pb of
kustomize v5.5.0), reduced to what a strategic merge needs.

Usage: python3 tests/kustomize/merge_keys.py /path/to/kustomize.git > compiler/src/resolve/data/merge-keys.txt

The schema is a gnostic OpenAPI v2 document in protobuf; this script reads the few fields it
needs with a minimal wire-format decoder (no protobuf library). Only the definitions from
which a list with a `merge` patch strategy can be reached are kept, and in them only the
fields on the way to one.
"""
import subprocess
import sys

TAG = "kustomize/v5.5.0"
COMMIT = "afe77936761f8f7ee735a67f167a8382c8406f74"
ASSET = "kyaml/openapi/kubernetesapi/v1_21_2/swagger.pb"


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    i, out = 0, []
    while i < len(b):
        k, i = varint(b, i)
        f, t = k >> 3, k & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 2:
            n, i = varint(b, i)
            v, i = b[i : i + n], i + n
        elif t == 1:
            v, i = b[i : i + 8], i + 8
        elif t == 5:
            v, i = b[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {t}")
        out.append((f, v))
    return out


def first(fs, n):
    return next((v for f, v in fs if f == n), None)


# gnostic openapi_v2 Schema field numbers.
REF, ADDITIONAL, TYPE, ITEMS, PROPERTIES, EXTENSIONS = 1, 21, 22, 23, 25, 31


def schema(b):
    """A schema as a dict: ref, type, items, additional, props, ext."""
    fs = fields(b)
    s = {"ref": None, "type": [], "items": None, "additional": None, "props": [], "ext": {}}
    for f, v in fs:
        if f == REF:
            s["ref"] = v.decode().removeprefix("#/definitions/")
        elif f == TYPE:
            s["type"] = [x.decode() for n, x in fields(v) if n == 1]
        elif f == ITEMS:
            items = [x for n, x in fields(v) if n == 1]
            if items:
                s["items"] = schema(items[0])
        elif f == ADDITIONAL:
            inner = first(fields(v), 1)
            if inner is not None:
                s["additional"] = schema(inner)
        elif f == PROPERTIES:
            for n, named in fields(v):
                nf = fields(named)
                s["props"].append((first(nf, 1).decode(), schema(first(nf, 2))))
        elif f == EXTENSIONS:
            nf = fields(v)
            anyv = fields(first(nf, 2))
            s["ext"][first(nf, 1).decode()] = first(anyv, 2).decode()
    return s


def yaml_scalar(text):
    return text.strip().strip("'\"")


def yaml_list(text):
    return [yaml_scalar(l[2:]) for l in text.splitlines() if l.startswith("- ")]


def gvks(text):
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("- "):
            cur = {}
            out.append(cur)
            line = line[2:]
        k, _, v = line.strip().partition(":")
        if cur is not None and k:
            cur[k] = yaml_scalar(v)
    return [(f"{g['group']}/{g['version']}" if g.get("group") else g["version"], g["kind"]) for g in out]


def strategy(s):
    ps = s["ext"].get("x-kubernetes-patch-strategy")
    if ps is None:
        return None
    ps = yaml_scalar(ps)
    if "x-kubernetes-list-map-keys" in s["ext"]:
        keys = yaml_list(s["ext"]["x-kubernetes-list-map-keys"])
    elif "x-kubernetes-patch-merge-key" in s["ext"]:
        keys = [yaml_scalar(s["ext"]["x-kubernetes-patch-merge-key"])]
    else:
        keys = []
    return ps, keys


def main():
    repo = sys.argv[1]
    commit = subprocess.run(["git", "-C", repo, "rev-parse", TAG + "^{commit}"], capture_output=True, text=True, check=True).stdout.strip()
    if commit != COMMIT:
        sys.exit(f"{TAG} is {commit}, expected {COMMIT}")
    blob = subprocess.run(["git", "-C", repo, "show", f"{TAG}:{ASSET}"], capture_output=True, check=True).stdout
    doc = fields(blob)
    defs = {}
    kinds = []
    for _, named in fields(first(doc, 9)):
        nf = fields(named)
        name, s = first(nf, 1).decode(), schema(first(nf, 2))
        defs[name] = s
        if "x-kubernetes-group-version-kind" in s["ext"]:
            for api, kind in gvks(s["ext"]["x-kubernetes-group-version-kind"]):
                kinds.append((api, kind, name))

    # A field as (shape, target definition or None, strategy); shape is "" for a field
    # whose value is the target, "[]" for list items, "{}" for map values.
    def shape(s):
        if s["ref"]:
            return "", s["ref"]
        if s["type"] == ["array"] and s["items"] is not None:
            it = s["items"]
            return "[]", it["ref"]
        if s["additional"] is not None:
            return "{}", s["additional"]["ref"]
        return "", None

    interesting = set()
    changed = True
    while changed:
        changed = False
        for name, s in defs.items():
            if name in interesting:
                continue
            for _, p in s["props"]:
                st = strategy(p)
                _, target = shape(p)
                if (st and "merge" in st[0].split(",")) or (target in interesting):
                    interesting.add(name)
                    changed = True
                    break

    print("# The strategic-merge keys of kustomize's built-in Kubernetes schema (v1.21.2),")
    print(f"# generated by tests/kustomize/merge_keys.py from {ASSET}")
    print(f"# of kustomize v5.5.0 (commit {COMMIT},")
    print("# https://github.com/kubernetes-sigs/kustomize, Apache-2.0). Only the definitions from")
    print("# which a list with a `merge` patch strategy can be reached, and their fields on the way.")
    print("# `K apiVersion kind definition`: the definition of a resource type.")
    print("# `D definition`, then its fields: `name shape target [strategy [keys,…]]`, where shape")
    print("# is `.` (the value is the target), `[]` (list items) or `{}` (map values), and target")
    print("# is a definition or `-`.")
    for api, kind, name in sorted(kinds):
        if name in interesting:
            print(f"K {api} {kind} {name}")
    for name in sorted(interesting):
        print(f"D {name}")
        for pname, p in sorted(defs[name]["props"]):
            st = strategy(p)
            sh, target = shape(p)
            merge = st is not None and "merge" in st[0].split(",")
            if not merge and target not in interesting:
                continue
            line = f"{pname} {sh or '.'} {target if target in interesting else '-'}"
            if merge:
                line += f" {st[0]} {','.join(st[1]) if st[1] else '-'}"
            print(line)


main()
