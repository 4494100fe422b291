"""A tiny interpreter for the subset of Go that kustomize's krusty tests are written in.

It tokenizes a Go source file, keeps its package-level functions, constants and variables,
and runs a test function's body on a fake harness (see extract.py) that records the files
the test writes and the builds it runs. Anything outside the subset raises `Skip` with the
reason, so that a test is either understood completely or listed as skipped.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field


class Skip(Exception):
    """The test cannot be extracted; the message says why."""


# ---------------------------------------------------------------------------------------
# Tokens.

@dataclass
class Tok:
    kind: str  # ident, str, num, op, ';', eof
    text: str
    value: object = None
    line: int = 0


_OPS = sorted(
    """<<= >>= &^= ... := == != <= >= && || ++ -- += -= *= /= %= &= |= ^= << >> &^ <-
    + - * / % & | ^ < > = ! ( ) [ ] { } , ; . :""".split(),
    key=len,
    reverse=True,
)

_ESC = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0",
        "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unquote(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n in _ESC:
            out.append(_ESC[n])
            i += 2
        elif n == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif n == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        else:
            raise Skip(f"string escape \\{n}")
    return "".join(out)


def tokenize(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i, line = 0, 1
    n = len(src)

    def semi_needed() -> bool:
        if not toks:
            return False
        t = toks[-1]
        return t.kind in ("ident", "str", "num") or t.text in (")", "]", "}", "++", "--")

    while i < n:
        c = src[i]
        if c == "\n":
            if semi_needed() and toks[-1].kind != ";":
                toks.append(Tok(";", ";", line=line))
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            line += src.count("\n", i, j)
            i = j + 2
        elif c == "`":
            j = src.find("`", i + 1)
            s = src[i + 1:j].replace("\r", "")
            toks.append(Tok("str", src[i:j + 1], s, line))
            line += src.count("\n", i, j)
            i = j + 1
        elif c == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            toks.append(Tok("str", src[i:j + 1], _unquote(src[i + 1:j]), line))
            i = j + 1
        elif c == "'":
            j = i + 1
            while src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            toks.append(Tok("num", src[i:j + 1], ord(_unquote(src[i + 1:j])), line))
            i = j + 1
        elif c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_0-9]+").match(src, i)
            toks.append(Tok("ident", m.group(), line=line))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"0[xX][0-9a-fA-F_]+|[0-9_]+(\.[0-9]+)?").match(src, i)
            text = m.group()
            digits = text.replace("_", "")
            if "." in text:
                val = float(text)
            elif len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
                val = int(digits, 8)
            else:
                val = int(digits, 0)
            toks.append(Tok("num", text, val, line))
            i = m.end()
        else:
            for op in _OPS:
                if src.startswith(op, i):
                    toks.append(Tok("op" if op != ";" else ";", op, line=line))
                    i += len(op)
                    break
            else:
                raise Skip(f"unexpected character {c!r} on line {line}")
    toks.append(Tok(";", ";", line=line))
    toks.append(Tok("eof", "", line=line))
    return toks


# ---------------------------------------------------------------------------------------
# Values.

@dataclass
class Opaque:
    """A value the subset cannot compute (the result of an unknown call); using it where
    a concrete value is needed skips the test."""
    why: str


@dataclass
class Func:
    name: str
    params: list[str]
    body: tuple[int, int]  # token range of the body, braces excluded
    toks: list[Tok]
    closure: dict | None = None


@dataclass
class Struct:
    fields: dict = field(default_factory=dict)


class Return(Exception):
    def __init__(self, value):
        self.value = value


def concrete(v, what: str):
    if isinstance(v, Opaque):
        raise Skip(f"{what} is computed by Go code ({v.why})")
    return v


# ---------------------------------------------------------------------------------------
# Package-level declarations.

def skip_balanced(toks: list[Tok], i: int) -> int:
    """From an opening bracket at `i`, the index after its closing one."""
    depth = 0
    while True:
        t = toks[i].text if toks[i].kind == "op" else None
        if t in ("(", "[", "{"):
            depth += 1
        elif t in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


class Package:
    def __init__(self):
        self.funcs: dict[str, Func] = {}
        self.decls: list[tuple[str, list[Tok], int]] = []  # (name, toks, expr start)
        self.globals: dict = {}
        self.toks_of: dict[str, list[Tok]] = {}

    def add_file(self, src: str) -> list[str]:
        """Adds a file's declarations; returns the names of its Test functions in order."""
        toks = tokenize(src)
        tests = []
        i = 0
        while toks[i].kind != "eof":
            t = toks[i]
            if t.kind == ";":
                i += 1
            elif t.text in ("package", "import"):
                i += 1
                if toks[i].text == "(":
                    i = skip_balanced(toks, i)
                else:
                    while toks[i].kind != ";":
                        i += 1
            elif t.text == "type":
                i += 1
                while toks[i].kind != ";":
                    if toks[i].text in ("(", "[", "{"):
                        i = skip_balanced(toks, i)
                    else:
                        i += 1
            elif t.text in ("const", "var"):
                i += 1
                if toks[i].text == "(":
                    i += 1
                    while toks[i].text != ")":
                        if toks[i].kind == ";":
                            i += 1
                            continue
                        i = self._decl(toks, i)
                    i += 1
                else:
                    i = self._decl(toks, i)
            elif t.text == "func":
                i += 1
                method = toks[i].text == "("
                if method:
                    i = skip_balanced(toks, i)
                name = toks[i].text
                i += 1
                j = skip_balanced(toks, i)
                params = param_names(toks, i, j)
                i = j
                while toks[i].text != "{":
                    i = skip_balanced(toks, i) if toks[i].text in ("(", "[") else i + 1
                end = skip_balanced(toks, i)
                if not method:
                    self.funcs[name] = Func(name, params, (i + 1, end - 1), toks)
                    if name.startswith("Test") and params == ["t"]:
                        tests.append(name)
                i = end
            else:
                raise Skip(f"unexpected top-level token {t.text!r} on line {t.line}")
        return tests

    def _decl(self, toks: list[Tok], i: int) -> int:
        names = [toks[i].text]
        i += 1
        while toks[i].text == ",":
            names.append(toks[i + 1].text)
            i += 2
        start = i
        while toks[i].kind != ";" and toks[i].text != ")":
            if toks[i].text in ("(", "[", "{"):
                i = skip_balanced(toks, i)
            else:
                i += 1
        if len(names) == 1:
            # `const x = ...` or `var x T = ...`: the expression after `=`.
            k = start
            while k < i and toks[k].text != "=":
                k = skip_balanced(toks, k) if toks[k].text in ("(", "[", "{") else k + 1
            if k < i:
                self.decls.append((names[0], toks, k + 1))
        return i

    def global_value(self, name: str, interp: "Interp"):
        if name in self.globals:
            return self.globals[name]
        for n, toks, start in self.decls:
            if n == name:
                p = Parser(toks, start)
                try:
                    v = interp.eval(p.expr(), {})
                except Skip as e:
                    v = Opaque(f"`{name}`: {e}")
                self.globals[name] = v
                return v
        return None


