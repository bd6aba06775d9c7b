//! `contract!`: one declaration per contract, from which everything else comes.
//!
//! A declaration names the contract, the Rust row type it is made of, and, once per column,
//! its name constant, name, Rust type, whether a reader requires it, its unit, its doc and
//! where its value comes from (`field(path.in.row)` or `get(|row, ctx| expr)`). From it come:
//! the [`Contract`](super::Contract) static (Arrow schema, `--print-schema`, README's tables),
//! a module of name constants, the encoder ([`Rows::encode`](super::Rows::encode)) and, with
//! `decode`, a typed reader (`Row::decode`). The column's Arrow type and nullability are those
//! of its Rust type ([`Value`](super::Value)), so a column cannot be written in the wrong
//! order or with the wrong type, and a misspelled constant does not compile.

/// Declare a contract; see the module documentation.
#[macro_export]
macro_rules! contract {
    (
        $(#[$m:meta])*
        $vis:vis static $NAME:ident = ($name:literal, $version:literal, $doc:literal);
        rows $R:ty, ctx $C:ty, decode;
        $(#[$nm:meta])*
        names $names:ident;
        $( $CONST:ident $cname:literal : $T:ty, $kind:ident, $unit:literal, $cdoc:literal, $how:ident ( $($get:tt)* ); )*
    ) => {
        $crate::contract! {
            $(#[$m])*
            $vis static $NAME = ($name, $version, $doc);
            rows $R, ctx $C;
            $(#[$nm])*
            names $names;
            $( $CONST $cname : $T, $kind, $unit, $cdoc, $how ( $($get)* ); )*
        }
        impl $R {
            /// A row back from its cells (`cell(name)` gives the value of that column, or
            /// `Cell::Null` when the file lacks it); columns computed on writing are skipped.
            pub fn decode(
                cell: &mut dyn FnMut(&'static str) -> $crate::schema::Cell,
            ) -> Result<$R, $crate::schema::CellError> {
                let mut row = <$R as Default>::default();
                $( $crate::contract!(@set row, cell, $cname, $T, $how ( $($get)* )); )*
                Ok(row)
            }
        }
        impl $crate::schema::Decode for $R {
            fn decode_row(
                cell: &mut dyn FnMut(&'static str) -> $crate::schema::Cell,
            ) -> Result<$R, $crate::schema::CellError> {
                <$R>::decode(cell)
            }
        }
    };
    (
        $(#[$m:meta])*
        $vis:vis static $NAME:ident = ($name:literal, $version:literal, $doc:literal);
        rows $R:ty, ctx $C:ty;
        $(#[$nm:meta])*
        names $names:ident;
        $( $CONST:ident $cname:literal : $T:ty, $kind:ident, $unit:literal, $cdoc:literal, $how:ident ( $($get:tt)* ); )*
    ) => {
        $(#[$m])*
        $vis static $NAME: $crate::schema::Contract = $crate::schema::Contract {
            name: $name,
            version: $version,
            doc: $doc,
            columns: &[ $( $crate::schema::Column {
                name: $cname,
                ty: <$T as $crate::schema::Value>::TY,
                nullable: <$T as $crate::schema::Value>::NULLABLE,
                unit: $unit,
                doc: $cdoc,
                required: $crate::contract!(@required $kind),
            } ),* ],
        };

        $(#[$nm])*
        pub mod $names {
            $( #[doc = $cdoc] pub const $CONST: &str = $cname; )*
        }

        impl $crate::schema::Rows for $R {
            type Ctx = $C;
            fn contract() -> &'static $crate::schema::Contract {
                &$NAME
            }
            #[allow(clippy::redundant_locals, clippy::let_unit_value)]
            fn encode(rows: &[$R], ctx: &$C) -> ::arrow_array::RecordBatch {
                let _ = ctx;
                let columns: Vec<::arrow_array::ArrayRef> = vec![ $( {
                    let mut b = <$T as $crate::schema::Value>::builder(rows.len());
                    for row in rows {
                        <$T as $crate::schema::Value>::append(
                            &mut b,
                            $crate::contract!(@get $T, row, ctx, $how ( $($get)* )),
                        );
                    }
                    <$T as $crate::schema::Value>::finish(b)
                } ),* ];
                ::arrow_array::RecordBatch::try_new($NAME.schema(), columns)
                    .expect("columns are built from the contract's own declaration")
            }
        }
    };
    (@required req) => { true };
    (@required opt) => { false };
    (@get $T:ty, $row:ident, $ctx:ident, field ( $($p:ident).+ )) => {
        <$T as $crate::schema::Value>::borrow(&$row.$($p).+)
    };
    (@get $T:ty, $row:ident, $ctx:ident, get ( |$r:tt, $c:tt| $body:expr )) => {{
        let $r = $row;
        let $c = $ctx;
        $body
    }};
    (@set $row:ident, $cell:ident, $cname:literal, $T:ty, field ( $($p:ident).+ )) => {
        $row.$($p).+ = <$T as $crate::schema::Value>::from_cell($cell($cname))
            .map_err(|e| $crate::schema::CellError(format!("column {}: {}", $cname, e.0)))?;
    };
    (@set $row:ident, $cell:ident, $cname:literal, $T:ty, get ( $($g:tt)* )) => {};
}
