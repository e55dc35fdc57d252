//! Every built-in codec and protocol of the enabled features is registered.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

#[test]
fn every_enabled_plugin_is_registered() {
    datajoint::check_registry().unwrap();
    let registry = datajoint::Registry::global();
    let codecs = registry.list_codecs();
    for name in datajoint::expected_codecs() {
        assert!(
            codecs.iter().any(|c| c == name),
            "codec {name} missing from {codecs:?}"
        );
    }
    let protocols = registry.list_protocols();
    for name in datajoint::expected_protocols() {
        assert!(
            protocols.iter().any(|p| p == name),
            "protocol {name} missing from {protocols:?}"
        );
    }
    assert!(!datajoint::expected_protocols().is_empty());
}
