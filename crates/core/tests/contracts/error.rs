//! `dj_core::error`: sources kept, retryability from types.

use dj_core::error::{Error, has_transient_io, is_transient_io};

use std::error::Error as _;

#[test]
fn codec_errors_keep_their_source_through_with_attribute() {
    let cause = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad header");
    let e = Error::codec_source("blob", cause).with_attribute("signal");
    assert_eq!(
        e.to_string(),
        "codec <blob> (attribute `signal`): bad header"
    );
    let source = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(
        source.map(std::io::Error::kind),
        Some(std::io::ErrorKind::InvalidData)
    );
    assert!(!e.is_retryable());
    assert!(Error::codec("blob", "plain").source().is_none());
}

#[test]
fn transient_io_is_decided_by_kind_not_text() {
    assert!(is_transient_io(std::io::ErrorKind::TimedOut));
    assert!(!is_transient_io(std::io::ErrorKind::NotFound));
    let worded = std::io::Error::other("operation timed out");
    assert!(!has_transient_io(&worded));
    let store = Error::Store {
        store: "s".into(),
        operation: "get",
        path: "k".into(),
        retryable: false,
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "x",
        )),
    };
    assert!(has_transient_io(&store), "found in the source chain");
}
