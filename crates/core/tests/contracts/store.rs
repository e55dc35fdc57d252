//! `dj_core::store`: keys and ranges.

use dj_core::store::{GetRange, StorePath};

#[test]
fn paths_cannot_escape() {
    for bad in [
        "", "/a", "a/../b", "..", "a/./b", "a//b", "a/", "a\\b", "a\0b", "a\nb",
    ] {
        assert!(StorePath::parse(bad).is_err(), "{bad:?} accepted");
    }
    for good in ["a", "a b/ü ñ/x.npy", "_hash/s/ab/abc", "a=1/b=%2F"] {
        assert_eq!(StorePath::parse(good).unwrap().as_str(), good);
    }
}

#[test]
fn starts_with_is_segment_wise() {
    let a = StorePath::parse("_schema/s/t").unwrap();
    assert!(StorePath::parse("_schema/s/t/x").unwrap().starts_with(&a));
    assert!(!StorePath::parse("_schema/s/tt").unwrap().starts_with(&a));
    assert!(a.starts_with(&a));
}

#[test]
fn ranges_resolve() {
    assert_eq!(GetRange::Bounded(2..5).resolve(10, "p").unwrap(), 2..5);
    assert_eq!(GetRange::Bounded(2..50).resolve(10, "p").unwrap(), 2..10);
    assert_eq!(GetRange::Suffix(3).resolve(10, "p").unwrap(), 7..10);
    assert_eq!(GetRange::Offset(4).resolve(10, "p").unwrap(), 4..10);
    assert!(GetRange::Offset(11).resolve(10, "p").is_err());
    assert_eq!(GetRange::Offset(0).resolve(0, "p").unwrap(), 0..0);
}
