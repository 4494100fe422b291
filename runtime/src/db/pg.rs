//! The PostgreSQL backend: the synchronous `postgres` client, statements prepared once per
//! connection, parameters bound by the types the server inferred for them and columns read
//! by their declared types into [`Value`]s.

use super::{DbError, Value};
use postgres::types::{ToSql, Type};
use postgres::{Client, Statement};
use std::collections::HashMap;

/// One connection and its prepared statements.
pub struct PgConn {
    pub(super) client: Client,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn").finish_non_exhaustive()
    }
}

/// The password's environment variable: a `postgres://` URL in configuration names no
/// secret.
pub const PASSWORD_ENV: &str = "PBC_STATE_PASSWORD";

impl PgConn {
    /// Connects to `url` (`postgres://user@host:port/db`), the password from
    /// [`PASSWORD_ENV`] when set. Plain TCP or a Unix socket; a URL that requires TLS
    /// (`sslmode=require`) is refused by the connection rather than sent in the clear.
    pub fn connect(url: &str) -> Result<PgConn, DbError> {
        let mut cfg: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| DbError::Connect(format!("the state URL: {e}")))?;
        if let Ok(pw) = std::env::var(PASSWORD_ENV)
            && !pw.is_empty()
        {
            cfg.password(pw);
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(std::time::Duration::from_secs(10));
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("pbc");
        }
        let client = cfg
            .connect(postgres::NoTls)
            .map_err(|e| DbError::Connect(e.to_string()))?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let translated = super::sql::to_postgres(sql);
        let st = self.client.prepare(&translated).map_err(DbError::Pg)?;
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        let st = self.statement(sql)?;
        let bound = bind(st.params(), params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| &**b).collect();
        let n = self.client.execute(&st, &refs).map_err(DbError::Pg)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DbError> {
        let st = self.statement(sql)?;
        let bound = bind(st.params(), params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| &**b).collect();
        let rows = self.client.query(&st, &refs).map_err(DbError::Pg)?;
        rows.iter().map(read_row).collect()
    }

    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.client.batch_execute(sql).map_err(DbError::Pg)
    }
}

/// Each parameter as the type the server expects (SQLite would store it by the column's
/// affinity; here the statement says).
fn bind(types: &[Type], params: &[Value]) -> Result<Vec<Box<dyn ToSql + Sync>>, DbError> {
    if types.len() != params.len() {
        return Err(DbError::Type(format!(
            "the statement takes {} parameters, {} were given",
            types.len(),
            params.len()
        )));
    }
    types.iter().zip(params).map(|(t, v)| one(t, v)).collect()
}

fn one(t: &Type, v: &Value) -> Result<Box<dyn ToSql + Sync>, DbError> {
    let bad = || DbError::Type(format!("cannot bind {v:?} as {t}"));
    // As SQLite's INTEGER affinity stores a text that is a whole number as that number.
    let whole = match v {
        Value::Text(s) => s.parse::<i64>().ok().map(Value::Int),
        _ => None,
    };
    let number = whole.as_ref().unwrap_or(v);
    Ok(match *t {
        Type::INT8 => Box::new(match number {
            Value::Null => None,
            Value::Int(i) => Some(*i),
            _ => return Err(bad()),
        }),
        Type::INT4 => Box::new(match number {
            Value::Null => None,
            Value::Int(i) => Some(i32::try_from(*i).map_err(|_| bad())?),
            _ => return Err(bad()),
        }),
        Type::INT2 => Box::new(match number {
            Value::Null => None,
            Value::Int(i) => Some(i16::try_from(*i).map_err(|_| bad())?),
            _ => return Err(bad()),
        }),
        Type::BOOL => Box::new(match number {
            Value::Null => None,
            Value::Int(i) => Some(*i != 0),
            _ => return Err(bad()),
        }),
        Type::FLOAT8 => Box::new(match number {
            Value::Null => None,
            Value::Int(i) => Some(*i as f64),
            Value::Real(f) => Some(*f),
            _ => return Err(bad()),
        }),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Box::new(match v {
                Value::Null => None,
                Value::Int(i) => Some(i.to_string()),
                Value::Real(f) => Some(f.to_string()),
                Value::Text(s) => Some(s.clone()),
            })
        }
        _ => return Err(bad()),
    })
}

fn read_row(r: &postgres::Row) -> Result<Vec<Value>, DbError> {
    let mut out = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let v = match *c.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|i| Value::Int(i.into()))),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|i| Value::Int(i.into()))),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|b| Value::Int(b.into()))),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)
                .map(|v| v.map(|f| Value::Real(f.into()))),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => r
                .try_get::<_, Option<String>>(i)
                .map(|v| v.map(Value::Text)),
            ref t => {
                return Err(DbError::Type(format!(
                    "column {} has type {t}, which the store does not read (cast it to BIGINT or TEXT)",
                    c.name()
                )));
            }
        };
        out.push(v.map_err(DbError::Pg)?.unwrap_or(Value::Null));
    }
    Ok(out)
}
