//! Rust types of contract columns: each knows its Arrow type, its nullability, how to append
//! itself to an Arrow builder (borrowed, so encoding copies nothing it does not have to), and
//! how to come back from a [`Cell`] that a tolerant reader made of any file's value.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};

use super::Ty;

/// An instant in microseconds since the Unix epoch: a `TIMESTAMP(us, UTC)` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

/// One value read back from a file, whatever its physical type was (integers of any width,
/// floats, strings of any encoding, lists): what [`Value::from_cell`] takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i128),
    Float(f64),
    Str(String),
    Bool(bool),
    /// A timestamp, in microseconds since the epoch.
    Micros(i64),
    Floats(Vec<f64>),
    Ints(Vec<i128>),
}

/// Why a cell does not fit the column's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CellError(pub String);

/// The Rust type of one contract column.
pub trait Value: Sized {
    /// The column's type in the contract.
    const TY: Ty;
    /// `Option<_>` types are nullable columns; everything else is required to be present.
    const NULLABLE: bool;
    /// What a getter hands to the encoder: a borrow where the value is owned data.
    type In<'a>;
    /// The Arrow builder of the column.
    type Builder;
    fn builder(rows: usize) -> Self::Builder;
    fn append(b: &mut Self::Builder, v: Self::In<'_>);
    fn finish(b: Self::Builder) -> ArrayRef;
    /// Borrow a stored value as what the encoder takes.
    fn borrow(&self) -> Self::In<'_>;
    /// The value from a read cell; `Null` for a non-nullable type is an error.
    fn from_cell(c: Cell) -> Result<Self, CellError>;
}

fn mismatch<T>(want: &str, c: &Cell) -> Result<T, CellError> {
    Err(CellError(format!("expected {want}, found {c:?}")))
}

/// `Value` for a scalar type: its contract type, builder, what the encoder takes, how to
/// borrow it, and how it comes back from a cell.
macro_rules! scalar_value {
    ($t:ty, $ty:ident, $b:ident, $in:ty, |$s:ident| $borrow:expr, $new:expr, |$c:ident| $from:expr) => {
        impl Value for $t {
            const TY: Ty = Ty::$ty;
            const NULLABLE: bool = false;
            type In<'a> = $in;
            type Builder = $b;
            fn builder(rows: usize) -> $b {
                let new: fn(usize) -> $b = $new;
                new(rows)
            }
            fn append(b: &mut $b, v: Self::In<'_>) {
                b.append_value(v);
            }
            fn finish(mut b: $b) -> ArrayRef {
                Arc::new(b.finish())
            }
            fn borrow(&self) -> Self::In<'_> {
                let $s = self;
                $borrow
            }
            fn from_cell($c: Cell) -> Result<$t, CellError> {
                $from
            }
        }
    };
}

macro_rules! int_value {
    ($t:ty, $ty:ident, $b:ident) => {
        scalar_value!($t, $ty, $b, $t, |s| *s, $b::with_capacity, |c| match c {
            Cell::Int(v) => <$t>::try_from(v).map_err(|_| CellError(format!("{v} does not fit {}", stringify!($t)))),
            Cell::Float(v) if v.fract() == 0.0 && v >= 0.0 && v <= <$t>::MAX as f64 => Ok(v as $t),
            c => mismatch(stringify!($t), &c),
        });
    };
}
int_value!(u16, U16, UInt16Builder);
int_value!(u32, U32, UInt32Builder);
int_value!(u64, U64, UInt64Builder);
scalar_value!(
    f64,
    F64,
    Float64Builder,
    f64,
    |s| *s,
    Float64Builder::with_capacity,
    |c| match c {
        Cell::Float(v) => Ok(v),
        Cell::Int(v) => Ok(v as f64),
        c => mismatch("a number", &c),
    }
);
scalar_value!(
    bool,
    Bool,
    BooleanBuilder,
    bool,
    |s| *s,
    BooleanBuilder::with_capacity,
    |c| match c {
        Cell::Bool(v) => Ok(v),
        c => mismatch("a boolean", &c),
    }
);
scalar_value!(
    Ts,
    Ts,
    TimestampMicrosecondBuilder,
    i64,
    |s| s.0,
    |n| TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
    |c| match c {
        Cell::Micros(v) => Ok(Ts(v)),
        c => mismatch("a timestamp", &c),
    }
);
scalar_value!(
    String,
    Utf8,
    StringBuilder,
    &'a str,
    |s| s,
    |n| StringBuilder::with_capacity(n, n * 8),
    |c| match c {
        Cell::Str(v) => Ok(v),
        c => mismatch("a string", &c),
    }
);
scalar_value!(
    Arc<str>,
    Utf8,
    StringBuilder,
    &'a str,
    |s| s,
    |n| StringBuilder::with_capacity(n, n * 8),
    |c| String::from_cell(c).map(Arc::from)
);

