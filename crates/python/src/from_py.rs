//! Python values to blob items, following DataJoint 2.3.5's `Blob.pack_blob` dispatch.

use dj_codec_blob::{
    Array, ArrayData, CellArray, DATETIME64_UNITS, Item, PyInt, RecordArray, StructArray, Temporal,
};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyInt as PyIntType, PyList, PyString,
    PyTuple, PyType,
};

use crate::{MAX_DEPTH, blob_err};

static NUMBER: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATETIME64: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static BOOL_: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MUTABLE_SEQUENCE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SEQUENCE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SET: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// What conversion needs: the classes DataJoint's dispatch tests against.
pub(crate) struct Ctx<'py> {
    py: Python<'py>,
    numpy: Bound<'py, PyModule>,
    cell: Bound<'py, PyAny>,
    struct_: Bound<'py, PyAny>,
    number: Bound<'py, PyType>,
    datetime64: Bound<'py, PyType>,
    bool_: Bound<'py, PyType>,
    datetime: Bound<'py, PyType>,
    date: Bound<'py, PyType>,
    time: Bound<'py, PyType>,
    decimal: Bound<'py, PyType>,
    uuid: Bound<'py, PyType>,
    mapping: Bound<'py, PyType>,
    mutable_sequence: Bound<'py, PyType>,
    sequence: Bound<'py, PyType>,
    set: Bound<'py, PyType>,
}

fn invalid(message: String) -> PyErr {
    blob_err(message, None)
}

impl<'py> Ctx<'py> {
    pub(crate) fn new(
        py: Python<'py>,
        cell: &Bound<'py, PyAny>,
        struct_: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        Ok(Ctx {
            py,
            numpy: py.import("numpy")?,
            cell: cell.clone(),
            struct_: struct_.clone(),
            number: NUMBER.import(py, "numpy", "number")?.clone(),
            datetime64: DATETIME64.import(py, "numpy", "datetime64")?.clone(),
            bool_: BOOL_.import(py, "numpy", "bool_")?.clone(),
            datetime: DATETIME.import(py, "datetime", "datetime")?.clone(),
            date: DATE.import(py, "datetime", "date")?.clone(),
            time: TIME.import(py, "datetime", "time")?.clone(),
            decimal: DECIMAL.import(py, "decimal", "Decimal")?.clone(),
            uuid: UUID.import(py, "uuid", "UUID")?.clone(),
            mapping: MAPPING.import(py, "collections.abc", "Mapping")?.clone(),
            mutable_sequence: MUTABLE_SEQUENCE
                .import(py, "collections.abc", "MutableSequence")?
                .clone(),
            sequence: SEQUENCE.import(py, "collections.abc", "Sequence")?.clone(),
            set: SET.import(py, "collections.abc", "Set")?.clone(),
        })
    }

