//! Typed access to columns of files written by anyone: servebench, pyarrow, pandas, DuckDB.
//!
//! Integers of any width and signedness, floats where an integer is wanted (if whole),
//! Utf8/LargeUtf8/Utf8View/dictionary strings, List/LargeList, and timestamps of any unit are
//! all accepted; a value that cannot fit is reported with its row number.

use arrow_array::{Array, ArrayRef, RecordBatch, cast::AsArray, types::*};
use arrow_schema::{DataType, TimeUnit};

use super::DataError;
use crate::meta::Meta;
use crate::schema::{Cell, Contract, Decode, Ty};

/// Every row of a file of contract `R`, and the file's metadata: the one reader of contract
/// rows back from a file (summaries, capacities, quality rows). `keys` are columns every such
/// file has (checked first, so a file of another contract is named as such) and `hint` says
/// what writes the file. Columns the file lacks are null, or zero and empty where the contract
/// has no null; counts written by other tools as negative signed integers read as 0.
pub fn read_rows<R: Decode>(path: &str, keys: &[&str], hint: &str) -> Result<(Vec<R>, Meta), DataError> {
    let contract = R::contract();
    let input = super::open(path)?;
    if let Some(key) = keys.iter().find(|k| input.schema.field_with_name(k).is_err()) {
        return Err(DataError::MissingColumn {
            path: path.into(),
            column: (*key).into(),
            contract: contract.name.into(),
            required: hint.into(),
        });
    }
    let meta = input.meta.clone();
    let mut rows = Vec::new();
    let mut base = 0u64;
    for b in input {
        let b = b?;
        for i in 0..b.num_rows() {
            let mut asked = "";
            let row = R::decode_row(&mut |name| {
                asked = name;
                let cell = column(&b, name).map_or(Cell::Null, |a| cell_at(a, i));
                match (&cell, contract.columns.iter().find(|c| c.name == name)) {
                    (Cell::Null, Some(c)) if !c.nullable => match c.ty {
                        Ty::Utf8 => Cell::Str(String::new()),
                        Ty::F64 => Cell::Float(0.0),
                        _ => Cell::Int(0),
                    },
                    (Cell::Int(v), Some(c)) if *v < 0 && matches!(c.ty, Ty::U16 | Ty::U32 | Ty::U64) => Cell::Int(0),
                    _ => cell,
                }
            })
            .map_err(|e| DataError::BadValue {
                path: path.into(),
                row: base + i as u64 + 1,
                column: asked.into(),
                msg: e.0,
            })?;
            rows.push(row);
        }
        base += b.num_rows() as u64;
    }
    Ok((rows, meta))
}

/// Check that every required column of `contract` is present with a usable type.
pub fn check_required(path: &str, schema: &arrow_schema::Schema, contract: &Contract) -> Result<(), DataError> {
    let required: Vec<&str> = contract.columns.iter().filter(|c| c.required).map(|c| c.name).collect();
    for c in contract.columns.iter().filter(|c| c.required) {
        match schema.field_with_name(c.name) {
            Ok(f) => {
                if !type_compatible(c.ty, f.data_type()) {
                    return Err(DataError::BadType {
                        path: path.into(),
                        column: c.name.into(),
                        found: f.data_type().to_string(),
                        expected: c.ty.short().into(),
                    });
                }
            }
            Err(_) => {
                return Err(DataError::MissingColumn {
                    path: path.into(),
                    column: c.name.into(),
                    contract: contract.name.into(),
                    required: required.join(", "),
                });
            }
        }
    }
    // Optional columns, when present, must have a usable type too.
    for c in contract.columns.iter().filter(|c| !c.required) {
        if let Ok(f) = schema.field_with_name(c.name)
            && !type_compatible(c.ty, f.data_type())
            && f.data_type() != &DataType::Null
        {
            return Err(DataError::BadType {
                path: path.into(),
                column: c.name.into(),
                found: f.data_type().to_string(),
                expected: c.ty.short().into(),
            });
        }
    }
    Ok(())
}

fn is_int(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn is_str(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_str(v),
        _ => false,
    }
}

fn type_compatible(want: crate::schema::Ty, have: &DataType) -> bool {
    use crate::schema::Ty;
    match want {
        Ty::U16 | Ty::U32 | Ty::U64 => is_int(have) || is_float(have) || matches!(have, DataType::Decimal128(_, _)),
        Ty::F64 => is_int(have) || is_float(have) || matches!(have, DataType::Decimal128(_, _)),
        Ty::Bool => matches!(have, DataType::Boolean),
        Ty::Utf8 => is_str(have),
        Ty::Ts => matches!(have, DataType::Timestamp(_, _)),
        Ty::ListF64 | Ty::ListU32 | Ty::ListU64 => match have {
            DataType::List(f) | DataType::LargeList(f) => is_int(f.data_type()) || is_float(f.data_type()),
            _ => false,
        },
    }
}

