//! `dj_core::typespec`: the type-spec parser.

use dj_core::typespec::{CoreType, StoreRef, TypeSpec};

use proptest::prelude::*;

fn p(s: &str) -> TypeSpec {
    s.parse().unwrap()
}

#[test]
fn codec_specs() {
    assert_eq!(
        p("<blob>"),
        TypeSpec::Codec {
            name: "blob".into(),
            store: None
        }
    );
    assert_eq!(
        p("<blob@>"),
        TypeSpec::Codec {
            name: "blob".into(),
            store: Some(StoreRef::Default)
        }
    );
    assert_eq!(
        p("<attach@cold-1>"),
        TypeSpec::Codec {
            name: "attach".into(),
            store: Some(StoreRef::Named("cold-1".into()))
        }
    );
}

#[test]
fn malformed_specs_quote_the_spec_and_say_why() {
    for (spec, why) in [
        ("<blob", "codec spec must be written"),
        ("<@x>", "codec name is missing"),
        ("<blob@a@b>", "more than one `@`"),
        ("<>", "codec name is empty"),
        ("varchar(-1)", "non-negative integer"),
        ("varchar", "needs a length"),
        ("varchar(0)", "1 to 65535"),
        ("datetime(7)", "0 to 6"),
        ("decimal(5,6)", "at most the precision"),
        ("int32(3)", "takes no arguments"),
        ("enum()", "at least one value"),
        ("enum(a)", "must be quoted"),
        ("potato", "not a core type"),
        ("", "empty"),
        ("<bl ob>", "not a valid codec name"),
        ("<blob@a b>", "not a valid store name"),
    ] {
        let err = spec.parse::<TypeSpec>().unwrap_err().to_string();
        assert!(err.contains(&format!("`{spec}`")), "{err}");
        assert!(err.contains(why), "{spec}: {err}");
    }
}

#[test]
fn core_types() {
    assert_eq!(
        p("datetime(3)"),
        TypeSpec::Core(CoreType::DateTime(Some(3)))
    );
    assert_eq!(p("decimal(6,2)"), TypeSpec::Core(CoreType::Decimal(6, 2)));
    assert_eq!(p("varchar(64)").to_string(), "varchar(64)");
    let e = p("enum('F', 'M', 'U')");
    let TypeSpec::Core(e) = e else { panic!() };
    assert_eq!(e.to_string(), "enum('F', 'M', 'U')");
}

#[test]
fn native_types_pass_through() {
    assert_eq!(p("int unsigned"), TypeSpec::Native("int unsigned".into()));
    assert_eq!(p("longblob"), TypeSpec::Native("longblob".into()));
    assert_eq!(p("decimal(5,2)"), TypeSpec::Core(CoreType::Decimal(5, 2)));
    assert_eq!(p("decimal(5)"), TypeSpec::Core(CoreType::Decimal(5, 0)));
    for ok in [
        "tinyint",
        "INT(11) UNSIGNED",
        "bigint unsigned zerofill",
        "int unsigned auto_increment",
        "integer",
        "serial",
        "mediumint(8)",
        "numeric",
        "numeric(10, 3)",
        "float",
        "float(8,3) unsigned",
        "double(22,0)",
        "real",
        "time",
        "time(6)",
        "timestamp(3)",
        "year",
        "blob",
        "tinyblob",
        "mediumblob",
        "text",
        "longtext",
        "  int\tunsigned  ",
        "decimal(10,3) unsigned",
        "decimal unsigned zerofill",
        "decimal",
    ] {
        assert!(matches!(p(ok), TypeSpec::Native(_)), "{ok}");
    }
}

#[test]
fn native_types_are_checked_in_full() {
    for bad in [
        "int ); DROP TABLE x; CREATE TABLE y (a int, q decimal(5,2)",
        "int unsigned, zz int",
        "int -- comment",
        "int /* x */",
        "int unsigned unsigned",
        "int zerofill unsigned",
        "int(11",
        "int()",
        "int(a)",
        "int(1,2)",
        "float(1,2,3)",
        "time(1,2)",
        "text(5)",
        "longblob unsigned",
        "int default 5",
        "int not null",
        "int `x`",
        "int 'x'",
        "int \"x\"",
        "int\0",
        "int\nunsigned",
        "int\u{a0}unsigned",
        "int(99999999999)",
        "int(1e3)",
        "character varying(5)",
        "boolean",
        "set('a')",
        "varchar(5) binary",
        "decimal(5,2) signed",
        "decimal(5,2,1) unsigned",
    ] {
        let err = bad.parse::<TypeSpec>().unwrap_err().to_string();
        assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
    }
}

proptest! {
    #[test]
    fn codec_specs_round_trip(name in "[a-z_][a-z0-9_]{0,12}", store in proptest::option::of(proptest::option::of("[a-z0-9][a-z0-9_-]{0,8}"))) {
        let spec = TypeSpec::Codec {
            name,
            store: store.map(|s| s.map_or(StoreRef::Default, StoreRef::Named)),
        };
        prop_assert_eq!(spec.to_string().parse::<TypeSpec>().unwrap(), spec);
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,24}") {
        let _ = s.parse::<TypeSpec>();
    }

    #[test]
    fn native_types_hold_only_type_characters(s in "[a-z ()0-9,;'\"`#/*-]{0,32}") {
        if let Ok(TypeSpec::Native(n)) = s.parse::<TypeSpec>() {
            prop_assert!(
                n.chars().all(|c| c.is_ascii_alphanumeric() || " \t_(),".contains(c)),
                "{}", n
            );
        }
    }
}
