//! The blob value tree.

/// The deepest nesting a blob holds, for encode and decode alike: an item may sit inside at most
/// this many containers (tuples, lists, sets, dicts, object arrays, struct, cell and record
/// arrays); the top-level item is at depth 0. Encoding a deeper value and decoding a deeper blob
/// are errors, never a stack overflow. DataJoint Python has no explicit limit, but Python's
/// default recursion limit stops DataJoint 2.3.5 at about 330 levels of lists when reading (and
/// about 200 when writing), so everything within this limit that dj-rs writes, DataJoint reads.
pub const MAX_DEPTH: usize = 256;

/// A decoded blob item: everything DataJoint's blob format can hold.
///
/// Dropping an item never recurses, however deeply it is nested (a value built in memory may be
/// nested deeper than [`MAX_DEPTH`]; encoding it is then an error). Because `Item` implements
/// `Drop`, a pattern cannot move its contents out: match on `&item` or `&mut item` and take them
/// with [`std::mem::take`] (`Item` and [`ArrayData`] implement `Default`), which moves without a
/// copy:
///
/// ```
/// use dj_codec_blob::Item;
///
/// let mut item = Item::List(vec![Item::from(1_i64), Item::from("a")]);
/// let Item::List(items) = &mut item else { unreachable!() };
/// let items: Vec<Item> = std::mem::take(items);
/// assert_eq!(items.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// Python `None` (code `0xFF`).
    None,
    /// Python `bool` (`0x0B`).
    Bool(bool),
    /// Python `int` of any size (`0x0A`).
    Int(PyInt),
    /// Python `float` (`0x0D`).
    Float(f64),
    /// Python `complex` (`0x0C`): real and imaginary parts.
    Complex(f64, f64),
    /// Python `str` (`0x05`).
    Str(String),
    /// Python `bytes` (`0x06`).
    Bytes(Vec<u8>),
    /// `decimal.Decimal`, as its text (`d`).
    Decimal(String),
    /// `datetime.date`, `.time` or `.datetime` (`t`).
    Temporal(Temporal),
    /// `uuid.UUID` (`u`).
    Uuid(uuid::Uuid),
    /// `tuple` (`0x01`).
    Tuple(Vec<Item>),
    /// `list` (`0x02`).
    List(Vec<Item>),
    /// `set` (`0x03`); order as stored.
    Set(Vec<Item>),
    /// `dict` (`0x04`): insertion-ordered pairs; keys may be any item.
    Dict(Vec<(Item, Item)>),
    /// An N-d array (`A`).
    Array(Array),
    /// A MATLAB struct array (`S`).
    Struct(StructArray),
    /// A MATLAB cell array (`C`).
    Cell(CellArray),
    /// A numpy record array (`F`).
    Record(RecordArray),
}

impl Default for Item {
    /// [`Item::None`].
    fn default() -> Self {
        Item::None
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        // Items holding items that hold items are taken apart here, with a stack on the heap, so
        // the drop glue only ever goes two levels down: dropping a value nested a million levels
        // deep takes no more native stack than dropping a flat one. Shallow values (the common
        // case) return at once.
        if !has_great_grandchildren(self) {
            return;
        }
        let mut stack = Vec::new();
        detach_deep_children(self, &mut stack);
        while let Some(mut item) = stack.pop() {
            detach_deep_children(&mut item, &mut stack);
        }
    }
}

/// Whether an item is a complex array (its parts are boxed, so drop takes them apart too).
fn is_complex(item: &Item) -> bool {
    matches!(item, Item::Array(a) if matches!(a.data, ArrayData::Complex(..)))
}

/// Whether an item holds any item.
fn has_children(item: &Item) -> bool {
    is_complex(item) || children(item).next().is_some()
}

/// Whether an item holds an item that holds an item.
fn has_grandchildren(item: &Item) -> bool {
    is_complex(item) || children(item).any(has_children)
}

/// Whether an item is nested three or more levels deep.
fn has_great_grandchildren(item: &Item) -> bool {
    is_complex(item) || children(item).any(has_grandchildren)
}

/// Move every child of `item` that has grandchildren onto `stack` (leaving `None` in its place),
/// so that dropping `item` afterwards goes at most two levels deep.
fn detach_deep_children(item: &mut Item, stack: &mut Vec<Item>) {
    let mut detach = |child: &mut Item| {
        if has_grandchildren(child) {
            stack.push(std::mem::take(child));
        }
    };
    match item {
        Item::Tuple(v) | Item::List(v) | Item::Set(v) => v.iter_mut().for_each(detach),
        Item::Dict(p) => p.iter_mut().for_each(|(k, v)| {
            detach(k);
            detach(v);
        }),
        Item::Array(a) => match &mut a.data {
            ArrayData::Object(v) => v.iter_mut().for_each(detach),
            ArrayData::Complex(..) => {
                // Complex parts that are themselves complex (or object arrays) are invalid but
                // can be built; such a chain is taken apart the same way.
                let mut parts = vec![std::mem::replace(&mut a.data, ArrayData::F64(Vec::new()))];
                while let Some(part) = parts.pop() {
                    match part {
                        ArrayData::Complex(re, im) => {
                            parts.push(*re);
                            parts.push(*im);
                        }
                        ArrayData::Object(v) => stack.extend(v),
                        _ => {}
                    }
                }
            }
            _ => {}
        },
        Item::Struct(s) => s.elements.iter_mut().flatten().for_each(detach),
        Item::Cell(c) => c.items.iter_mut().for_each(detach),
        Item::Record(r) => r.columns.iter_mut().for_each(detach),
        _ => {}
    }
}