/// Numeric value at row i as f64 (None when null).
pub fn f64_at(a: &dyn Array, i: usize) -> Option<f64> {
    if a.is_null(i) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().value(i),
        DataType::Float32 => a.as_primitive::<Float32Type>().value(i) as f64,
        DataType::Float16 => a.as_primitive::<Float16Type>().value(i).to_f64(),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i) as f64,
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i) as f64,
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i) as f64,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i) as f64,
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i) as f64,
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i) as f64,
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i) as f64,
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i) as f64,
        DataType::Decimal128(_, s) => a.as_primitive::<Decimal128Type>().value(i) as f64 / 10f64.powi(*s as i32),
        DataType::Timestamp(u, _) => ts_us_at(a, i, *u)? as f64,
        _ => return None,
    })
}

/// Integer value at row i as i128 (so any source type fits); floats must be whole.
pub fn int_at(a: &dyn Array, i: usize) -> Result<Option<i128>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i) as i128,
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i) as i128,
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i) as i128,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i) as i128,
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i) as i128,
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i) as i128,
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i) as i128,
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i) as i128,
        t if is_float(t) || matches!(t, DataType::Decimal128(_, _)) => {
            let v = f64_at(a, i).unwrap_or(f64::NAN);
            if !v.is_finite() || v.fract() != 0.0 {
                return Err(format!("{v} is not a whole number"));
            }
            v as i128
        }
        t => return Err(format!("type {t} is not a number")),
    }))
}

fn ts_us_at(a: &dyn Array, i: usize, u: TimeUnit) -> Option<i64> {
    if a.is_null(i) {
        return None;
    }
    Some(match u {
        TimeUnit::Second => a
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => a
            .as_primitive::<TimestampMillisecondType>()
            .value(i)
            .saturating_mul(1000),
        TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
        TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i) / 1000,
    })
}

/// Timestamp at row i in microseconds since the epoch.
pub fn ts_us(a: &dyn Array, i: usize) -> Option<i64> {
    match a.data_type() {
        DataType::Timestamp(u, _) => ts_us_at(a, i, *u),
        _ => None,
    }
}

/// String at row i for any string-like array.
pub fn str_at(a: &dyn Array, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(a.as_string_view().value(i)),
        DataType::Dictionary(k, _) => {
            let (keys_idx, values) = match k.as_ref() {
                DataType::Int8 => {
                    let d = a.as_dictionary::<Int8Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                DataType::Int16 => {
                    let d = a.as_dictionary::<Int16Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                DataType::Int32 => {
                    let d = a.as_dictionary::<Int32Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                DataType::Int64 => {
                    let d = a.as_dictionary::<Int64Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                DataType::UInt8 => {
                    let d = a.as_dictionary::<UInt8Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                DataType::UInt16 => {
                    let d = a.as_dictionary::<UInt16Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                DataType::UInt32 => {
                    let d = a.as_dictionary::<UInt32Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                DataType::UInt64 => {
                    let d = a.as_dictionary::<UInt64Type>();
                    (d.keys().value(i) as usize, d.values())
                }
                _ => return None,
            };
            str_at(values.as_ref(), keys_idx)
        }
        _ => None,
    }
}

/// The values of a list cell (List or LargeList) as an array, None when null.
pub fn list_at(a: &dyn Array, i: usize) -> Option<ArrayRef> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::List(_) => Some(a.as_list::<i32>().value(i)),
        DataType::LargeList(_) => Some(a.as_list::<i64>().value(i)),
        _ => None,
    }
}

/// A column by name from a batch, if present.
pub fn get<'a>(b: &'a RecordBatch, name: &str) -> Option<&'a ArrayRef> {
    b.schema().index_of(name).ok().map(|i| b.column(i))
}

/// Row-number-aware accessor over one batch of a file, for converting foreign data into the
/// contract's types with errors that name the row.
pub struct RowCtx<'a> {
    pub path: &'a str,
    /// Number of rows before this batch (so errors give the file's row number, from 1).
    pub base_row: u64,
}

impl RowCtx<'_> {
    pub fn err(&self, row: usize, column: &str, msg: impl Into<String>) -> DataError {
        DataError::BadValue {
            path: self.path.into(),
            row: self.base_row + row as u64 + 1,
            column: column.into(),
            msg: msg.into(),
        }
    }

    pub fn u64(&self, a: &dyn Array, i: usize, column: &str) -> Result<Option<u64>, DataError> {
        match int_at(a, i).map_err(|m| self.err(i, column, m))? {
            None => Ok(None),
            Some(v) if v < 0 => Err(self.err(i, column, format!("{v} is negative"))),
            Some(v) if v > u64::MAX as i128 => Err(self.err(i, column, format!("{v} is too large"))),
            Some(v) => Ok(Some(v as u64)),
        }
    }

    pub fn u32(&self, a: &dyn Array, i: usize, column: &str) -> Result<Option<u32>, DataError> {
        match self.u64(a, i, column)? {
            None => Ok(None),
            Some(v) if v > u32::MAX as u64 => Err(self.err(i, column, format!("{v} is too large (max {})", u32::MAX))),
            Some(v) => Ok(Some(v as u32)),
        }
    }

    pub fn f64(&self, a: &dyn Array, i: usize, column: &str) -> Result<Option<f64>, DataError> {
        match f64_at(a, i) {
            None if a.is_null(i) => Ok(None),
            None => Err(self.err(i, column, "not a number")),
            Some(v) if !v.is_finite() => Err(self.err(i, column, format!("{v} is not finite"))),
            Some(v) => Ok(Some(v)),
        }
    }

    pub fn req<T>(&self, v: Option<T>, i: usize, column: &str) -> Result<T, DataError> {
        v.ok_or_else(|| self.err(i, column, "is null but required"))
    }
}

