//! Blob items to Python values, as DataJoint 2.3.5's `Blob.unpack` builds them.
//!
//! Numeric arrays take over the decoder's buffer (`PyArray::from_vec`, no copy) and are reshaped
//! in Fortran order as a view; everything numpy decides for DataJoint (object arrays, cells,
//! structs, record arrays, complex and char arrays) goes through the same numpy calls.

use dj_codec_blob::{Array, ArrayData, DATETIME64_UNITS, Item, Temporal};
use numpy::{Element, PyArray1};
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyComplex, PyDict, PyList, PySet, PyTuple, PyType};

use crate::blob_err;

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// What reading needs.
pub(crate) struct Ctx<'py> {
    py: Python<'py>,
    squeeze: bool,
    numpy: Bound<'py, PyModule>,
    cell: Bound<'py, PyAny>,
    struct_: Bound<'py, PyAny>,
}

impl<'py> Ctx<'py> {
    pub(crate) fn new(
        py: Python<'py>,
        squeeze: bool,
        cell: &Bound<'py, PyAny>,
        struct_: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        Ok(Ctx {
            py,
            squeeze,
            numpy: py.import("numpy")?,
            cell: cell.clone(),
            struct_: struct_.clone(),
        })
    }

    fn kw(&self, pairs: &[(&str, &str)]) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(self.py);
        for (k, v) in pairs {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// `a.reshape(shape, order="F")`.
    fn reshape_f(&self, a: &Bound<'py, PyAny>, shape: &[u64]) -> PyResult<Bound<'py, PyAny>> {
        let shape = PyTuple::new(self.py, shape)?;
        a.call_method("reshape", (shape,), Some(&self.kw(&[("order", "F")])?))
    }

    /// `Blob.squeeze`: only when unpacking with `squeeze=True`.
    fn squeeze(&self, a: Bound<'py, PyAny>, to_scalar: bool) -> PyResult<Bound<'py, PyAny>> {
        if !self.squeeze {
            return Ok(a);
        }
        let a = a.call_method0("squeeze")?;
        if to_scalar && a.getattr("ndim")?.extract::<usize>()? == 0 {
            return a.call_method0("item");
        }
        Ok(a)
    }

    /// The Python value of an item.
    ///
    /// `Item` drops its children without recursion (it implements `Drop`), so its contents are
    /// taken out through `&mut` rather than moved out by the match.
    pub(crate) fn value(&self, mut item: Item) -> PyResult<Bound<'py, PyAny>> {
        use std::mem::take;
        let py = self.py;
        Ok(match &mut item {
            Item::None => py.None().into_bound(py),
            Item::Bool(b) => (*b).into_bound_py_any(py)?,
            Item::Int(i) => match i.to_i64() {
                Some(v) => v.into_bound_py_any(py)?,
                None => {
                    let b = PyBytes::new(py, i.as_le_bytes());
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("byteorder", "little")?;
                    kwargs.set_item("signed", true)?;
                    py.get_type::<pyo3::types::PyInt>().call_method(
                        "from_bytes",
                        (b,),
                        Some(&kwargs),
                    )?
                }
            },
            Item::Float(f) => (*f).into_bound_py_any(py)?,
            Item::Complex(re, im) => PyComplex::from_doubles(py, *re, *im).into_any(),
            Item::Str(s) => take(s).into_bound_py_any(py)?,
            Item::Bytes(b) => PyBytes::new(py, b).into_any(),
            Item::Decimal(d) => DECIMAL
                .import(py, "decimal", "Decimal")?
                .call1((d.as_str(),))?,
            Item::Temporal(t) => self.temporal(*t)?,
            Item::Uuid(u) => {
                let kwargs = PyDict::new(py);
                kwargs.set_item("bytes", PyBytes::new(py, u.as_bytes()))?;
                UUID.import(py, "uuid", "UUID")?.call((), Some(&kwargs))?
            }
            Item::Tuple(v) => PyTuple::new(py, self.values(take(v))?)?.into_any(),
            Item::List(v) => PyList::new(py, self.values(take(v))?)?.into_any(),
            Item::Set(v) => PySet::new(py, self.values(take(v))?)?.into_any(),
            Item::Dict(pairs) => {
                let d = PyDict::new(py);
                for (k, v) in take(pairs) {
                    d.set_item(self.value(k)?, self.value(v)?)?;
                }
                d.into_any()
            }
            Item::Array(a) => self.array(Array {
                shape: take(&mut a.shape),
                data: take(&mut a.data),
            })?,
            Item::Cell(c) => {
                let n = c.items.len();
                let np = &self.numpy;
                let arr = np
                    .getattr("empty")?
                    .call((n,), Some(&self.kw(&[("dtype", "O")])?))?;
                if n == 0 {
                    return arr.call_method1("view", (&self.cell,));
                }
                let items = PyList::new(py, self.values(take(&mut c.items))?)?;
                arr.set_item(pyo3::types::PySlice::full(py), items)?;
                let arr = self.reshape_f(&arr, &c.shape)?;
                self.squeeze(arr, false)?
                    .call_method1("view", (&self.cell,))?
            }
            Item::Struct(s) => {
                let np = &self.numpy;
                if s.fields.is_empty() {
                    return np.getattr("array")?.call1((py.None(),));
                }
                let dtype = PyList::empty(py);
                for f in &s.fields {
                    dtype.append((f.as_str(), "O"))?;
                }
                let rows = PyList::empty(py);
                for element in take(&mut s.elements) {
                    rows.append(PyTuple::new(py, self.values(element)?)?)?;
                }
                let kwargs = PyDict::new(py);
                kwargs.set_item("dtype", dtype)?;
                let arr = np.getattr("array")?.call((rows,), Some(&kwargs))?;
                let arr = self.reshape_f(&arr, &s.shape)?;
                self.squeeze(arr, false)?
                    .call_method1("view", (&self.struct_,))?
            }
            Item::Record(r) => {
                let np = &self.numpy;
                if r.fields.is_empty() {
                    return np.getattr("array")?.call1((py.None(),));
                }
                let columns = self.values(take(&mut r.columns))?;
                let shape = columns
                    .first()
                    .ok_or_else(|| blob_err("record array without columns".into(), None))?
                    .getattr("shape")?;
                let dtype = PyList::empty(py);
                for (f, c) in r.fields.iter().zip(&columns) {
                    dtype.append((f.as_str(), c.getattr("dtype")?))?;
                }
                let dtype = np.getattr("dtype")?.call1((dtype,))?;
                let rec = np.getattr("empty")?.call1((shape, dtype))?;
                for (f, c) in r.fields.iter().zip(&columns) {
                    rec.set_item(f.as_str(), c)?;
                }
                rec.call_method1("view", (np.getattr("recarray")?,))?
            }
        })
    }

    fn values(&self, items: Vec<Item>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        items.into_iter().map(|it| self.value(it)).collect()
    }

    fn temporal(&self, t: Temporal) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let date = if t.date >= 0 {
            let d = t.date;
            Some(DATE.import(py, "datetime", "date")?.call1((
                d.div_euclid(10000),
                d.div_euclid(100).rem_euclid(100),
                d.rem_euclid(100),
            ))?)
        } else {
            None
        };
        let time = if t.time >= 0 {
            let v = t.time;
            Some(TIME.import(py, "datetime", "time")?.call1((
                v.div_euclid(10_000_000_000).rem_euclid(100),
                v.div_euclid(100_000_000).rem_euclid(100),
                v.div_euclid(1_000_000).rem_euclid(100),
                v.rem_euclid(1_000_000),
            ))?)
        } else {
            None
        };
        Ok(match (date, time) {
            (Some(d), Some(t)) => DATETIME
                .import(py, "datetime", "datetime")?
                .call_method1("combine", (d, t))?,
            (None, Some(t)) => t,
            (Some(d), None) => d,
            (None, None) => py.None().into_bound(py),
        })
    }

    /// A 1-D numpy array that owns `v` (no copy).
    fn owned<T: Element>(&self, v: Vec<T>) -> Bound<'py, PyAny> {
        PyArray1::from_vec(self.py, v).into_any()
    }

