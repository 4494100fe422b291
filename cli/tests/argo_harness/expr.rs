//! The expr-lang subset the Argo emitter writes in `{{=…}}`: string literals, `tasks['T']
//! .outputs.parameters['P']`, `!`, `&&`, `||`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `in [...]`,
//! `matches 'regex'` (the number pattern only), `asFloat(…)`, `c ? a : b` and parentheses.
//! Anything else panics: the harness must not guess.

#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Str(String),
    Num(f64),
    Bool(bool),
    List(Vec<V>),
}

impl V {
    fn truthy(&self) -> bool {
        match self {
            V::Bool(b) => *b,
            v => panic!("not a boolean: {v:?}"),
        }
    }
    pub fn text(&self) -> String {
        match self {
            V::Str(s) => s.clone(),
            V::Num(n) => n.to_string(),
            V::Bool(b) => b.to_string(),
            V::List(_) => panic!("a list as text"),
        }
    }
}

/// The pattern `cond` uses to check that a value is a number.
const NUMBER: &str = "^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$";

fn is_number(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mant.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mant, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    digits(int)
        && frac.is_none_or(digits)
        && exp.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Id(String),
    Op(&'static str),
}

fn lex(s: &str) -> Vec<Tok> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    const OPS: [&str; 18] = [
        "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", ",", ".", "?", ":",
        "-",
    ];
    'outer: while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch == '\'' {
            let mut t = String::new();
            i += 1;
            while c[i] != '\'' {
                if c[i] == '\\' {
                    i += 1;
                    match c[i] {
                        'n' => t.push('\n'),
                        'r' => t.push('\r'),
                        't' => t.push('\t'),
                        'u' => {
                            let hex: String = c[i + 1..i + 5].iter().collect();
                            t.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                            i += 4;
                        }
                        x => t.push(x),
                    }
                } else {
                    t.push(c[i]);
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(t));
            continue;
        }
        if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            let t: String = c[start..i].iter().collect();
            out.push(Tok::Num(t.parse().unwrap()));
            continue;
        }
        if ch.is_ascii_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Id(c[start..i].iter().collect()));
            continue;
        }
        for op in OPS {
            let n = op.len();
            if i + n <= c.len() && c[i..i + n].iter().collect::<String>() == op {
                out.push(Tok::Op(op));
                i += n;
                continue 'outer;
            }
        }
        panic!("expr: unexpected {ch:?} in {s}");
    }
    out
}

