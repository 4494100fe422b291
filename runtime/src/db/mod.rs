//! The state store's connection, one interface over two backends: SQLite (the embedded
//! default, `STATE/state.db`) and PostgreSQL (a cluster's shared store).
//!
//! The engine writes each statement once, in the SQL both share (`?1` placeholders,
//! `INSERT … ON CONFLICT`, quoted reserved words); [`sql::to_postgres`] rewrites the
//! placeholders for PostgreSQL. The calls mirror `rusqlite`'s (`execute`, `query_row`,
//! `prepare(…).query_map`, [`OptionalExtension::optional`], [`params!`]) so a query reads the
//! same whichever store runs it.
//!
//! Transactions: a write transaction is exclusive across every process using the store
//! (SQLite's `BEGIN IMMEDIATE`; on PostgreSQL a transaction-scoped advisory lock taken first),
//! so a check and the write that depends on it (a rate limit, a compare-and-set decision, the
//! next audit entry's sequence number) never interleave with another writer's.

pub mod migrate;
pub mod pg;
pub mod sql;
mod value;

pub use value::{FromValue, ToParam, Value};

use std::cell::{Cell, RefCell};

/// `params![a, b]`: statement parameters, as with `rusqlite::params!`.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::db::ToParam]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::db::ToParam),+] as &[&dyn $crate::db::ToParam]
    };
}
pub(crate) use params;

/// The advisory lock every PostgreSQL write transaction holds (an arbitrary constant: "pbc"
/// in ASCII).
const WRITE_LOCK: i64 = 0x0070_6263;

/// What went wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Pg(postgres::Error),
    #[error("cannot connect to the state store: {0}")]
    Connect(String),
    #[error("query returned no rows")]
    NoRows,
    #[error("{0}")]
    Type(String),
}

/// The server's message (code and detail) rather than the client's bare "db error".
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("PostgreSQL {}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

/// `query_row(…).optional()`: no row is `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> OptionalExtension<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Which SQL a statement outside the shared subset is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One row's values.
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// Column `i` as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self
            .values
            .get(i)
            .cloned()
            .ok_or_else(|| DbError::Type(format!("no column {i}")))?;
        T::from_value(v)
    }
}

#[derive(Debug)]
enum Backend {
    Sqlite(rusqlite::Connection),
    // Boxed: the client and its statements are far larger than a SQLite handle.
    Pg(Box<RefCell<pg::PgConn>>),
}

/// A connection to the state store.
#[derive(Debug)]
pub struct Conn {
    backend: Backend,
    in_tx: Cell<bool>,
}

/// A statement to run (`conn.prepare(sql)?.query_map(params, f)`).
pub struct Stmt<'c> {
    conn: &'c Conn,
    sql: String,
}

impl Stmt<'_> {
    /// Every row through `f`.
    pub fn query_map<T>(
        &mut self,
        p: &[&dyn ToParam],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<std::vec::IntoIter<Result<T, DbError>>, DbError> {
        let rows = self.conn.rows(&self.sql, p)?;
        Ok(rows
            .into_iter()
            .map(|values| f(&Row { values }))
            .collect::<Vec<_>>()
            .into_iter())
    }
}

fn values(p: &[&dyn ToParam]) -> Vec<Value> {
    p.iter().map(|v| v.to_param()).collect()
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Result<Value, DbError> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => return Err(DbError::Type("a blob column".into())),
    })
}

fn sqlite_param(v: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Int(i) => V::Integer(i),
        Value::Real(f) => V::Real(f),
        Value::Text(s) => V::Text(s),
    }
}

impl Conn {
    /// An open SQLite connection.
    pub fn sqlite(c: rusqlite::Connection) -> Conn {
        Conn {
            backend: Backend::Sqlite(c),
            in_tx: Cell::new(false),
        }
    }

    /// A connection to PostgreSQL at `url` ([`pg::PgConn::connect`]).
    pub fn postgres(url: &str) -> Result<Conn, DbError> {
        Ok(Conn {
            backend: Backend::Pg(Box::new(RefCell::new(pg::PgConn::connect(url)?))),
            in_tx: Cell::new(false),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Pg(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, p: &[&dyn ToParam]) -> Result<usize, DbError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.execute(rusqlite::params_from_iter(
                    values(p).into_iter().map(sqlite_param),
                ))?;
                Ok(n)
            }
            Backend::Pg(c) => c.borrow_mut().execute(sql, &values(p)),
        }
    }

    /// Every row's values.
    fn rows(&self, sql: &str, p: &[&dyn ToParam]) -> Result<Vec<Vec<Value>>, DbError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(
                    values(p).into_iter().map(sqlite_param),
                ))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        vals.push(sqlite_value(r.get_ref(i)?)?);
                    }
                    out.push(vals);
                }
                Ok(out)
            }
            Backend::Pg(c) => c.borrow_mut().query(sql, &values(p)),
        }
    }

    /// The first row through `f`; [`DbError::NoRows`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        p: &[&dyn ToParam],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let values = self
            .rows(sql, p)?
            .into_iter()
            .next()
            .ok_or(DbError::NoRows)?;
        f(&Row { values })
    }

    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>, DbError> {
        Ok(Stmt {
            conn: self,
            sql: sql.to_string(),
        })
    }

    /// Runs statements with no parameters and no rows (schema changes).
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Pg(c) => c.borrow_mut().batch(sql),
        }
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        !self.in_tx.get()
    }

    /// Begins a transaction: exclusive across writers (`write`), or a consistent read-only
    /// snapshot. Ends with [`Conn::commit`], or rolls back when the guard drops.
    pub fn begin(&self, write: bool) -> Result<TxGuard<'_>, DbError> {
        let sql = match (&self.backend, write) {
            (Backend::Sqlite(_), true) => "BEGIN IMMEDIATE".to_string(),
            (Backend::Sqlite(_), false) => "BEGIN DEFERRED".to_string(),
            (Backend::Pg(_), true) => {
                format!(
                    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                )
            }
            (Backend::Pg(_), false) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".into(),
        };
        if self.in_tx.get() {
            return Err(DbError::Type("a transaction is already open".into()));
        }
        self.execute_batch(&sql)?;
        self.in_tx.set(true);
        Ok(TxGuard {
            conn: self,
            done: false,
        })
    }
}

/// An open transaction; rolled back unless committed.
pub struct TxGuard<'c> {
    conn: &'c Conn,
    done: bool,
}

impl TxGuard<'_> {
    pub fn conn(&self) -> &Conn {
        self.conn
    }

    pub fn commit(mut self) -> Result<(), DbError> {
        self.done = true;
        let r = self.conn.execute_batch("COMMIT");
        if r.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.conn.in_tx.set(false);
        r
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.conn.in_tx.set(false);
        }
    }
}

impl std::ops::Deref for TxGuard<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}
