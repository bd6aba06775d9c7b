//! Cells as JSON, CSV text and Markdown.

use arrow_array::{Array, RecordBatch, cast::AsArray, types::*};
use arrow_schema::{DataType, SchemaRef, TimeUnit};

// ---------------------------------------------------------------------------------------
// Cell rendering for CSV, JSON and Markdown

fn ts_to_us(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1000,
    }
}

/// A cell as JSON (timestamps as RFC 3339 strings, lists as arrays).
pub fn cell_json(a: &dyn Array, i: usize) -> serde_json::Value {
    use serde_json::Value;
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => serde_json::Number::from_f64(a.as_primitive::<Float32Type>().value(i) as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        DataType::Float64 => serde_json::Number::from_f64(a.as_primitive::<Float64Type>().value(i))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            super::cols::str_at(a, i)
                .map(|s| Value::String(s.to_string()))
                .unwrap_or(Value::Null)
        }
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
            };
            Value::String(crate::meta::rfc3339_us(ts_to_us(*unit, v)))
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let v = l.value(i);
            Value::Array((0..v.len()).map(|j| cell_json(v.as_ref(), j)).collect())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let v = l.value(i);
            Value::Array((0..v.len()).map(|j| cell_json(v.as_ref(), j)).collect())
        }
        other => Value::String(format!("<{other}>")),
    }
}

/// A cell as text (CSV): numbers in full precision, lists as JSON arrays, nulls empty.
pub fn cell_text(a: &dyn Array, i: usize) -> String {
    match cell_json(a, i) {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        v => v.to_string(),
    }
}

/// A cell for a human table: floats rounded for reading.
pub fn cell_human(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return String::new();
    }
    match a.data_type() {
        DataType::Float64 => fmt_num(a.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => fmt_num(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::List(_) | DataType::LargeList(_) => {
            let s = cell_text(a, i);
            if s.len() > 40 {
                format!(
                    "{}…]",
                    &s[..s.char_indices().nth(38).map(|(k, _)| k).unwrap_or(s.len())]
                )
            } else {
                s
            }
        }
        _ => cell_text(a, i).replace('|', "\\|"),
    }
}

/// Round a number for reading: 3 significant digits below 100, else whole or 1 decimal.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Render batches as a Markdown table.
pub fn markdown_table(schema: &SchemaRef, batches: &[RecordBatch]) -> String {
    let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|c| cell_human(c.as_ref(), r)).collect());
        }
    }
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count().max(3)).collect();
    for r in &rows {
        for (k, c) in r.iter().enumerate() {
            w[k] = w[k].max(c.chars().count());
        }
    }
    let line = |cells: &[String], numeric: bool| -> String {
        let mut s = String::from("|");
        for (k, c) in cells.iter().enumerate() {
            let pad = w[k] - c.chars().count();
            if numeric && c.parse::<f64>().is_ok() {
                s.push_str(&format!(" {}{} |", " ".repeat(pad), c));
            } else {
                s.push_str(&format!(" {}{} |", c, " ".repeat(pad)));
            }
        }
        s.push('\n');
        s
    };
    let mut s = line(&headers, false);
    s.push('|');
    for x in &w {
        s.push_str(&format!("{}|", "-".repeat(x + 2)));
    }
    s.push('\n');
    for r in &rows {
        s.push_str(&line(r, true));
    }
    s
}
