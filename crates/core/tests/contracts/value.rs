//! `dj_core::value`: domain values and integer comparison.

use dj_core::value::{DomainValue, Value};

#[derive(Debug, Clone, PartialEq)]
struct Graph(Vec<u32>);

#[test]
fn domain_values_round_trip() {
    let v = Value::domain(Graph(vec![1, 2]));
    assert!(v.kind().contains("Graph"));
    assert_eq!(format!("{v:?}"), "Domain(Graph([1, 2]))");
    let Value::Domain(d) = v else {
        panic!("not domain")
    };
    let back: Graph = d.downcast().map_err(|_| ()).unwrap();
    assert_eq!(back, Graph(vec![1, 2]));
}

#[test]
fn downcast_to_wrong_type_gives_value_back() {
    let d = DomainValue::new(5_u8);
    let d = d.downcast::<String>().unwrap_err();
    assert_eq!(d.downcast::<u8>().unwrap(), 5);
}

#[test]
fn ints_compare_across_signedness() {
    assert_eq!(Value::Int(5), Value::UInt(5));
    assert_ne!(Value::Int(-1), Value::UInt(u64::MAX));
    assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
}
