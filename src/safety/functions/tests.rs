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

#[test]
fn a_plain_operator_is_judged_as_all_its_candidates_would_be() {
    let b = |oid, name, vol| f(oid, name, "pg_catalog", vol, "internal", Origin::Builtin);
    let cat = Catalog::new(
        vec![
            b(11, "int4pl", 'i'),
            b(12, "int4eq", 'i'),
            b(13, "texteq", 's'),
            b(14, "random", 'v'),
            b(15, "pg_read_file", 'v'),
            b(16, "table_to_xml", 's'),
            b(17, "nextval", 'v'),
            f(18, "my_eq", "public", 'v', "sql", Origin::User),
            f(
                19,
                "sim",
                "public",
                'i',
                "c",
                Origin::Extension("pg_trgm".into()),
            ),
            f(20, "hidden_eq", "hidden", 'v', "plpgsql", Origin::User),
        ],
        vec![
            ("+".into(), "pg_catalog".into(), 11),
            ("=".into(), "pg_catalog".into(), 12),
            ("=".into(), "pg_catalog".into(), 13),
            ("=".into(), "hidden".into(), 20),
            ("?".into(), "pg_catalog".into(), 14),
            ("!!".into(), "pg_catalog".into(), 15),
            ("##".into(), "pg_catalog".into(), 16),
            ("@".into(), "pg_catalog".into(), 17),
            ("===".into(), "pg_catalog".into(), 12),
            ("===".into(), "public".into(), 18),
            ("%".into(), "public".into(), 19),
            ("<>".into(), "pg_catalog".into(), 12),
            ("<>".into(), "pg_catalog".into(), 99),
        ],
        vec!["public".into()],
    );
    let mut plain: Vec<&str> = cat.plain_operators.iter().map(String::as_str).collect();
    plain.sort_unstable();
    // Off the search path, `hidden.=` does not make `=` other than plain; a missing function,
    // a user or extension function, an excluded or unlisted volatile built-in all do.
    assert_eq!(plain, ["+", "=", "?"]);
    // The same catalog without the shortcut judges every candidate.
    let mut slow = cat.clone();
    slow.plain_operators.clear();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let rule_sets = [
        Rules::new(&[], &[], &[], false),
        Rules::new(&[], &[], &s(&["int4eq"]), false),
        Rules::new(&[], &[], &s(&["pg_catalog.texteq"]), false),
        Rules::new(&[], &s(&["int4eq"]), &[], false),
        Rules::new(&[], &s(&["pg_read_file", "public.my_eq"]), &[], false),
        Rules::new(&s(&["pg_trgm"]), &[], &[], true),
    ];
    let ops = [
        "+",
        "=",
        "?",
        "!!",
        "##",
        "@",
        "===",
        "%",
        "<>",
        "pg_catalog.=",
        "hidden.=",
        "nosuch",
    ];
    for (r, rules) in rule_sets.iter().enumerate() {
        for op in ops {
            for strictness in [
                Strictness::Allowlist,
                Strictness::StoredCode,
                Strictness::Write,
            ] {
                assert_eq!(
                    check_operator(&cat, rules, &name(op), strictness),
                    check_operator(&slow, rules, &name(op), strictness),
                    "{op} under rules {r}, {strictness:?}"
                );
            }
            let found = Found {
                operators: vec![name(op)],
                ..Found::default()
            };
            assert_eq!(
                cat.only_reviewed_code(&found, rules),
                slow.only_reviewed_code(&found, rules),
                "{op} under rules {r}: reviewed code"
            );
        }
    }
}