/// The items directly inside an item (none for scalars and numeric arrays), in encoding order.
pub(crate) fn children(item: &Item) -> Children<'_> {
    match item {
        Item::Tuple(v) | Item::List(v) | Item::Set(v) => Children::Items(v.iter()),
        Item::Dict(p) => Children::Pairs(p.iter(), None),
        Item::Array(a) => match &a.data {
            ArrayData::Object(v) => Children::Items(v.iter()),
            _ => Children::Items([].iter()),
        },
        Item::Struct(s) => Children::Rows(s.elements.iter().flatten()),
        Item::Cell(c) => Children::Items(c.items.iter()),
        Item::Record(r) => Children::Items(r.columns.iter()),
        _ => Children::Items([].iter()),
    }
}

/// The iterator [`children`] returns.
pub(crate) enum Children<'a> {
    Items(std::slice::Iter<'a, Item>),
    Pairs(std::slice::Iter<'a, (Item, Item)>, Option<&'a Item>),
    Rows(std::iter::Flatten<std::slice::Iter<'a, Vec<Item>>>),
}

impl<'a> Iterator for Children<'a> {
    type Item = &'a Item;

    fn next(&mut self) -> Option<&'a Item> {
        match self {
            Children::Items(it) => it.next(),
            Children::Pairs(it, pending) => pending.take().or_else(|| {
                let (k, v) = it.next()?;
                *pending = Some(v);
                Some(k)
            }),
            Children::Rows(it) => it.next(),
        }
    }
}

impl Item {
    /// How deeply the item is nested: 0 for a scalar or a numeric array, 1 for a list of scalars,
    /// and so on. Encoding refuses items deeper than [`MAX_DEPTH`]. Found without recursion, with
    /// memory proportional to the depth.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![children(self)];
        while let Some(top) = stack.last_mut() {
            match top.next() {
                Some(child) => {
                    deepest = deepest.max(stack.len());
                    if has_children(child) {
                        stack.push(children(child));
                    }
                }
                None => {
                    stack.pop();
                }
            }
        }
        deepest
    }
}

/// An arbitrary-size integer: little-endian two's complement bytes, minimal as DataJoint writes them
/// (`bit_length // 8 + 1` bytes), at most 65535 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyInt(pub(crate) Vec<u8>);

impl PyInt {
    /// From little-endian two's complement bytes (any length ≥ 1).
    pub fn from_le_bytes(bytes: Vec<u8>) -> Self {
        PyInt(bytes)
    }

    /// The little-endian two's complement bytes.
    pub fn as_le_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as `i64`, if it fits.
    pub fn to_i64(&self) -> Option<i64> {
        let v = self.to_i128()?;
        i64::try_from(v).ok()
    }

    /// The value as `i128`, if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        let b = &self.0;
        if b.is_empty() {
            return Some(0);
        }
        let negative = b.last().is_some_and(|x| x & 0x80 != 0);
        let fill = if negative { 0xFF } else { 0x00 };
        if b.len() > 16 && b[16..].iter().any(|&x| x != fill) {
            return None;
        }
        let mut buf = [fill; 16];
        let n = b.len().min(16);
        buf[..n].copy_from_slice(&b[..n]);
        let v = i128::from_le_bytes(buf);
        // A 16-byte prefix of a longer number must keep its sign.
        if b.len() > 16 && ((v < 0) != negative) {
            return None;
        }
        Some(v)
    }
}

impl std::fmt::Display for PyInt {
    /// The decimal value, as Python's `str(int)` prints it, for any size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(v) = self.to_i128() {
            return write!(f, "{v}");
        }
        // Magnitude as base-2^32 limbs, most significant first.
        let negative = self.0.last().is_some_and(|x| x & 0x80 != 0);
        let mut bytes = self.0.clone();
        if negative {
            // Two's complement negation: invert and add one.
            let mut carry = true;
            for b in &mut bytes {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        let mut limbs: Vec<u32> = bytes
            .chunks(4)
            .rev()
            .map(|c| {
                let mut a = [0u8; 4];
                a[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(a)
            })
            .collect();
        // Repeated division by 10^9 gives the decimal digits nine at a time.
        let mut groups = Vec::new();
        while limbs.iter().any(|&l| l != 0) {
            let mut rem = 0u64;
            for l in &mut limbs {
                let cur = (rem << 32) | u64::from(*l);
                *l = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            groups.push(rem as u32);
            while limbs.first() == Some(&0) {
                limbs.remove(0);
            }
        }
        let mut s = String::with_capacity(groups.len() * 9 + 1);
        if negative {
            s.push('-');
        }
        for (i, g) in groups.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&g.to_string());
            } else {
                s.push_str(&format!("{g:09}"));
            }
        }
        f.write_str(&s)
    }
}

