"""Hypothesis: for generated values, dj_rs packs DataJoint's bytes and unpacks DataJoint's values."""

import datetime

import numpy as np
from conftest import check_like_datajoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float32", "float64", "complex64", "complex128", "U3", "M8[D]", "M8[s]", "M8[ns]"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=True),
    st.complex_numbers(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.decimals(allow_nan=True),
    st.uuids(),
    st.dates(),
    st.times(),
    st.datetimes(min_value=datetime.datetime(1, 1, 1)),
)

arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(
        np.dtype(dt),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        elements=hnp.from_dtype(np.dtype(dt), allow_nan=True) if dt[0] in "fc" else None,
    )
)
numpy_scalars = st.sampled_from(DTYPES[:13]).flatmap(lambda dt: hnp.from_dtype(np.dtype(dt)).map(np.dtype(dt).type))
object_arrays = st.lists(scalars, max_size=5).map(lambda xs: np.array(xs + [None], dtype=object)[:-1])
keys = st.one_of(st.integers(), st.text(max_size=5), st.tuples(st.integers()))

values = st.recursive(
    st.one_of(scalars, arrays, numpy_scalars, object_arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
        st.sets(keys, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_generated_values_like_datajoint(value):
    check_like_datajoint(value)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["float64", "int16", "uint8", "complex128"]).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=1, max_dims=2, min_side=20, max_side=60))
))
def test_generated_large_arrays_like_datajoint(value):
    """Big enough to compress: the ZL123 envelope is byte-identical too."""
    check_like_datajoint(value)
