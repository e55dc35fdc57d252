//! Blobs written by MATLAB (datajoint-matlab's mym): Rust reads them as MATLAB meant them and
//! writes back the identical bytes.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dj_codec_blob::*;

fn vectors() -> Vec<(String, Vec<u8>)> {
    let doc: serde_json::Value = serde_json::from_str(include_str!("golden/matlab.json")).unwrap();
    doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let h = v["hex"].as_str().unwrap();
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            (v["name"].as_str().unwrap().to_string(), bytes)
        })
        .collect()
}

fn array(item: &Item) -> &Array {
    match item {
        Item::Array(a) => a,
        other => panic!("expected an array, got {other:?}"),
    }
}

#[test]
fn matlab_blobs_decode_as_matlab_meant_and_reencode_identically() {
    let v = vectors();
    assert_eq!(v.len(), 7);
    let items: Vec<Item> = v
        .iter()
        .map(|(name, b)| decode(b).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    for ((name, bytes), item) in v.iter().zip(&items) {
        assert_eq!(&bytes[..4], b"mYm\0", "{name}");
        let again = encode_with(
            item,
            EncodeOptions {
                compression: Compression::Compat,
            },
        )
        .unwrap();
        assert_eq!(&again, bytes, "{name}: re-encoding differs");
    }

    // 'character string': a 1x16 char array.
    let s = array(&items[0]);
    assert_eq!(s.shape, [1, 16]);
    assert_eq!(String::try_from(&items[0]).unwrap(), "character string");

    // 1:15:180 as a 1x12 double row.
    let a = array(&items[1]);
    assert_eq!(a.shape, [1, 12]);
    assert_eq!(
        a.data,
        ArrayData::F64((0..12).map(|i| f64::from(1 + 15 * i)).collect())
    );

    // {'string1' 'string2'}: a 1x2 cell of char rows.
    let Item::Cell(c) = &items[2] else {
        panic!("not a cell: {:?}", items[2])
    };
    assert_eq!(c.shape, [1, 2]);
    let strings: Vec<String> = c
        .items
        .iter()
        .map(|i| String::try_from(i).unwrap())
        .collect();
    assert_eq!(strings, ["string1", "string2"]);

    // struct('a', {1,2}, 'b', {struct('c', magic(3)), struct('C', magic(5))}): 1x2, fields a, b.
    let Item::Struct(st) = &items[3] else {
        panic!("not a struct")
    };
    assert_eq!(st.shape, [1, 2]);
    assert_eq!(st.fields, ["a", "b"]);
    assert_eq!(array(&st.elements[0][0]).data, ArrayData::F64(vec![1.0]));
    assert_eq!(array(&st.elements[1][0]).data, ArrayData::F64(vec![2.0]));
    let Item::Struct(inner) = &st.elements[1][1] else {
        panic!("b(2) is not a struct")
    };
    assert_eq!(inner.fields, ["C"]);
    let magic5 = array(&inner.elements[0][0]);
    assert_eq!(magic5.shape, [5, 5]);
    // magic(5) has row, column and diagonal sums of 65.
    let ArrayData::F64(m) = &magic5.data else {
        panic!()
    };
    for col in 0..5 {
        assert_eq!(m[col * 5..col * 5 + 5].iter().sum::<f64>(), 65.0);
    }
    let Item::Struct(inner3) = &st.elements[0][1] else {
        panic!()
    };
    assert_eq!(inner3.fields, ["c"]);
    assert_eq!(array(&inner3.elements[0][0]).shape, [3, 3]);

    // reshape(1:24, [2,3,4]) as double and as uint8, column-major.
    let d = array(&items[4]);
    assert_eq!(d.shape, [2, 3, 4]);
    assert_eq!(d.data, ArrayData::F64((1..=24).map(f64::from).collect()));
    let u = array(&items[5]);
    assert_eq!(u.data, ArrayData::U8((1..=24).collect()));

    // fftn(reshape(1:24, [2,3,4])): complex 2x3x4 whose first element is sum(1:24) = 300.
    let z = array(&items[6]);
    assert_eq!(z.shape, [2, 3, 4]);
    let ArrayData::Complex(re, im) = &z.data else {
        panic!("not complex")
    };
    let (ArrayData::F64(re), ArrayData::F64(im)) = (&**re, &**im) else {
        panic!()
    };
    assert_eq!((re[0], im[0]), (300.0, 0.0));
    assert_eq!(re.len(), 24);
}
