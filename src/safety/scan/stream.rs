//! The scan's serializer: visits a parse tree as serde serializes it, hands each object's
//! shape to the rules, and orders what they find as a depth-first visit of the serialized
//! tree would (children in descending key and index order).
//!
//! The serialized form is the one `serde_json::to_value` gives the pg_query types: a struct
//! is an object of all its fields, `None` is `null`, a oneof variant is a one-key object
//! named after the variant, a `Vec` is an array. Maps, tuple and struct variants have no
//! place in a parse tree; one makes the serialization fail, and the scan fail closed.

use std::cmp::Ordering;
use std::fmt;

use pg_query::NodeEnum;
use serde::Serialize;
use serde::ser::{self, Impossible};
use serde_json::Value;

use super::{Entry, Shape, inspect, key};

/// The findings of one tree, in visiting order, and the number of `DO` blocks.
pub(super) fn findings(stmt: &NodeEnum) -> Result<(Vec<Entry>, usize), Unreadable> {
    let mut walker = Walker::default();
    stmt.serialize(&mut walker)?;
    let mut found = walker.found;
    // Stable: the entries of one object keep the order the rules gave them.
    found.sort_by(|(a, _), (b, _)| visiting_order(a, b));
    Ok((
        found.into_iter().map(|(_, e)| e).collect(),
        walker.do_blocks,
    ))
}

/// One step from the root of the serialized tree down to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// An object's field (a struct field, or the variant name of a oneof).
    Key(&'static str),
    /// An array's element.
    Item(usize),
}

/// The order in which a depth-first visit that pushes an object's values in key order (or
/// an array's in index order) onto a stack reaches two values: an ancestor before its
/// descendants, and of two siblings the greater key or index first.
fn visiting_order(a: &[Step], b: &[Step]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match y.cmp(x) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// Why a tree could not be scanned.
#[derive(Debug)]
pub(super) struct Unreadable(String);

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreadable {}

impl ser::Error for Unreadable {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unreadable(msg.to_string())
    }
}

#[derive(Default)]
struct Walker {
    /// Where the value being serialized stands.
    path: Vec<Step>,
    /// What the rules found, each with the path of the object it was found in.
    found: Vec<(Vec<Step>, Entry)>,
    /// The rules' output for the object being inspected (reused).
    scratch: Vec<Entry>,
    do_blocks: usize,
}

impl Walker {
    fn below<T: Serialize + ?Sized>(&mut self, step: Step, value: &T) -> Result<(), Unreadable> {
        self.path.push(step);
        let result = value.serialize(&mut *self);
        self.path.pop();
        result
    }

    /// An object named after a oneof variant: `{"DoStmt": {…}}`.
    fn variant(&mut self, variant: &'static str) {
        if variant == "DoStmt" {
            self.do_blocks += 1;
        }
    }
}

/// An object being serialized: the shape its fields give it so far.
struct Object<'w> {
    walker: &'w mut Walker,
    keys: u32,
    len: usize,
    values: Vec<(u32, Value)>,
}

impl Object<'_> {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unreadable> {
        self.len += 1;
        let bit = key::bit(name);
        self.keys |= bit;
        if bit & key::CAPTURED != 0 {
            let captured = serde_json::to_value(value).map_err(ser::Error::custom)?;
            self.values.push((bit, captured));
        }
        self.walker.below(Step::Key(name), value)
    }

    fn finish(self) {
        let shape = Shape {
            keys: self.keys,
            len: self.len,
            values: &self.values,
        };
        let walker = self.walker;
        inspect(&shape, &mut walker.scratch);
        for entry in walker.scratch.drain(..) {
            walker.found.push((walker.path.clone(), entry));
        }
    }
}

/// An array being serialized.
struct Array<'w> {
    walker: &'w mut Walker,
    next: usize,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unreadable> {
        let index = self.next;
        self.next += 1;
        self.walker.below(Step::Item(index), value)
    }
}

impl<'w> ser::Serializer for &'w mut Walker {
    type Ok = ();
    type Error = Unreadable;
    type SerializeSeq = Array<'w>;
    type SerializeTuple = Array<'w>;
    type SerializeTupleStruct = Array<'w>;
    type SerializeTupleVariant = Impossible<(), Unreadable>;
    type SerializeMap = Impossible<(), Unreadable>;
    type SerializeStruct = Object<'w>;
    type SerializeStructVariant = Impossible<(), Unreadable>;

    fn serialize_bool(self, _: bool) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_char(self, _: char) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unreadable> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Unreadable> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unreadable> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unreadable> {
        self.variant(variant);
        self.below(Step::Key(variant), value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'w>, Unreadable> {
        Ok(Array {
            walker: self,
            next: 0,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'w>, Unreadable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Array<'w>, Unreadable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unreadable> {
        Err(Unreadable("a tuple variant in a parse tree".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unreadable> {
        Err(Unreadable("a map in a parse tree".into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'w>, Unreadable> {
        Ok(Object {
            walker: self,
            keys: 0,
            len: 0,
            values: Vec::new(),
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unreadable> {
        Err(Unreadable("a struct variant in a parse tree".into()))
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = Unreadable;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unreadable> {
        self.field(name, value)
    }
    fn end(self) -> Result<(), Unreadable> {
        self.finish();
        Ok(())
    }
}

macro_rules! array_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Array<'_> {
            type Ok = ();
            type Error = Unreadable;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unreadable> {
                self.element(value)
            }
            fn end(self) -> Result<(), Unreadable> {
                Ok(())
            }
        }
    };
}

array_impl!(SerializeSeq, serialize_element);
array_impl!(SerializeTuple, serialize_element);
array_impl!(SerializeTupleStruct, serialize_field);