def param_names(toks: list[Tok], i: int, j: int) -> list[str]:
    """The parameter names of a `(…)` parameter list at toks[i:j]."""
    names = []
    depth = 0
    expect_name = True
    for t in toks[i + 1:j - 1]:
        if t.text in ("(", "[", "{"):
            depth += 1
        elif t.text in (")", "]", "}"):
            depth -= 1
        elif depth == 0 and t.text == ",":
            expect_name = True
        elif depth == 0 and expect_name and t.kind == "ident":
            names.append(t.text)
            expect_name = False
    return names


# ---------------------------------------------------------------------------------------
# Parsing to a small AST (tuples).

_PREC = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
         "+": 4, "-": 4, "|": 4, "^": 4, "*": 5, "/": 5, "%": 5, "<<": 5, ">>": 5,
         "&": 5, "&^": 5}


class Parser:
    def __init__(self, toks: list[Tok], i: int, end: int | None = None):
        self.t = toks
        self.i = i
        self.end = end if end is not None else len(toks)
        self.no_composite = False

    def peek(self, k: int = 0) -> Tok:
        return self.t[self.i + k]

    def next(self) -> Tok:
        t = self.t[self.i]
        self.i += 1
        return t

    def expect(self, text: str):
        t = self.next()
        if t.text != text:
            raise Skip(f"parse: expected {text!r}, found {t.text!r} on line {t.line}")

    # Types ------------------------------------------------------------------------
    def type_(self):
        t = self.peek()
        if t.text == "*":
            self.next()
            return ("ptr", self.type_())
        if t.text == "[":
            self.next()
            if self.peek().text != "]":
                self.expr()
            self.expect("]")
            return ("slice", self.type_())
        if t.text == "map":
            self.next()
            self.expect("[")
            self.type_()
            self.expect("]")
            return ("map", self.type_())
        if t.text in ("struct", "interface"):
            self.next()
            self.i = skip_balanced(self.t, self.i)
            return (t.text,)
        if t.text == "func":
            self.next()
            self.i = skip_balanced(self.t, self.i)
            if self.peek().text == "(":
                self.i = skip_balanced(self.t, self.i)
            elif self.peek().kind == "ident" or self.peek().text in ("*", "["):
                self.type_()
            return ("functype",)
        if t.kind == "ident":
            self.next()
            name = t.text
            if self.peek().text == "." and self.peek(1).kind == "ident":
                self.next()
                name += "." + self.next().text
            return ("named", name)
        raise Skip(f"parse: a type expected, found {t.text!r} on line {t.line}")

    # Expressions --------------------------------------------------------------------
    def expr(self, prec: int = 1):
        left = self.unary()
        while True:
            t = self.peek()
            p = _PREC.get(t.text) if t.kind == "op" else None
            if p is None or p < prec:
                return left
            self.next()
            right = self.expr(p + 1)
            left = ("bin", t.text, left, right)

    def unary(self):
        t = self.peek()
        if t.kind == "op" and t.text in ("!", "-", "&", "*", "^"):
            self.next()
            return ("un", t.text, self.unary())
        return self.primary()

    def composite_body(self, typ):
        self.expect("{")
        elems = []
        while self.peek().text != "}":
            if self.peek().kind == ";":
                self.next()
                continue
            if self.peek().text == "{":
                v = self.composite_body(None)
            else:
                v = self.expr()
            if self.peek().text == ":":
                self.next()
                val = self.composite_body(None) if self.peek().text == "{" else self.expr()
                elems.append((v, val))
            else:
                elems.append((None, v))
            if self.peek().text == ",":
                self.next()
        self.expect("}")
        return ("composite", typ, elems)

    def primary(self):
        t = self.peek()
        if t.kind == "str":
            self.next()
            x = ("lit", t.value)
        elif t.kind == "num":
            self.next()
            x = ("lit", t.value)
        elif t.text == "(":
            self.next()
            saved = self.no_composite
            self.no_composite = False
            x = self.expr()
            self.no_composite = saved
            self.expect(")")
        elif t.text == "func":
            self.next()
            j = skip_balanced(self.t, self.i)
            params = param_names(self.t, self.i, j)
            self.i = j
            while self.peek().text != "{":
                self.i = skip_balanced(self.t, self.i) if self.peek().text in ("(", "[") else self.i + 1
            end = skip_balanced(self.t, self.i)
            x = ("funclit", params, (self.i + 1, end - 1))
            self.i = end
        elif t.text in ("[", "map", "struct"):
            typ = self.type_()
            if self.peek().text == "{":
                x = self.composite_body(typ)
            elif self.peek().text == "(":
                self.next()
                arg = self.expr()
                self.expect(")")
                x = ("conv", typ, arg)
            else:
                raise Skip(f"parse: type {typ} used as a value on line {t.line}")
        elif t.kind == "ident":
            self.next()
            x = ("name", t.text)
        else:
            raise Skip(f"parse: unexpected {t.text!r} on line {t.line}")
        while True:
            t = self.peek()
            if t.text == ".":
                self.next()
                if self.peek().text == "(":  # type assertion
                    self.i = skip_balanced(self.t, self.i)
                    x = ("opaque", "type assertion")
                    continue
                x = ("sel", x, self.next().text)
            elif t.text == "(":
                self.next()
                args = []
                saved = self.no_composite
                self.no_composite = False
                while self.peek().text != ")":
                    if self.peek().kind == ";":
                        self.next()
                        continue
                    args.append(self.expr())
                    if self.peek().text == "...":
                        self.next()
                        args[-1] = ("spread", args[-1])
                    if self.peek().text == ",":
                        self.next()
                self.no_composite = saved
                self.expect(")")
                x = ("call", x, args)
            elif t.text == "[":
                self.next()
                if self.peek().text == ":":
                    raise Skip(f"slice expression on line {t.line}")
                idx = self.expr()
                if self.peek().text == ":":
                    raise Skip(f"slice expression on line {t.line}")
                self.expect("]")
                x = ("index", x, idx)
            elif t.text == "{" and not self.no_composite and x[0] in ("name", "sel"):
                x = self.composite_body(("named", x))
            else:
                return x

    # Statements ----------------------------------------------------------------------
    def block(self, end: int):
        stmts = []
        while self.i < end:
            if self.peek().kind == ";":
                self.next()
                continue
            stmts.append(self.stmt())
        return stmts

    def braced(self):
        """A `{ … }` block."""
        if self.peek().text != "{":
            raise Skip(f"parse: block expected on line {self.peek().line}")
        end = skip_balanced(self.t, self.i)
        self.next()
        body = self.block(end - 1)
        self.i = end
        return body

    def simple(self):
        """A simple statement: expression, assignment, define, inc/dec."""
        lhs = [self.expr()]
        while self.peek().text == ",":
            self.next()
            lhs.append(self.expr())
        t = self.peek()
        if t.text in (":=", "=", "+=", "-="):
            self.next()
            if self.peek().text == "range":
                self.next()
                return ("range", lhs, t.text, self.expr())
            rhs = [self.expr()]
            while self.peek().text == ",":
                self.next()
                rhs.append(self.expr())
            return ("assign", t.text, lhs, rhs)
        if t.text in ("++", "--"):
            self.next()
            return ("incdec", lhs[0], t.text)
        if len(lhs) != 1:
            raise Skip(f"parse: expression list on line {t.line}")
        return ("expr", lhs[0])

    def stmt(self):
        t = self.peek()
        line = t.line
        if t.text == "if":
            self.next()
            self.no_composite = True
            init = None
            s = self.simple()
            if self.peek().kind == ";":
                self.next()
                init = s
                s = self.simple()
            self.no_composite = False
            if s[0] != "expr":
                raise Skip(f"parse: if condition on line {line}")
            body = self.braced()
            other = None
            if self.peek().text == "else":
                self.next()
                other = [self.stmt()] if self.peek().text == "if" else self.braced()
            return ("if", init, s[1], body, other, line)
        if t.text == "for":
            self.next()
            self.no_composite = True
            if self.peek().text == "range":
                self.next()
                s = ("range", [], ":=", self.expr())
            else:
                s = self.simple()
            self.no_composite = False
            if s[0] != "range":
                raise Skip(f"a for loop that is not a range on line {line}")
            return ("for", s[1], s[3], self.braced(), line)
        if t.text in ("switch", "select", "go", "goto", "break", "continue", "fallthrough"):
            raise Skip(f"`{t.text}` statement on line {line}")
        if t.text == "return":
            self.next()
            if self.peek().kind == ";" or self.peek().text == "}":
                return ("return", None)
            return ("return", self.expr())
        if t.text == "defer":
            self.next()
            return ("defer", self.expr())
        if t.text == "var" or t.text == "const":
            self.next()
            name = self.next().text
            if self.peek().text != "=":
                self.type_()
            if self.peek().text == "=":
                self.next()
                return ("assign", ":=", [("name", name)], [self.expr()])
            return ("assign", ":=", [("name", name)], [("lit", None)])
        if t.text == "{":
            return ("block", self.braced())
        if t.text == "type":
            while self.peek().kind != ";":
                if self.peek().text in ("(", "[", "{"):
                    self.i = skip_balanced(self.t, self.i)
                else:
                    self.next()
            return ("block", [])
        return self.simple()