impl From<i128> for PyInt {
    /// Minimal encoding as Python's `int.to_bytes(bit_length // 8 + 1, signed=True)`.
    fn from(v: i128) -> Self {
        let magnitude_bits = 128 - v.unsigned_abs().leading_zeros();
        let n = (magnitude_bits / 8 + 1) as usize;
        let mut bytes = v.to_le_bytes().to_vec();
        bytes.resize(n.max(16), if v < 0 { 0xFF } else { 0 });
        bytes.truncate(n);
        PyInt(bytes)
    }
}

impl From<i64> for PyInt {
    fn from(v: i64) -> Self {
        PyInt::from(i128::from(v))
    }
}

/// A date, a time of day, or both (DataJoint's `t` item; time zones are not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Temporal {
    /// `YYYYMMDD`, or -1 for none.
    pub date: i32,
    /// `HHMMSSffffff` (microseconds), or -1 for none.
    pub time: i64,
}

/// numpy `datetime64` units, by DataJoint class id (65536 + index).
pub const DATETIME64_UNITS: [&str; 13] = [
    "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
];

/// An N-d array: shape and column-major (Fortran-order) data.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The dimensions. Empty for a 0-d (scalar) array.
    pub shape: Vec<u64>,
    /// The elements, in Fortran order.
    pub data: ArrayData,
}

/// Typed, contiguous array data in Fortran order.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum ArrayData {
    /// MATLAB logical / numpy bool, one byte each (0 or 1).
    Bool(Vec<u8>),
    /// MATLAB char: UTF-16 code units.
    Char(Vec<u16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// A complex array: the real and the imaginary parts, each a numeric variant of equal length.
    Complex(Box<ArrayData>, Box<ArrayData>),
    /// numpy `datetime64[unit]` ticks; `unit` indexes [`DATETIME64_UNITS`].
    DateTime64 {
        unit: u8,
        ticks: Vec<i64>,
    },
    /// Object and unicode arrays: one item per element.
    Object(Vec<Item>),
}

impl Default for ArrayData {
    /// An empty `float64` vector's data, so that array data can be taken out of an [`Item`] with
    /// [`std::mem::take`].
    fn default() -> Self {
        ArrayData::F64(Vec::new())
    }
}

impl ArrayData {
    /// The number of elements.
    pub fn len(&self) -> usize {
        // The real part decides; a chain of complex parts is followed without recursion.
        let mut data = self;
        while let ArrayData::Complex(re, _) = data {
            data = re;
        }
        match data {
            ArrayData::Bool(v) | ArrayData::U8(v) => v.len(),
            ArrayData::Char(v) | ArrayData::U16(v) => v.len(),
            ArrayData::I8(v) => v.len(),
            ArrayData::I16(v) => v.len(),
            ArrayData::I32(v) => v.len(),
            ArrayData::U32(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::U64(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::Complex(..) => 0,
            ArrayData::DateTime64 { ticks, .. } => ticks.len(),
            ArrayData::Object(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Array {
    /// A 1-D `float64` array.
    pub fn from_f64(values: Vec<f64>) -> Self {
        Array {
            shape: vec![values.len() as u64],
            data: ArrayData::F64(values),
        }
    }

    /// An array of `shape` with Fortran-order `data`; errors when the sizes disagree.
    pub fn new(shape: Vec<u64>, data: ArrayData) -> Result<Self, crate::BlobError> {
        let n = element_count(&shape).ok_or(crate::BlobError::Invalid {
            message: format!("shape {shape:?} overflows"),
        })?;
        if n != data.len() as u64 {
            return Err(crate::BlobError::Invalid {
                message: format!(
                    "shape {shape:?} holds {n} elements but {} were given",
                    data.len()
                ),
            });
        }
        Ok(Array { shape, data })
    }
}

/// The product of the dimensions, or `None` on overflow.
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// A MATLAB struct array: field names and, for each element (Fortran order), one item per field.
#[derive(Clone, Debug, PartialEq)]
pub struct StructArray {
    /// The dimensions.
    pub shape: Vec<u64>,
    /// The field names.
    pub fields: Vec<String>,
    /// `elements[i][f]` is field `f` of element `i`.
    pub elements: Vec<Vec<Item>>,
}

/// A MATLAB cell array: items in Fortran order.
#[derive(Clone, Debug, PartialEq)]
pub struct CellArray {
    /// The dimensions.
    pub shape: Vec<u64>,
    /// The items.
    pub items: Vec<Item>,
}

/// A numpy record array: one column (an `A` array or a nested record array) per field.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordArray {
    /// The field names.
    pub fields: Vec<String>,
    /// The columns, one per field.
    pub columns: Vec<Item>,
}