    /// The flat (not yet reshaped) numpy array of numeric data.
    fn flat(&self, data: ArrayData) -> PyResult<Bound<'py, PyAny>> {
        Ok(match data {
            ArrayData::Bool(v) => self.owned(v).call_method1("view", ("bool",))?,
            ArrayData::U8(v) => self.owned(v),
            ArrayData::I8(v) => self.owned(v),
            ArrayData::I16(v) => self.owned(v),
            ArrayData::U16(v) => self.owned(v),
            ArrayData::I32(v) => self.owned(v),
            ArrayData::U32(v) => self.owned(v),
            ArrayData::I64(v) => self.owned(v),
            ArrayData::U64(v) => self.owned(v),
            ArrayData::F32(v) => self.owned(v),
            ArrayData::F64(v) => self.owned(v),
            ArrayData::DateTime64 { unit, ticks } => {
                let unit = DATETIME64_UNITS
                    .get(usize::from(unit))
                    .ok_or_else(|| blob_err(format!("datetime64 unit {unit}"), None))?;
                self.owned(ticks)
                    .call_method1("view", (format!("datetime64[{unit}]"),))?
            }
            ArrayData::Complex(re, im) => {
                // `re + 1j * im`, with numpy's promotion rules, as DataJoint computes it.
                let re = self.flat(*re)?;
                let im = self.flat(*im)?;
                let j = PyComplex::from_doubles(self.py, 0.0, 1.0);
                re.add(j.mul(im)?)?
            }
            ArrayData::Char(_) | ArrayData::Object(_) => {
                return Err(blob_err("not a numeric array".into(), None));
            }
        })
    }

    fn array(&self, a: Array) -> PyResult<Bound<'py, PyAny>> {
        let np = &self.numpy;
        let Array { shape, data } = a;
        let arr = match data {
            ArrayData::Object(items) => {
                let list = PyList::new(self.py, self.values(items)?)?;
                let arr = np
                    .getattr("array")?
                    .call((list,), Some(&self.kw(&[("dtype", "O")])?))?;
                self.reshape_f(&arr, &shape)?
            }
            ArrayData::Char(units) => {
                // DataJoint reads every other byte (the low byte of each code unit) as `S1`,
                // then `astype("U1")`; a row vector becomes one string.
                let low: Vec<u8> = units.iter().map(|&u| (u & 0xFF) as u8).collect();
                let chars = self
                    .owned(low)
                    .call_method1("view", ("S1",))?
                    .call_method1("astype", ("U1",))?;
                let row = shape.len() == 1 || (shape.len() == 2 && shape[0] == 1);
                if row {
                    let compact = chars.call_method0("squeeze")?;
                    let data = if compact.getattr("ndim")?.extract::<usize>()? == 0 {
                        compact
                    } else {
                        let joined = ""
                            .into_bound_py_any(self.py)?
                            .call_method1("join", (compact,))?;
                        np.getattr("array")?.call1((joined,))?
                    };
                    self.reshape_f(&data, &[1])?
                } else {
                    self.reshape_f(&chars, &shape)?
                }
            }
            numeric => {
                let single = numeric.len() == 1;
                let mut flat = self.flat(numeric)?;
                if single {
                    // DataJoint reads one element as a numpy scalar and reshapes that: a 0-d
                    // array comes back as a numpy scalar.
                    flat = flat.get_item(0)?;
                }
                self.reshape_f(&flat, &shape)?
            }
        };
        self.squeeze(arr, true)
    }
}
