//! The values that cross the store's interface: parameters in, column values out, one small
//! set of types both backends map to (SQLite's storage classes; PostgreSQL's `BIGINT`,
//! `TEXT`, `DOUBLE PRECISION` and `BOOLEAN`).

use super::DbError;

/// One parameter or column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// A value usable as a statement parameter (`params![…]`).
pub trait ToParam {
    fn to_param(&self) -> Value;
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Value {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Value {
        match self {
            Some(v) => v.to_param(),
            None => Value::Null,
        }
    }
}

impl ToParam for Value {
    fn to_param(&self) -> Value {
        self.clone()
    }
}

impl ToParam for str {
    fn to_param(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToParam for String {
    fn to_param(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToParam for bool {
    fn to_param(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToParam for f64 {
    fn to_param(&self) -> Value {
        Value::Real(*self)
    }
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_param!(i32, u32, u8, i16, u16);

impl ToParam for i64 {
    fn to_param(&self) -> Value {
        Value::Int(*self)
    }
}

macro_rules! wide_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Value {
                // Counters, sequence numbers and times: far below i64::MAX; saturate rather
                // than wrap if one ever is not.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
wide_param!(u64, usize);

/// A column value read into a Rust type.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Result<Self, DbError>;
}

fn mismatch(want: &str, v: &Value) -> DbError {
    DbError::Type(format!("expected {want}, found {v:?}"))
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self, DbError> {
        Ok(v)
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Text(s) => Ok(s),
            v => Err(mismatch("text", &v)),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Int(i) => Ok(i != 0),
            v => Err(mismatch("an integer", &v)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            v => Err(mismatch("a number", &v)),
        }
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self, DbError> {
                match v {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| {
                        DbError::Type(format!("{i} is out of range for {}", stringify!($t)))
                    }),
                    v => Err(mismatch("an integer", &v)),
                }
            }
        }
    )*};
}
int_value!(i32, u32, u64, usize, u8, i16, u16);

impl FromValue for i64 {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Int(i) => Ok(i),
            v => Err(mismatch("an integer", &v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_convert_with_range_checks() {
        assert_eq!(u32::from_value(Value::Int(7)).unwrap(), 7);
        assert!(u32::from_value(Value::Int(-1)).is_err());
        assert!(bool::from_value(Value::Int(2)).unwrap());
        assert_eq!(Option::<i64>::from_value(Value::Null).unwrap(), None);
        assert!(String::from_value(Value::Int(1)).is_err());
        assert_eq!(u64::MAX.to_param(), Value::Int(i64::MAX));
    }
}
