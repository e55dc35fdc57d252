//! The blob decoder must never panic, hang or over-allocate, whatever the bytes; and whatever it
//! accepts must re-encode to bytes that decode to the same item.
#![no_main]

use dj_codec_blob::{Compression, DecodeOptions, EncodeOptions, decode, decode_with, encode_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = decode(data) {
        if let Ok(again) = encode_with(&item, EncodeOptions { compression: Compression::None }) {
            let back = decode(&again).expect("re-encoded blob must decode");
            // NaN payloads compare unequal; compare through a second encoding instead.
            let twice = encode_with(&back, EncodeOptions { compression: Compression::None }).expect("encode");
            assert_eq!(again, twice, "re-encoding is not stable");
        }
    }
    let _ = decode_with(data, DecodeOptions { legacy_32bit_dims: true, ..DecodeOptions::default() });
});