struct P<'a> {
    t: Vec<Tok>,
    i: usize,
    /// `tasks[T].outputs.parameters[P]`.
    lookup: &'a dyn Fn(&str, &str) -> String,
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, op: &str) {
        assert!(self.eat(op), "expr: expected {op} at {:?}", self.peek());
    }
    fn ternary(&mut self) -> V {
        let c = self.or();
        if self.eat("?") {
            let a = self.ternary();
            self.expect(":");
            let b = self.ternary();
            return if c.truthy() { a } else { b };
        }
        c
    }
    fn or(&mut self) -> V {
        let mut l = self.and();
        while self.eat("||") {
            let r = self.and();
            l = V::Bool(l.truthy() || r.truthy());
        }
        l
    }
    fn and(&mut self) -> V {
        let mut l = self.cmp();
        while self.eat("&&") {
            let r = self.cmp();
            l = V::Bool(l.truthy() && r.truthy());
        }
        l
    }
    fn cmp(&mut self) -> V {
        let l = self.unary();
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat(op) {
                let r = self.unary();
                return V::Bool(match op {
                    "==" => l == r,
                    "!=" => l != r,
                    _ => {
                        let (V::Num(a), V::Num(b)) = (&l, &r) else {
                            panic!("expr: {op} on {l:?} and {r:?}")
                        };
                        match op {
                            "<" => a < b,
                            "<=" => a <= b,
                            ">" => a > b,
                            _ => a >= b,
                        }
                    }
                });
            }
        }
        match self.peek() {
            Some(Tok::Id(k)) if k == "in" => {
                self.i += 1;
                let V::List(items) = self.unary() else {
                    panic!("expr: `in` needs a list")
                };
                V::Bool(items.contains(&l))
            }
            Some(Tok::Id(k)) if k == "matches" => {
                self.i += 1;
                let V::Str(re) = self.unary() else {
                    panic!("expr: `matches` needs a string")
                };
                assert_eq!(re, NUMBER, "expr: only the number pattern is known");
                V::Bool(is_number(&l.text()))
            }
            _ => l,
        }
    }
    fn unary(&mut self) -> V {
        if self.eat("!") {
            return V::Bool(!self.unary().truthy());
        }
        if self.eat("-") {
            let V::Num(n) = self.unary() else {
                panic!("expr: - on a non-number")
            };
            return V::Num(-n);
        }
        self.primary()
    }
    fn primary(&mut self) -> V {
        let t = self.t.get(self.i).cloned();
        self.i += 1;
        match t {
            Some(Tok::Str(s)) => V::Str(s),
            Some(Tok::Num(n)) => V::Num(n),
            Some(Tok::Op("(")) => {
                let v = self.ternary();
                self.expect(")");
                v
            }
            Some(Tok::Op("[")) => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.ternary());
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",");
                    }
                }
                V::List(items)
            }
            Some(Tok::Id(id)) if id == "true" => V::Bool(true),
            Some(Tok::Id(id)) if id == "false" => V::Bool(false),
            Some(Tok::Id(id)) if id == "asFloat" => {
                self.expect("(");
                let v = self.ternary();
                self.expect(")");
                V::Num(v.text().parse().expect("asFloat of a non-number"))
            }
            Some(Tok::Id(id)) if id == "tasks" => {
                let mut path = Vec::new();
                loop {
                    if self.eat("[") {
                        let V::Str(s) = self.ternary() else {
                            panic!("expr: index")
                        };
                        self.expect("]");
                        path.push(s);
                    } else if self.eat(".") {
                        let Some(Tok::Id(s)) = self.t.get(self.i).cloned() else {
                            panic!("expr: member")
                        };
                        self.i += 1;
                        path.push(s);
                    } else {
                        break;
                    }
                }
                let [task, outputs, parameters, param] = path.as_slice() else {
                    panic!("expr: tasks path {path:?}")
                };
                assert_eq!(
                    (outputs.as_str(), parameters.as_str()),
                    ("outputs", "parameters")
                );
                V::Str((self.lookup)(task, param))
            }
            t => panic!("expr: unexpected {t:?}"),
        }
    }
}

/// Evaluates `src` (the text inside `{{=…}}`).
pub fn eval(src: &str, lookup: &dyn Fn(&str, &str) -> String) -> V {
    let mut p = P {
        t: lex(src),
        i: 0,
        lookup,
    };
    let v = p.ternary();
    assert_eq!(p.i, p.t.len(), "expr: trailing input in {src}");
    v
}

#[test]
fn the_subset() {
    let l = |t: &str, p: &str| match (t, p) {
        ("a", "n") => "12".to_string(),
        ("a", "s") => "HIGH".to_string(),
        _ => String::new(),
    };
    let ok = |s: &str| eval(s, &l).truthy();
    assert!(ok(
        "tasks['a'].outputs.parameters['n'] matches '^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$' && asFloat(tasks['a'].outputs.parameters['n']) > 10"
    ));
    assert!(!ok(
        "tasks['b'].outputs.parameters['n'] matches '^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$'"
    ));
    assert!(ok(
        "tasks['a'].outputs.parameters['s'] in ['LOW', 'HIGH'] || false"
    ));
    assert!(ok("!(tasks['a'].outputs.parameters['s'] != 'HIGH')"));
    assert_eq!(eval("false ? 'x' : ('y')", &l), V::Str("y".into()));
    assert!(!is_number("1e") && is_number("-1.5E+3") && !is_number(""));
}