// Fast typed columns: the contract's own Arrow type is read straight from its buffers; any
// other type a foreign writer chose goes through the converting accessors above.

/// A column of a batch by name, as a plain array reference (None when absent).
pub fn column<'a>(b: &'a RecordBatch, name: &str) -> Option<&'a dyn Array> {
    b.schema_ref().index_of(name).ok().map(|i| b.column(i).as_ref())
}

/// A string column: Utf8 read directly, any other string type converted.
pub enum StrCol<'a> {
    Utf8(&'a arrow_array::StringArray),
    Any(&'a dyn Array),
    Absent,
}

impl<'a> StrCol<'a> {
    pub fn of(a: Option<&'a dyn Array>) -> StrCol<'a> {
        match a {
            None => StrCol::Absent,
            Some(a) => match a.as_any().downcast_ref::<arrow_array::StringArray>() {
                Some(s) => StrCol::Utf8(s),
                None => StrCol::Any(a),
            },
        }
    }
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            StrCol::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::Any(a) => str_at(*a, i),
            StrCol::Absent => None,
        }
    }
}

/// A primitive column: the contract's own Arrow type read directly, anything else (other
/// widths, signedness, units) converted through `slow`.
pub struct Prim<'a, T: arrow_array::ArrowPrimitiveType, O> {
    fast: Option<&'a arrow_array::PrimitiveArray<T>>,
    any: Option<&'a dyn Array>,
    conv: fn(T::Native) -> O,
    slow: fn(&dyn Array, usize) -> Option<O>,
}

impl<'a, T: arrow_array::ArrowPrimitiveType, O> Prim<'a, T, O> {
    pub fn new(a: Option<&'a dyn Array>, conv: fn(T::Native) -> O, slow: fn(&dyn Array, usize) -> Option<O>) -> Self {
        let fast = a.and_then(|a| a.as_any().downcast_ref::<arrow_array::PrimitiveArray<T>>());
        Prim {
            fast,
            any: if fast.is_some() { None } else { a },
            conv,
            slow,
        }
    }
    #[inline]
    pub fn get(&self, i: usize) -> Option<O> {
        match (self.fast, self.any) {
            (Some(a), _) => (!a.is_null(i)).then(|| (self.conv)(a.value(i))),
            (None, Some(a)) => (self.slow)(a, i),
            (None, None) => None,
        }
    }
}

/// An integer column (UInt32 fast), read as i64.
pub type IntCol<'a> = Prim<'a, arrow_array::types::UInt32Type, i64>;
/// A float column (Float64 fast).
pub type F64Col<'a> = Prim<'a, arrow_array::types::Float64Type, f64>;
/// A timestamp column in µs since the epoch (Timestamp(µs) fast, any unit converted).
pub type TsCol<'a> = Prim<'a, arrow_array::types::TimestampMicrosecondType, i64>;

/// An integer column of any width or signedness (floats if whole).
pub fn int_col(a: Option<&dyn Array>) -> IntCol<'_> {
    Prim::new(
        a,
        |v| v as i64,
        |a, i| {
            int_at(a, i)
                .ok()
                .flatten()
                .map(|v| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
        },
    )
}

/// A numeric column of any type, as f64.
pub fn f64_col(a: Option<&dyn Array>) -> F64Col<'_> {
    Prim::new(a, |v| v, f64_at)
}

