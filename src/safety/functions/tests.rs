//! Unit tests of `functions.rs`, in a file of their own so that the module reads as one concern.

use super::*;

fn f(oid: u32, name: &str, schema: &str, vol: char, lang: &str, origin: Origin) -> Function {
    Function {
        oid,
        name: name.into(),
        schema: schema.into(),
        volatility: vol,
        language: lang.into(),
        origin,
    }
}

fn catalog() -> Catalog {
    Catalog::new(
        vec![
            f(1, "lower", "pg_catalog", 'i', "internal", Origin::Builtin),
            f(
                2,
                "pg_read_file",
                "pg_catalog",
                'v',
                "internal",
                Origin::Builtin,
            ),
            f(3, "random", "pg_catalog", 'v', "internal", Origin::Builtin),
            f(
                4,
                "table_to_xml",
                "pg_catalog",
                's',
                "internal",
                Origin::Builtin,
            ),
            f(
                5,
                "crosstab",
                "public",
                'v',
                "c",
                Origin::Extension("tablefunc".into()),
            ),
            f(
                6,
                "similarity",
                "public",
                'i',
                "c",
                Origin::Extension("pg_trgm".into()),
            ),
            f(7, "my_sql", "public", 'v', "sql", Origin::User),
            f(8, "my_plpgsql", "public", 'v', "plpgsql", Origin::User),
            f(9, "lower", "other", 'v', "plpgsql", Origin::User),
            f(
                10,
                "nextval",
                "pg_catalog",
                'v',
                "internal",
                Origin::Builtin,
            ),
            f(11, "int4pl", "pg_catalog", 'i', "internal", Origin::Builtin),
        ],
        vec![
            ("+".into(), "pg_catalog".into(), 11),
            ("###".into(), "public".into(), 2),
        ],
        vec!["public".into()],
    )
}

fn name(s: &str) -> QualName {
    match s.split_once('.') {
        Some((schema, n)) => QualName {
            schema: Some(schema.into()),
            name: n.into(),
        },
        None => QualName {
            schema: None,
            name: s.into(),
        },
    }
}

fn allow(s: &str) -> Result<(), CallProblem> {
    check_call(
        &catalog(),
        &Rules::new(&[], &[], &[], false),
        &name(s),
        Strictness::Allowlist,
    )
}

#[test]
fn the_allowlist_decides_per_origin() {
    assert!(allow("lower").is_ok(), "immutable built-in");
    assert!(allow("random").is_ok(), "reviewed volatile built-in");
    assert!(allow("similarity").is_ok(), "default extension");
    assert!(allow("my_sql").is_ok(), "user SQL function");
    for denied in [
        "pg_read_file",
        "table_to_xml",
        "crosstab",
        "my_plpgsql",
        "nextval",
    ] {
        assert!(
            matches!(allow(denied), Err(CallProblem::Denied { .. })),
            "{denied} must be refused"
        );
    }
    assert_eq!(allow("nosuch"), Err(CallProblem::Unknown("nosuch".into())));
}

#[test]
fn names_resolve_through_the_search_path_only() {
    // other.lower is procedural but not on the path: unqualified lower is the built-in.
    assert!(allow("lower").is_ok());
    assert!(matches!(
        allow("other.lower"),
        Err(CallProblem::Denied { .. })
    ));
    assert!(allow("pg_catalog.lower").is_ok());
}

#[test]
fn configuration_widens_and_narrows_the_allowlist() {
    let cat = catalog();
    let rules = Rules::new(
        &["tablefunc".into()],
        &["pg_read_file".into()],
        &["random".into()],
        true,
    );
    let ok = |s: &str| check_call(&cat, &rules, &name(s), Strictness::Allowlist).is_ok();
    assert!(ok("crosstab") && ok("pg_read_file") && ok("my_plpgsql"));
    assert!(!ok("random"));
}

#[test]
fn operators_are_judged_by_their_functions() {
    let cat = catalog();
    let rules = Rules::new(&[], &[], &[], false);
    assert!(check_operator(&cat, &rules, &name("+"), Strictness::Allowlist).is_ok());
    assert!(matches!(
        check_operator(&cat, &rules, &name("###"), Strictness::Allowlist),
        Err(CallProblem::Denied { .. })
    ));
}

#[test]
fn stored_code_may_use_nextval_and_writes_judge_only_user_code() {
    let cat = catalog();
    let rules = Rules::new(&[], &[], &[], false);
    assert!(check_call(&cat, &rules, &name("nextval"), Strictness::StoredCode).is_ok());
    assert!(check_call(&cat, &rules, &name("pg_read_file"), Strictness::Write).is_ok());
    assert!(check_call(&cat, &rules, &name("my_plpgsql"), Strictness::Write).is_err());
    assert!(check_call(&cat, &rules, &name("nosuch"), Strictness::Write).is_ok());
}

#[test]
fn lists_name_functions_bare_or_qualified() {
    let lower = f(1, "lower", "pg_catalog", 'i', "internal", Origin::Builtin);
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| (*s).to_owned())
            .collect::<HashSet<String>>()
    };
    assert!(!Rules::named(&set(&[]), &lower));
    assert!(Rules::named(&set(&["lower"]), &lower));
    assert!(Rules::named(&set(&["other", "pg_catalog.lower"]), &lower));
    // Neither another schema's function of that name nor a prefix of the name matches.
    assert!(!Rules::named(&set(&["public.lower"]), &lower));
    assert!(!Rules::named(
        &set(&["pg_catalog.low", "pg_catalog.lowerx"]),
        &lower
    ));
    assert!(!Rules::named(
        &set(&["pg_cataloglower", "pg_catalog"]),
        &lower
    ));
}

#[test]
fn operator_candidates_follow_the_search_path_and_fail_closed_on_a_missing_function() {
    let cat = Catalog::new(
        vec![
            f(11, "int4pl", "pg_catalog", 'i', "internal", Origin::Builtin),
            f(12, "my_plus", "public", 'v', "plpgsql", Origin::User),
            f(13, "hidden_plus", "hidden", 'v', "plpgsql", Origin::User),
        ],
        vec![
            ("+".into(), "pg_catalog".into(), 11),
            ("+".into(), "public".into(), 12),
            ("+".into(), "hidden".into(), 13),
            ("@@@".into(), "public".into(), 99),
            ("~~~".into(), "hidden".into(), 13),
        ],
        vec!["public".into()],
    );
    let oids = |name: &str| {
        cat.operator_candidates(&self::name(name))
            .map(|c| c.iter().map(|f| f.oid).collect::<Vec<_>>())
    };
    // Unqualified: pg_catalog and the search path, not other schemas.
    assert_eq!(oids("+"), Some(vec![11, 12]));
    // Qualified: that schema only, on the path or not.
    assert_eq!(oids("hidden.+"), Some(vec![13]));
    assert_eq!(oids("pg_catalog.+"), Some(vec![11]));
    // A visible operator whose function is missing cannot be judged; one off the path is not
    // visible; an unknown one is unknown.
    assert_eq!(oids("@@@"), None);
    assert_eq!(oids("~~~"), None);
    assert_eq!(oids("###"), None);
}