macro_rules! list_value {
    ($t:ty, $ty:ident, $b:ident, $from:expr) => {
        impl Value for Vec<$t> {
            const TY: Ty = Ty::$ty;
            const NULLABLE: bool = false;
            type In<'a> = &'a [$t];
            type Builder = ListBuilder<$b>;
            fn builder(rows: usize) -> ListBuilder<$b> {
                ListBuilder::with_capacity($b::with_capacity(rows), rows)
            }
            fn append(b: &mut ListBuilder<$b>, v: &[$t]) {
                b.values().append_slice(v);
                b.append(true);
            }
            fn finish(mut b: ListBuilder<$b>) -> ArrayRef {
                Arc::new(b.finish())
            }
            fn borrow(&self) -> &[$t] {
                self
            }
            fn from_cell(c: Cell) -> Result<Vec<$t>, CellError> {
                let from: fn(Cell) -> Result<Vec<$t>, CellError> = $from;
                from(c)
            }
        }
    };
}
list_value!(f64, ListF64, Float64Builder, |c| match c {
    Cell::Floats(v) => Ok(v),
    Cell::Ints(v) => Ok(v.into_iter().map(|x| x as f64).collect()),
    c => mismatch("a list of numbers", &c),
});
list_value!(u32, ListU32, UInt32Builder, |c| match c {
    Cell::Ints(v) => v
        .into_iter()
        .map(|x| u32::try_from(x).map_err(|_| CellError(format!("{x} does not fit u32"))))
        .collect(),
    c => mismatch("a list of integers", &c),
});
list_value!(u64, ListU64, UInt64Builder, |c| match c {
    Cell::Ints(v) => v
        .into_iter()
        .map(|x| u64::try_from(x).map_err(|_| CellError(format!("{x} does not fit u64"))))
        .collect(),
    c => mismatch("a list of integers", &c),
});

/// Nullable columns: the inner type's builder, with nulls. The list builders make nullable
/// items, as the contracts' list fields are.
impl<T: Value> Value for Option<T>
where
    T::Builder: NullAppend,
{
    const TY: Ty = T::TY;
    const NULLABLE: bool = true;
    type In<'a> = Option<T::In<'a>>;
    type Builder = T::Builder;
    fn builder(rows: usize) -> T::Builder {
        T::builder(rows)
    }
    fn append(b: &mut T::Builder, v: Option<T::In<'_>>) {
        match v {
            Some(v) => T::append(b, v),
            None => b.append_null_value(),
        }
    }
    fn finish(b: T::Builder) -> ArrayRef {
        T::finish(b)
    }
    fn borrow(&self) -> Option<T::In<'_>> {
        self.as_ref().map(T::borrow)
    }
    fn from_cell(c: Cell) -> Result<Option<T>, CellError> {
        match c {
            Cell::Null => Ok(None),
            c => T::from_cell(c).map(Some),
        }
    }
}

/// Builders that can append a null.
pub trait NullAppend {
    fn append_null_value(&mut self);
}

macro_rules! null_append {
    ($($b:ty),*) => {$(
        impl NullAppend for $b {
            fn append_null_value(&mut self) {
                self.append_null();
            }
        }
    )*};
}
null_append!(
    UInt16Builder,
    UInt32Builder,
    UInt64Builder,
    Float64Builder,
    BooleanBuilder,
    StringBuilder,
    TimestampMicrosecondBuilder
);

impl<B: arrow_array::builder::ArrayBuilder> NullAppend for ListBuilder<B> {
    fn append_null_value(&mut self) {
        self.append(false);
    }
}