/// A timestamp column of any unit.
pub fn ts_col(a: Option<&dyn Array>) -> TsCol<'_> {
    Prim::new(a, |v| v, ts_us)
}

impl<'a> BoolCol<'a> {
    /// A boolean column (absent or of another type: every value false).
    pub fn of(a: Option<&'a dyn Array>) -> BoolCol<'a> {
        BoolCol(a.and_then(|a| a.as_any().downcast_ref::<arrow_array::BooleanArray>()))
    }
}

/// A boolean column; null or absent reads as false.
pub struct BoolCol<'a>(pub Option<&'a arrow_array::BooleanArray>);

impl BoolCol<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.0.is_some_and(|a| !a.is_null(i) && a.value(i))
    }
}

/// A list column: List<Float64>/List<UInt32> read straight from their buffers, anything
/// else converted.
pub enum ListCol<'a> {
    List(&'a arrow_array::ListArray),
    Any(&'a dyn Array),
    Absent,
}

impl<'a> ListCol<'a> {
    pub fn of(a: Option<&'a dyn Array>) -> ListCol<'a> {
        match a {
            None => ListCol::Absent,
            Some(a) => match a.as_any().downcast_ref::<arrow_array::ListArray>() {
                Some(l) => ListCol::List(l),
                None => ListCol::Any(a),
            },
        }
    }

    /// Call `f` with row i's values as f64 (and the token list's values, when `toks` has one
    /// of the same length).
    pub fn for_each(&self, i: usize, toks: &ListCol<'_>, mut f: impl FnMut(&[f64], Option<&[u32]>)) {
        let times: std::borrow::Cow<'_, [f64]> = match self {
            ListCol::Absent => return,
            ListCol::List(l) => {
                if l.is_null(i) {
                    return;
                }
                let (s, e) = (l.value_offsets()[i] as usize, l.value_offsets()[i + 1] as usize);
                match l.values().as_any().downcast_ref::<arrow_array::Float64Array>() {
                    Some(v) if v.null_count() == 0 => std::borrow::Cow::Borrowed(&v.values()[s..e]),
                    _ => {
                        let v = l.values();
                        std::borrow::Cow::Owned((s..e).filter_map(|k| f64_at(v.as_ref(), k)).collect())
                    }
                }
            }
            ListCol::Any(a) => match list_at(*a, i) {
                Some(v) => std::borrow::Cow::Owned((0..v.len()).filter_map(|k| f64_at(v.as_ref(), k)).collect()),
                None => return,
            },
        };
        let tk: Option<std::borrow::Cow<'_, [u32]>> = match toks {
            ListCol::List(l) if !l.is_null(i) => {
                let (s, e) = (l.value_offsets()[i] as usize, l.value_offsets()[i + 1] as usize);
                match l.values().as_any().downcast_ref::<arrow_array::UInt32Array>() {
                    Some(v) if v.null_count() == 0 => Some(std::borrow::Cow::Borrowed(&v.values()[s..e])),
                    _ => None,
                }
            }
            _ => None,
        };
        let tk = tk.filter(|t| t.len() == times.len());
        f(&times, tk.as_deref());
    }
}

/// The value at row i as a contract [`Cell`](crate::schema::Cell), for the typed readers
/// (`Row::decode`): integers of any width, floats and decimals, strings of any kind,
/// booleans, timestamps of any unit (as µs) and numeric lists; null, or a type no contract
/// uses, is `Cell::Null`.
pub fn cell_at(a: &dyn Array, i: usize) -> crate::schema::Cell {
    use crate::schema::Cell;
    if a.is_null(i) {
        return Cell::Null;
    }
    let t = a.data_type();
    if is_int(t) {
        return int_at(a, i).ok().flatten().map_or(Cell::Null, Cell::Int);
    }
    if is_float(t) || matches!(t, DataType::Decimal128(_, _)) {
        return f64_at(a, i).map_or(Cell::Null, Cell::Float);
    }
    if is_str(t) {
        return str_at(a, i).map_or(Cell::Null, |s| Cell::Str(s.to_string()));
    }
    match t {
        DataType::Boolean => Cell::Bool(a.as_boolean().value(i)),
        DataType::Timestamp(_, _) => ts_us(a, i).map_or(Cell::Null, Cell::Micros),
        DataType::List(f) | DataType::LargeList(f) => {
            let Some(v) = list_at(a, i) else { return Cell::Null };
            if is_int(f.data_type()) {
                Cell::Ints(
                    (0..v.len())
                        .filter_map(|k| int_at(v.as_ref(), k).ok().flatten())
                        .collect(),
                )
            } else {
                Cell::Floats((0..v.len()).filter_map(|k| f64_at(v.as_ref(), k)).collect())
            }
        }
        _ => Cell::Null,
    }
}