    /// The item for `obj`, in `Blob.pack_blob`'s order of tests.
    pub(crate) fn item(&self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<Item> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!(
                "value nested deeper than {MAX_DEPTH} levels cannot be packed"
            )));
        }
        if obj.is_instance(&self.cell)? {
            return self.cell_item(obj, depth);
        }
        if obj.is_instance(&self.struct_)? {
            return self.struct_item(obj, depth);
        }
        let is_array = obj.is_instance_of::<PyUntypedArray>();
        if is_array && obj.getattr("dtype")?.getattr("fields")?.is_none() {
            return self.array_item(obj, depth);
        }
        if !is_array && !obj.is_instance(&self.number)? {
            if obj.is_instance_of::<PyBool>() {
                return Ok(Item::Bool(obj.is_truthy()?));
            }
            if obj.is_instance_of::<PyIntType>() {
                return self.int_item(obj);
            }
            if let Ok(c) = obj.cast::<PyComplex>() {
                return Ok(Item::Complex(c.real(), c.imag()));
            }
            if let Ok(f) = obj.cast::<PyFloat>() {
                return Ok(Item::Float(f.value()));
            }
        }
        if is_array {
            // A structured array (`dtype.fields` is set): `pack_recarray(np.array(obj))`.
            let copy = self.numpy.getattr("array")?.call1((obj,))?;
            return self.record_item(&copy, depth);
        }
        if obj.is_instance(&self.number)?
            || obj.is_instance(&self.datetime64)?
            || obj.is_instance(&self.bool_)?
        {
            let a = self.numpy.getattr("array")?.call1((obj,))?;
            return self.array_item(&a, depth);
        }
        if obj.is_instance(&self.date)? || obj.is_instance(&self.time)? {
            return self.temporal_item(obj);
        }
        if obj.is_instance(&self.decimal)? {
            return Ok(Item::Decimal(obj.str()?.to_str()?.to_owned()));
        }
        if obj.is_instance(&self.uuid)? {
            let b = obj.getattr("bytes")?;
            let b = b.cast::<PyBytes>()?.as_bytes();
            let a: [u8; 16] = b
                .try_into()
                .map_err(|_| invalid("UUID.bytes is not 16 bytes".into()))?;
            return Ok(Item::Uuid(uuid::Uuid::from_bytes(a)));
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            return self.dict_item(d.items().as_any(), depth);
        }
        if obj.is_instance(&self.mapping)? {
            return self.dict_item(&obj.call_method0("items")?, depth);
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Item::Str(s.to_str()?.to_owned()));
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Item::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Item::Bytes(b.to_vec()));
        }
        if obj.is_instance_of::<PyList>() || obj.is_instance(&self.mutable_sequence)? {
            return Ok(Item::List(self.items(obj, depth)?));
        }
        if obj.is_instance_of::<PyTuple>() || obj.is_instance(&self.sequence)? {
            return Ok(Item::Tuple(self.items(obj, depth)?));
        }
        if obj.is_instance(&self.set)? {
            return Ok(Item::Set(self.items(obj, depth)?));
        }
        if obj.is_none() {
            return Ok(Item::None);
        }
        Err(invalid(format!(
            "Packing object of type {} currently not supported!",
            obj.get_type().name()?
        )))
    }

    fn items(&self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<Vec<Item>> {
        let mut out = Vec::new();
        for it in obj.try_iter()? {
            out.push(self.item(&it?, depth + 1)?);
        }
        Ok(out)
    }

    fn dict_item(&self, items: &Bound<'py, PyAny>, depth: usize) -> PyResult<Item> {
        let mut pairs = Vec::new();
        for pair in items.try_iter()? {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = pair?.extract()?;
            pairs.push((self.item(&k, depth + 1)?, self.item(&v, depth + 1)?));
        }
        Ok(Item::Dict(pairs))
    }

    fn int_item(&self, obj: &Bound<'py, PyAny>) -> PyResult<Item> {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(Item::Int(PyInt::from(v)));
        }
        let bits: u64 = obj.call_method0("bit_length")?.extract()?;
        let n = bits / 8 + 1;
        if n > 0xFFFF {
            return Err(invalid("Integers are limited to 65535 bytes".into()));
        }
        let kwargs = pyo3::types::PyDict::new(self.py);
        kwargs.set_item("byteorder", "little")?;
        kwargs.set_item("signed", true)?;
        let b = obj.call_method("to_bytes", (n,), Some(&kwargs))?;
        Ok(Item::Int(PyInt::from_le_bytes(
            b.cast::<PyBytes>()?.as_bytes().to_vec(),
        )))
    }

    fn temporal_item(&self, obj: &Bound<'py, PyAny>) -> PyResult<Item> {
        let (date, time) = if obj.is_instance(&self.datetime)? {
            (
                Some(obj.call_method0("date")?),
                Some(obj.call_method0("time")?),
            )
        } else if obj.is_instance(&self.date)? {
            (Some(obj.clone()), None)
        } else {
            (None, Some(obj.clone()))
        };
        let field = |o: &Bound<'py, PyAny>, name: &str| -> PyResult<i64> {
            o.getattr(name)?.extract::<i64>()
        };
        let date = match date {
            None => -1,
            Some(d) => {
                let v = (field(&d, "year")? * 100 + field(&d, "month")?) * 100 + field(&d, "day")?;
                i32::try_from(v).map_err(|_| invalid(format!("date {v} out of range")))?
            }
        };
        let time = match time {
            None => -1,
            Some(t) => {
                ((field(&t, "hour")? * 100 + field(&t, "minute")?) * 100 + field(&t, "second")?)
                    * 1_000_000
                    + field(&t, "microsecond")?
            }
        };
        Ok(Item::Temporal(Temporal { date, time }))
    }

    /// The elements of an array in Fortran order, as Python objects.
    fn flat_f(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(self.py);
        kwargs.set_item("order", "F")?;
        obj.call_method("flatten", (), Some(&kwargs))
    }

    fn shape(obj: &Bound<'py, PyAny>) -> PyResult<Vec<u64>> {
        obj.getattr("shape")?.extract()
    }

    fn cell_item(&self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<Item> {
        let shape = Self::shape(obj)?;
        let items = self.items(&self.flat_f(obj)?, depth)?;
        Ok(Item::Cell(CellArray { shape, items }))
    }

    fn struct_item(&self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<Item> {
        let shape = Self::shape(obj)?;
        let names = obj.getattr("dtype")?.getattr("names")?;
        let fields: Vec<String> = if names.is_none() {
            Vec::new()
        } else {
            names.extract()?
        };
        let mut elements = Vec::new();
        for rec in self.flat_f(obj)?.try_iter()? {
            elements.push(self.items(&rec?, depth)?);
        }
        Ok(Item::Struct(StructArray {
            shape,
            fields,
            elements,
        }))
    }

    fn record_item(&self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<Item> {
        let fields: Vec<String> = obj.getattr("dtype")?.getattr("names")?.extract()?;
        let mut columns = Vec::with_capacity(fields.len());
        for f in &fields {
            let col = obj.get_item(f)?;
            if col.getattr("dtype")?.getattr("fields")?.is_truthy()? {
                columns.push(self.record_item(&col, depth + 1)?);
            } else {
                columns.push(self.array_item(&col, depth + 1)?);
            }
        }
        Ok(Item::Record(RecordArray { fields, columns }))
    }

    /// `Blob.pack_array`: numeric, bool, char (`S1`), `datetime64`, unicode and object arrays.
    fn array_item(&self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<Item> {
        let arr = obj.cast::<PyUntypedArray>()?;
        let shape: Vec<u64> = arr.shape().iter().map(|&d| d as u64).collect();
        let dtype = arr.dtype();
        let kind: char = dtype.getattr("kind")?.extract()?;
        let np = &self.numpy;
        let unknown = |dt: &Bound<'py, PyAny>| -> PyResult<PyErr> {
            Ok(invalid(format!(
                "Type {} is ambiguous or unknown",
                dt.str()?
            )))
        };
        let data = match kind {
            'c' => {
                let re = np.getattr("real")?.call1((obj,))?;
                let im = np.getattr("imag")?.call1((obj,))?;
                let (re, im) = (self.numeric(&re)?, self.numeric(&im)?);
                match (re, im) {
                    (Some(re), Some(im)) => ArrayData::Complex(Box::new(re), Box::new(im)),
                    _ => {
                        return Err(unknown(
                            &np.getattr("real")?.call1((obj,))?.getattr("dtype")?,
                        )?);
                    }
                }
            }
            'U' | 'O' => {
                let items = self.items(&self.flat_f(obj)?, depth)?;
                ArrayData::Object(items)
            }
            'S' if dtype.eq(np.getattr("dtype")?.call1(("c",))?)? => {
                // DataJoint writes char arrays as 16-bit code units, in C order.
                let codes = obj
                    .call_method1("view", (np.getattr("uint8")?,))?
                    .call_method0("tobytes")?;
                ArrayData::Char(
                    codes
                        .cast::<PyBytes>()?
                        .as_bytes()
                        .iter()
                        .map(|&b| u16::from(b))
                        .collect(),
                )
            }
            'M' => {
                let mut found = None;
                for (i, unit) in DATETIME64_UNITS.iter().enumerate() {
                    let want = np
                        .getattr("dtype")?
                        .call1((format!("datetime64[{unit}]"),))?;
                    if dtype.eq(want)? {
                        found = Some(i as u8);
                        break;
                    }
                }
                let unit = found.ok_or_else(|| unknown(dtype.as_any()).unwrap_or_else(|e| e))?;
                let ticks = obj.call_method1("view", ("int64",))?;
                let ticks = ticks.cast::<PyArrayDyn<i64>>()?;
                ArrayData::DateTime64 {
                    unit,
                    ticks: fortran_vec(ticks)?,
                }
            }
            _ => match self.numeric(obj)? {
                Some(d) => d,
                None => return Err(unknown(dtype.as_any())?),
            },
        };
        Array::new(shape, data)
            .map(Item::Array)
            .map_err(|e| invalid(e.to_string()))
    }

    /// The Fortran-order data of a numeric or bool array with a native-order dtype DataJoint
    /// knows, or `None`.
    fn numeric(&self, obj: &Bound<'py, PyAny>) -> PyResult<Option<ArrayData>> {
        fn get<'py, T: Element + Copy>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Vec<T>>> {
            obj.cast::<PyArrayDyn<T>>()
                .ok()
                .map(|a| fortran_vec(a))
                .transpose()
        }
        Ok(Some(if let Some(v) = get::<f64>(obj)? {
            ArrayData::F64(v)
        } else if let Some(v) = get::<f32>(obj)? {
            ArrayData::F32(v)
        } else if let Some(v) = get::<i64>(obj)? {
            ArrayData::I64(v)
        } else if let Some(v) = get::<u64>(obj)? {
            ArrayData::U64(v)
        } else if let Some(v) = get::<i32>(obj)? {
            ArrayData::I32(v)
        } else if let Some(v) = get::<u32>(obj)? {
            ArrayData::U32(v)
        } else if let Some(v) = get::<i16>(obj)? {
            ArrayData::I16(v)
        } else if let Some(v) = get::<u16>(obj)? {
            ArrayData::U16(v)
        } else if let Some(v) = get::<i8>(obj)? {
            ArrayData::I8(v)
        } else if let Some(v) = get::<u8>(obj)? {
            ArrayData::U8(v)
        } else if let Some(v) = get::<bool>(obj)? {
            ArrayData::Bool(v.into_iter().map(u8::from).collect())
        } else {
            return Ok(None);
        }))
    }
}

/// The elements in Fortran order: one `memcpy` when the array is Fortran-contiguous (or 1-D).
fn fortran_vec<T: Element + Copy>(a: &Bound<'_, PyArrayDyn<T>>) -> PyResult<Vec<T>> {
    if let Some(v) = read_view(a)? {
        return Ok(v);
    }
    // Unaligned, or strides that are not whole elements (a field of a packed record array):
    // let numpy gather the elements into fresh (aligned, Fortran-order) memory first.
    let kwargs = PyDict::new(a.py());
    kwargs.set_item("order", "F")?;
    kwargs.set_item("copy", true)?;
    let copy = a
        .py()
        .import("numpy")?
        .getattr("array")?
        .call((a,), Some(&kwargs))?;
    read_view(copy.cast::<PyArrayDyn<T>>()?)?
        .ok_or_else(|| invalid("cannot read the array's memory".into()))
}

/// The elements through a read-only view, copied under the GIL (before encoding releases it);
/// `None` when the memory is not a plain, aligned array of `T`.
fn read_view<T: Element + Copy>(a: &Bound<'_, PyArrayDyn<T>>) -> PyResult<Option<Vec<T>>> {
    let size = std::mem::size_of::<T>() as isize;
    let aligned = a.getattr("flags")?.getattr("aligned")?.is_truthy()?;
    if !aligned || a.strides().iter().any(|s| s % size != 0) {
        return Ok(None);
    }
    let ro = a
        .try_readonly()
        .map_err(|e| invalid(format!("cannot read the array: {e}")))?;
    let view = ro.as_array();
    let t = view.reversed_axes();
    Ok(Some(match t.as_slice() {
        Some(s) => s.to_vec(),
        None => t.iter().copied().collect(),
    }))
}