# ---------------------------------------------------------------------------------------
# Evaluation.

def _join(*parts: str) -> str:
    parts = [p for p in parts if p != ""]
    if not parts:
        return ""
    return posixpath.normpath(posixpath.join(*parts))


def _sprintf(fmt: str, args: list) -> str:
    out = []
    i = 0
    k = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1]
        if verb == "%":
            out.append("%")
        elif verb in "sdvq":
            a = args[k]
            if isinstance(a, Opaque):
                return a
            k += 1
            out.append(f'"{a}"' if verb == "q" else str(a).lower() if isinstance(a, bool) else str(a))
        else:
            raise Skip(f"fmt verb %{verb}")
        i += 2
    return "".join(out)


IGNORED_CALLS = re.compile(
    r"^(t\.(Helper|Parallel|Log|Logf|Fatal|Fatalf|Error|Errorf|FailNow|Fail|Cleanup)"
    r"|assert\.\w+|require\.\w+|fmt\.Print\w*)$"
)


class Interp:
    def __init__(self, pkg: Package, harness_factory, t_name: str):
        self.pkg = pkg
        self.harness_factory = harness_factory
        self.t_name = t_name
        # Reads a file of the test package's directory (for `os.ReadFile`).
        self.read_source = None

    def run_func(self, f: Func, args: list, env_outer: dict | None = None):
        env = dict(f.closure or {})
        for n, a in zip(f.params, args):
            env[n] = a
        p = Parser(f.toks, f.body[0], f.body[1])
        stmts = p.block(f.body[1])
        try:
            self.exec_block(stmts, env, f.toks)
        except Return as r:
            return r.value
        return None

    def exec_block(self, stmts, env: dict, toks):
        for s in stmts:
            self.exec(s, env, toks)

    def exec(self, s, env: dict, toks):
        self.toks = toks
        kind = s[0]
        if kind == "expr":
            self.eval(s[1], env, stmt=True)
        elif kind == "assign":
            op, lhs, rhs = s[1], s[2], s[3]
            vals = [self.eval(r, env) for r in rhs]
            if len(vals) == 1 and len(lhs) > 1:
                v = vals[0]
                if isinstance(v, tuple):
                    vals = list(v)
                else:
                    vals = [v] + [Opaque("a second result")] * (len(lhs) - 1)
            for target, v in zip(lhs, vals):
                if op == "+=":
                    v = concrete(self.eval(target, env), "a string") + concrete(v, "a string")
                self.assign(target, v, env)
        elif kind == "incdec":
            pass
        elif kind == "if":
            _, init, cond, body, other, line = s
            inner = dict(env)
            if init:
                self.exec(init, inner, toks)
            c = self.eval(cond, inner)
            if isinstance(c, bool):
                self.exec_block(body if c else (other or []), inner, toks)
            elif self.touches_harness(body) or (other and self.touches_harness(other)):
                raise Skip(f"a build depends on a condition computed by Go code (line {line})")
        elif kind == "for":
            _, lhs, seq, body, line = s
            seq = self.eval(seq, env)
            if isinstance(seq, Opaque) and not self.touches_harness(body):
                return
            seq = concrete(seq, "a range expression")
            if isinstance(seq, dict):
                pairs = list(seq.items())
            elif isinstance(seq, (list, str)):
                pairs = list(enumerate(seq))
            else:
                raise Skip(f"range over {type(seq).__name__} (line {line})")
            for k, v in pairs:
                inner = dict(env)
                if len(lhs) >= 1 and lhs[0] != ("name", "_"):
                    inner[lhs[0][1]] = k
                if len(lhs) >= 2 and lhs[1] != ("name", "_"):
                    inner[lhs[1][1]] = v
                self.exec_block(body, inner, toks)
        elif kind == "return":
            raise Return(None if s[1] is None else self.eval(s[1], env))
        elif kind == "defer":
            pass
        elif kind == "block":
            self.exec_block(s[1], dict(env), toks)
        elif kind == "range":
            raise Skip("range outside a for")
        else:
            raise Skip(f"statement {kind}")

    def touches_harness(self, stmts) -> bool:
        text = repr(stmts)
        return any(w in text for w in ("'Run'", "'RunWithErr'", "'WriteK'", "'WriteF'", "'WriteC'"))

    def assign(self, target, v, env: dict):
        if target[0] == "name":
            if target[1] != "_":
                env[target[1]] = v
        elif target[0] == "index":
            m = concrete(self.eval(target[1], env), "a map")
            k = concrete(self.eval(target[2], env), "a map key")
            if not isinstance(m, dict):
                raise Skip("index assignment to a non-map")
            m[k] = v
        elif target[0] == "sel":
            obj = self.eval(target[1], env)
            if hasattr(obj, "set_field"):
                obj.set_field(target[2], v)
            elif isinstance(obj, Struct):
                obj.fields[target[2]] = v
            else:
                raise Skip(f"assignment to the field {target[2]}")
        else:
            raise Skip(f"assignment to {target[0]}")

    def lookup(self, name: str, env: dict):
        if name in env:
            return env[name]
        if name in ("true", "false"):
            return name == "true"
        if name == "nil":
            return None
        if name in self.pkg.funcs:
            return self.pkg.funcs[name]
        g = self.pkg.global_value(name, self)
        if g is not None:
            return g
        return ("pkg", name)

    def eval(self, x, env: dict, stmt: bool = False):
        k = x[0]
        if k == "lit":
            return x[1]
        if k == "name":
            return self.lookup(x[1], env)
        if k == "opaque":
            return Opaque(x[1])
        if k == "funclit":
            return Func("func literal", x[1], x[2], self.toks, env)
        if k == "composite":
            typ, elems = x[1], x[2]
            keyed = any(key is not None for key, _ in elems)
            if typ is not None and typ[0] == "map":
                return {concrete(self.eval_key(kk, env), "a map key"): self.eval_elem(v, env)
                        for kk, v in elems}
            if keyed and (typ is None or typ[0] in ("named", "struct")):
                st = Struct()
                for kk, v in elems:
                    if kk[0] != "name":
                        return {concrete(self.eval_key(kk, env), "a map key"): self.eval_elem(v, env)
                                for kk, v in elems}
                    st.fields[kk[1]] = self.eval_elem(v, env)
                return st
            return [self.eval_elem(v, env) for _, v in elems]
        if k == "conv":
            v = self.eval(x[2], env)
            return v if isinstance(v, (str, Opaque)) else Opaque("a conversion")
        if k == "un":
            v = self.eval(x[2], env)
            if x[1] == "!" and isinstance(v, bool):
                return not v
            if x[1] == "&":
                return v
            return Opaque(f"unary {x[1]}")
        if k == "bin":
            a = self.eval(x[2], env)
            if x[1] == "&&" and a is False:
                return False
            if x[1] == "||" and a is True:
                return True
            b = self.eval(x[3], env)
            if isinstance(a, Opaque) or isinstance(b, Opaque):
                return Opaque(f"`{x[1]}` on a computed value")
            op = x[1]
            try:
                if op == "+":
                    return a + b
                if op == "==":
                    return a == b
                if op == "!=":
                    return a != b
                if op in ("&&", "||"):
                    return (a and b) if op == "&&" else (a or b)
            except TypeError:
                pass
            return Opaque(f"operator {op}")
        if k == "sel":
            obj = self.eval(x[1], env)
            if isinstance(obj, Struct):
                return obj.fields.get(x[2], "")
            if hasattr(obj, "attr"):
                return obj.attr(x[2])
            if isinstance(obj, tuple) and obj[0] == "pkg":
                return ("pkg", f"{obj[1]}.{x[2]}")
            return Opaque(f"field {x[2]}")
        if k == "index":
            obj = self.eval(x[1], env)
            idx = self.eval(x[2], env)
            if isinstance(obj, (list, dict, str)) and not isinstance(idx, Opaque):
                try:
                    return obj[idx]
                except (KeyError, IndexError, TypeError):
                    return Opaque("an index")
            return Opaque("an index")
        if k == "spread":
            return self.eval(x[1], env)
        if k == "call":
            return self.call(x, env, stmt)
        raise Skip(f"expression {k}")

    def eval_key(self, kk, env):
        if kk[0] == "composite":
            return Opaque("a composite key")
        return self.eval(kk, env)

    def eval_elem(self, v, env):
        if v[0] == "composite" and v[1] is None:
            return self.eval(v, env)
        return self.eval(v, env)

    def call(self, x, env: dict, stmt: bool):
        fn_x, args_x = x[1], x[2]
        # Methods of the fake harness and of `t`.
        if fn_x[0] == "sel":
            recv = self.eval(fn_x[1], env)
            name = fn_x[2]
            if hasattr(recv, "method"):
                args = [self.eval(a, env) for a in args_x]
                return recv.method(name, args, self)
            if recv == ("pkg", "t") or (isinstance(recv, TestingT)):
                if name == "Run":
                    sub = concrete(self.eval(args_x[0], env), "a subtest name")
                    f = self.eval(args_x[1], env)
                    saved = self.t_name
                    self.t_name = f"{saved}/{sub}"
                    try:
                        self.run_func(f, [TestingT()])
                    finally:
                        self.t_name = saved
                    return True
                if name in ("Skip", "Skipf", "SkipNow"):
                    raise Skip("the test skips itself (t.Skip)")
                return None
            dotted = None
            if isinstance(recv, tuple) and recv[0] == "pkg":
                dotted = f"{recv[1]}.{name}"
            if dotted is not None:
                return self.builtin(dotted, args_x, env, stmt)
            return Opaque(f"method {name}")
        f = self.eval(fn_x, env)
        args = [self.eval(a, env) for a in args_x]
        if isinstance(f, Func):
            return self.run_func(f, args)
        if isinstance(f, tuple) and f[0] == "pkg":
            return self.builtin(f[1], args_x, env, stmt, args)
        raise Skip(f"call of {fn_x}")

    def builtin(self, name: str, args_x, env, stmt, args=None):
        if args is None:
            args = [self.eval(a, env) for a in args_x]
        if IGNORED_CALLS.match(name):
            return None
        if name in ("filepath.Join", "path.Join"):
            return _join(*[concrete(a, "a path") for a in args])
        if name == "fmt.Sprintf":
            return _sprintf(concrete(args[0], "a format"), args[1:])
        if name == "strings.Repeat":
            return concrete(args[0], "a string") * concrete(args[1], "a count")
        if name == "strings.Join":
            return concrete(args[1], "a separator").join(concrete(args[0], "a list"))
        if name == "strings.ReplaceAll":
            return concrete(args[0], "a string").replace(args[1], args[2])
        if name == "strings.TrimSpace":
            return concrete(args[0], "a string").strip()
        if name == "konfig.RecognizedKustomizationFileNames":
            return ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        if name == "konfig.DefaultKustomizationFileName":
            return "kustomization.yaml"
        if name == "os.ReadFile" and self.read_source is not None:
            path = concrete(args[0], "a path")
            return (self.read_source(path), None)
        if name == "openapi.ResetOpenAPI":
            return None  # each kubectl run starts with the default schema
        if name == "len":
            return len(concrete(args[0], "a value"))
        if name == "append":
            base = list(concrete(args[0], "a list") or [])
            for a_x, a in zip(args_x[1:], args[1:]):
                if a_x[0] == "spread":
                    base.extend(concrete(a, "a list"))
                else:
                    base.append(a)
            return base
        if name == "string":
            return args[0]
        if name in ("kusttest_test.MakeHarness", "kusttest_test.MakeEnhancedHarness",
                    "kusttest_test.MakeEnhancedHarnessWithTmpRoot"):
            return self.harness_factory(name)
        if name == "kusttest_test.MakeHarnessWithFs":
            fs = args[1]
            if fs != "memfs":
                raise Skip("the harness runs on a file system built by Go code")
            return self.harness_factory(name)
        if name == "filesys.MakeFsInMemory":
            return "memfs"
        if name in ("strings.Contains", "strings.HasPrefix", "errors.Is", "reflect.DeepEqual"):
            return Opaque(name)
        if name.startswith("types.") or name.startswith("krusty.") or name.startswith("konfig."):
            return ("pkg", name) if not args_x else Opaque(name)
        if stmt:
            raise Skip(f"calls `{name}`")
        return Opaque(name)


class TestingT:
    """The `t *testing.T` of a subtest."""
