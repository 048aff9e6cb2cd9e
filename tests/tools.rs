//! pg_schema, pg_admin and pg_monitor, the resources and the prompts, through real MCP clients
//! against a realistic fixture (several schemas, foreign keys both ways, composite and partial
//! indexes, checks, an exclusion constraint, a trigger, a partitioned table, views, a
//! function, an enum, mixed-case names and comments), with the database state verified over a
//! separate connection (issue #5).

mod common;

use std::time::Duration;

use common::{ERAS, Era, McpClient, TestApp, spawn_app, wait_until};
use rmcp::model::{ErrorCode, GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

const FIXTURE: &str = r#"
CREATE SCHEMA app;
CREATE SCHEMA billing;
COMMENT ON SCHEMA app IS 'Application data';
CREATE TYPE app.order_status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE app.customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    region text NOT NULL DEFAULT 'eu',
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE app.customers IS 'People who order';
COMMENT ON COLUMN app.customers.email IS 'Login e-mail, unique';
CREATE INDEX customers_region_created_idx ON app.customers (region, created_at DESC);
CREATE TABLE app."Order" (
    id serial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES app.customers (id) ON DELETE CASCADE,
    status app.order_status NOT NULL DEFAULT 'new',
    amount numeric(12,2) NOT NULL CONSTRAINT amount_positive CHECK (amount > 0),
    note text
);
COMMENT ON TABLE app."Order" IS 'One order; mixed-case name on purpose';
CREATE INDEX order_open_idx ON app."Order" (customer_id) WHERE status <> 'shipped';
CREATE TABLE billing.invoices (
    id serial PRIMARY KEY,
    order_id int NOT NULL REFERENCES app."Order" (id),
    total numeric(12,2) NOT NULL,
    issued_on date NOT NULL DEFAULT current_date,
    CONSTRAINT total_not_negative CHECK (total >= 0)
);
CREATE TABLE billing.rate_periods (
    id int PRIMARY KEY,
    valid daterange NOT NULL,
    CONSTRAINT no_overlap EXCLUDE USING gist (valid WITH &&)
);
CREATE SEQUENCE billing.invoice_number START 1000;
CREATE FUNCTION app.touch_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := coalesce(NEW.note, ''); RETURN NEW; END $$;
CREATE TRIGGER order_touch BEFORE INSERT OR UPDATE ON app."Order"
    FOR EACH ROW EXECUTE FUNCTION app.touch_note();
CREATE TABLE app.events (
    id bigint NOT NULL,
    happened_at date NOT NULL,
    kind text,
    PRIMARY KEY (id, happened_at)
) PARTITION BY RANGE (happened_at);
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW app.open_orders AS
    SELECT o.id, c.email, o.amount FROM app."Order" o JOIN app.customers c ON c.id = o.customer_id
    WHERE o.status <> 'shipped';
COMMENT ON VIEW app.open_orders IS 'Orders not yet shipped';
CREATE FUNCTION billing.order_total(p_order int) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(total), 0) FROM billing.invoices WHERE order_id = p_order $$;
COMMENT ON FUNCTION billing.order_total(int) IS 'Sum of invoices for one order';
INSERT INTO app.customers (email, name, region)
    SELECT 'c' || g || '@example.com', 'Customer ' || g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END
    FROM generate_series(1, 50) g;
INSERT INTO app."Order" (customer_id, amount) SELECT 1 + (g % 50), g FROM generate_series(1, 200) g;
INSERT INTO billing.invoices (order_id, total) SELECT g, g * 2 FROM generate_series(1, 100) g;
INSERT INTO app.events VALUES (1, '2025-06-01', 'a'), (2, '2026-02-01', 'b'), (3, '2026-03-01', 'c');
CREATE MATERIALIZED VIEW billing.revenue_by_region AS
    SELECT c.region, sum(i.total) AS revenue FROM billing.invoices i
    JOIN app."Order" o ON o.id = i.order_id JOIN app.customers c ON c.id = o.customer_id
    GROUP BY c.region;
ANALYZE;
"#;

async fn app_with_fixture() -> TestApp {
    let app = spawn_app().await;
    app.exec(FIXTURE).await;
    app
}

/// The item of a list whose fields match all of `want`.
fn find<'a>(items: &'a Value, want: &[(&str, &str)]) -> Option<&'a Value> {
    items
        .as_array()?
        .iter()
        .find(|i| want.iter().all(|(k, v)| i[*k] == *v))
}

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}.{}",
                i["schema"].as_str().unwrap_or(""),
                i["name"].as_str().unwrap()
            )
        })
        .collect()
}

async fn list(c: &McpClient, args: Value) -> Value {
    let mut a = json!({"action": "list"});
    a.as_object_mut()
        .unwrap()
        .extend(args.as_object().unwrap().clone());
    c.ok("pg_schema", a).await
}

async fn describe(c: &McpClient, name: &str) -> Value {
    c.ok("pg_schema", json!({"action": "describe", "name": name}))
        .await
}

async fn exists(app: &TestApp, relation: &str) -> bool {
    app.scalar_i64(&format!(
        "SELECT count(*) FROM pg_class WHERE oid = to_regclass('{relation}')"
    ))
    .await
        == 1
}

/// Wait until PostgreSQL's cumulative statistics include our deletes from `table`: backends
/// flush their counters up to a second late, and a late flush would land on top of what
/// VACUUM or ANALYZE just reported.
async fn wait_for_stats(app: &TestApp, table: &str, deletes: i64) {
    let sql = format!(
        "SELECT coalesce((SELECT n_tup_del FROM pg_stat_all_tables WHERE relid = '{table}'::regclass), 0)"
    );
    wait_until(
        "statistics to be flushed",
        Duration::from_secs(15),
        async || app.scalar_i64(&sql).await >= deletes,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// pg_schema list
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn list_tables_shows_row_estimates_and_sizes_and_hides_system_schemas() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let r = list(&c, json!({})).await;
    assert_eq!(r["target"], "table");
    let items = &r["items"];
    let got = names(items);
    for want in [
        "app.customers",
        "app.Order",
        "app.events",
        "app.events_2025",
        "app.events_2026",
        "billing.invoices",
        "billing.rate_periods",
    ] {
        assert!(
            got.contains(&want.to_owned()),
            "{want} missing from {got:?}"
        );
    }
    assert!(
        got.iter().all(|n| !n.starts_with("pg_catalog.")
            && !n.starts_with("information_schema.")
            && !n.starts_with("coldquery.")),
        "{got:?}"
    );
    assert_eq!(r["total"], got.len());
    assert_eq!(r["has_more"], false);
    let customers = find(items, &[("schema", "app"), ("name", "customers")]).unwrap();
    assert_eq!(customers["row_estimate"], 50);
    assert_eq!(customers["kind"], "table");
    assert_eq!(customers["comment"], "People who order");
    assert!(customers["total_bytes"].as_i64().unwrap() > 8192);
    assert!(customers["total_size"].as_str().unwrap().ends_with("kB"));
    let order = find(items, &[("name", "Order")]).unwrap();
    assert_eq!(order["row_estimate"], 200);
    // A partitioned table's rows and size are its partitions'.
    let events = find(items, &[("name", "events")]).unwrap();
    assert_eq!(events["kind"], "partitioned_table");
    assert_eq!(events["row_estimate"], 3);
    assert!(events["total_bytes"].as_i64().unwrap() > 0);
    let p = find(items, &[("name", "events_2026")]).unwrap();
    assert_eq!(p["partition_of"], "app.events");
    assert_eq!(p["row_estimate"], 2);

    let sys = list(
        &c,
        json!({"include_system": true, "schema": "pg_catalog", "pattern": "pg_clas%"}),
    )
    .await;
    assert_eq!(names(&sys["items"]), vec!["pg_catalog.pg_class"]);
    app.finish().await;
}

#[tokio::test]
async fn list_pages_with_pattern_limit_and_offset() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Stateless).await;
    let all = list(&c, json!({"schema": "app"})).await;
    let all_names = names(&all["items"]);
    assert_eq!(
        all_names,
        vec![
            "app.Order",
            "app.customers",
            "app.events",
            "app.events_2025",
            "app.events_2026"
        ]
    );
    // Page through two at a time: the pages add up to the whole list, in order.
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let p = list(&c, json!({"schema": "app", "limit": 2, "offset": offset})).await;
        assert_eq!(p["total"], 5);
        assert_eq!(p["limit"], 2);
        assert_eq!(p["offset"], offset);
        paged.extend(names(&p["items"]));
        if p["has_more"] == false {
            assert!(p.get("next_offset").is_none());
            break;
        }
        assert_eq!(p["count"], 2);
        offset = p["next_offset"].as_u64().unwrap();
    }
    assert_eq!(paged, all_names);
    // pattern is LIKE, bound as a parameter (a quote in it is just a character).
    let ev = list(&c, json!({"pattern": "events%"})).await;
    assert_eq!(
        names(&ev["items"]),
        vec!["app.events", "app.events_2025", "app.events_2026"]
    );
    let none = list(&c, json!({"pattern": "x' OR '1'='1"})).await;
    assert_eq!(none["count"], 0);
    assert_eq!(none["total"], 0);
    // An unquoted schema filter folds to lower case, as in SQL.
    let folded = list(&c, json!({"schema": "BILLING"})).await;
    assert_eq!(
        names(&folded["items"]),
        vec!["billing.invoices", "billing.rate_periods"]
    );
    // The cap is 1000; 0 and unknown targets are refused.
    let big = list(&c, json!({"limit": 5000})).await;
    assert_eq!(big["limit"], 1000);
    c.err(
        "pg_schema",
        json!({"action": "list", "limit": 0}),
        "invalid_input",
    )
    .await;
    let e = c
        .err(
            "pg_schema",
            json!({"action": "list", "target": "tablez"}),
            "invalid_input",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("materialized_view"),
        "{e}"
    );
    let e = c
        .err(
            "pg_schema",
            json!({"action": "list", "targte": "table"}),
            "invalid_input",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("targte"), "{e}");
    app.finish().await;
}

#[tokio::test]
async fn list_covers_every_target() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let t = |target: &str| json!({"target": target});

    let schemas = list(&c, t("schema")).await;
    let app_schema = find(&schemas["items"], &[("name", "app")]).unwrap();
    assert_eq!(app_schema["comment"], "Application data");
    assert_eq!(app_schema["tables"], 5);
    assert!(find(&schemas["items"], &[("name", "billing")]).is_some());
    assert!(find(&schemas["items"], &[("name", "pg_catalog")]).is_none());
    assert!(find(&schemas["items"], &[("name", "coldquery")]).is_none());

    let views = list(&c, t("view")).await;
    assert_eq!(names(&views["items"]), vec!["app.open_orders"]);
    assert_eq!(views["items"][0]["comment"], "Orders not yet shipped");

    let mv = list(&c, t("materialized_view")).await;
    assert_eq!(names(&mv["items"]), vec!["billing.revenue_by_region"]);
    assert_eq!(mv["items"][0]["populated"], true);
    assert_eq!(mv["items"][0]["row_estimate"], 2);

    let f = list(&c, t("function")).await;
    assert_eq!(
        names(&f["items"]),
        vec!["app.touch_note", "billing.order_total"]
    );
    let total = find(&f["items"], &[("name", "order_total")]).unwrap();
    assert_eq!(total["arguments"], "p_order integer");
    assert_eq!(total["result"], "numeric");
    assert_eq!(total["volatility"], "stable");
    assert_eq!(total["language"], "sql");
    assert_eq!(total["comment"], "Sum of invoices for one order");
    assert_eq!(
        find(&f["items"], &[("name", "touch_note")]).unwrap()["result"],
        "trigger"
    );

    let seqs = list(&c, t("sequence")).await;
    let owned = find(&seqs["items"], &[("name", "Order_id_seq")]).unwrap();
    assert_eq!(owned["owned_by"], "app.Order.id");
    assert_eq!(owned["data_type"], "integer");
    let free = find(&seqs["items"], &[("name", "invoice_number")]).unwrap();
    assert_eq!(free["owned_by"], Value::Null);

    let idx = list(&c, json!({"target": "index", "schema": "app"})).await;
    let partial = find(&idx["items"], &[("name", "order_open_idx")]).unwrap();
    assert_eq!(partial["partial"], true);
    assert_eq!(partial["table"], "Order");
    assert!(
        partial["definition"]
            .as_str()
            .unwrap()
            .contains("WHERE (status <> 'shipped'"),
        "{partial}"
    );
    let composite = find(&idx["items"], &[("name", "customers_region_created_idx")]).unwrap();
    assert_eq!(composite["partial"], false);
    assert!(
        composite["definition"]
            .as_str()
            .unwrap()
            .ends_with("(region, created_at DESC)")
    );
    assert_eq!(
        find(&idx["items"], &[("name", "customers_pkey")]).unwrap()["primary"],
        true
    );

    let trg = list(&c, t("trigger")).await;
    assert_eq!(trg["total"], 1, "internal FK triggers are left out: {trg}");
    assert_eq!(trg["items"][0]["name"], "order_touch");
    assert_eq!(trg["items"][0]["table"], "Order");
    assert_eq!(trg["items"][0]["function"], "app.touch_note()");

    let cons = list(&c, json!({"target": "constraint", "schema": "billing"})).await;
    let check = find(&cons["items"], &[("name", "total_not_negative")]).unwrap();
    assert_eq!(check["type"], "check");
    assert_eq!(check["definition"], "CHECK (total >= 0::numeric)");
    assert_eq!(
        find(&cons["items"], &[("name", "no_overlap")]).unwrap()["type"],
        "exclusion"
    );
    assert_eq!(
        find(&cons["items"], &[("name", "invoices_order_id_fkey")]).unwrap()["type"],
        "foreign_key"
    );

    // plpgsql lives in pg_catalog: a system extension.
    let ext = list(&c, t("extension")).await;
    assert_eq!(ext["total"], 0);
    let ext = list(&c, json!({"target": "extension", "include_system": true})).await;
    let plpgsql = find(&ext["items"], &[("name", "plpgsql")]).unwrap();
    assert_eq!(plpgsql["schema"], "pg_catalog");
    assert!(plpgsql["version"].is_string());

    let types = list(&c, t("type")).await;
    assert_eq!(names(&types["items"]), vec!["app.order_status"]);
    assert_eq!(types["items"][0]["kind"], "enum");
    assert_eq!(
        types["items"][0]["labels"],
        json!(["new", "paid", "shipped"])
    );
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// pg_schema describe
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn describe_shows_columns_keys_both_ways_constraints_indexes_and_triggers() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let d = describe(&c, "app.\"Order\"").await;
    assert_eq!(d["kind"], "table");
    assert_eq!(d["schema"], "app");
    assert_eq!(d["name"], "Order");
    assert_eq!(d["comment"], "One order; mixed-case name on purpose");
    let cols = d["columns"].as_array().unwrap();
    let col_names: Vec<&str> = cols.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        col_names,
        vec!["id", "customer_id", "status", "amount", "note"]
    );
    assert_eq!(cols[0]["type"], "integer");
    assert_eq!(cols[0]["nullable"], false);
    assert_eq!(
        cols[0]["default"],
        "nextval('app.\"Order_id_seq\"'::regclass)"
    );
    assert_eq!(cols[2]["type"], "app.order_status");
    assert_eq!(cols[2]["default"], "'new'::app.order_status");
    assert_eq!(cols[3]["type"], "numeric(12,2)");
    assert_eq!(cols[4]["nullable"], true);
    assert_eq!(d["primary_key"]["name"], "Order_pkey");
    assert_eq!(d["primary_key"]["columns"], json!(["id"]));
    // Outgoing foreign key…
    let fks = d["foreign_keys"].as_array().unwrap();
    assert_eq!(fks.len(), 1);
    assert_eq!(fks[0]["columns"], json!(["customer_id"]));
    assert_eq!(
        fks[0]["references"],
        json!({"schema": "app", "table": "customers", "columns": ["id"]})
    );
    assert_eq!(fks[0]["on_delete"], "cascade");
    assert_eq!(fks[0]["on_update"], "no action");
    // …and the one pointing at this table.
    let refs = d["referenced_by"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["schema"], "billing");
    assert_eq!(refs[0]["table"], "invoices");
    assert_eq!(refs[0]["columns"], json!(["order_id"]));
    assert_eq!(refs[0]["referenced_columns"], json!(["id"]));
    assert_eq!(
        d["check_constraints"],
        json!([{"name": "amount_positive", "definition": "CHECK (amount > 0::numeric)", "validated": true}])
    );
    let partial = find(&d["indexes"], &[("name", "order_open_idx")]).unwrap();
    assert_eq!(
        partial["predicate"],
        "(status <> 'shipped'::app.order_status)"
    );
    assert_eq!(partial["columns"], json!(["customer_id"]));
    assert_eq!(partial["method"], "btree");
    assert!(partial["size_bytes"].as_i64().unwrap() > 0);
    let pkey = &d["indexes"][0];
    assert_eq!(pkey["primary"], true, "the primary key's index comes first");
    assert!(pkey.get("predicate").is_none());
    let trg = &d["triggers"][0];
    assert_eq!(trg["name"], "order_touch");
    assert!(
        trg["definition"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TRIGGER order_touch BEFORE INSERT OR UPDATE ON app.\"Order\""),
        "{trg}"
    );
    assert_eq!(d["row_estimate"], 200);
    assert!(
        d["size"]["total_bytes"].as_i64().unwrap() >= d["size"]["table_bytes"].as_i64().unwrap()
    );
    assert!(d["size"]["indexes_bytes"].as_i64().unwrap() > 0);
    assert_eq!(d["partition_of"], Value::Null);

    let cust = describe(&c, "app.customers").await;
    let email = find(&cust["columns"], &[("name", "email")]).unwrap();
    assert_eq!(email["comment"], "Login e-mail, unique");
    assert_eq!(
        find(&cust["columns"], &[("name", "id")]).unwrap()["identity"],
        "always"
    );
    assert!(
        find(&cust["columns"], &[("name", "email")])
            .unwrap()
            .get("identity")
            .is_none()
    );
    assert_eq!(
        find(&cust["columns"], &[("name", "region")]).unwrap()["default"],
        "'eu'::text"
    );
    assert_eq!(
        cust["unique_constraints"],
        json!([{"name": "customers_email_key", "columns": ["email"], "definition": "UNIQUE (email)"}])
    );
    let composite = find(
        &cust["indexes"],
        &[("name", "customers_region_created_idx")],
    )
    .unwrap();
    assert_eq!(composite["columns"], json!(["region", "created_at DESC"]));
    assert_eq!(cust["referenced_by"][0]["table"], "Order");
    assert_eq!(
        cust["referenced_by"][0]["definition"],
        "FOREIGN KEY (customer_id) REFERENCES app.customers(id) ON DELETE CASCADE"
    );
    assert_eq!(cust["foreign_keys"], json!([]));

    let rates = describe(&c, "billing.rate_periods").await;
    assert_eq!(rates["exclusion_constraints"][0]["name"], "no_overlap");
    assert_eq!(
        rates["exclusion_constraints"][0]["definition"],
        "EXCLUDE USING gist (valid WITH &&)"
    );
    app.finish().await;
}

#[tokio::test]
async fn describe_accepts_every_way_of_naming_a_table() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Stateless).await;
    for (args, want) in [
        (json!({"name": "app.\"Order\""}), "Order"),
        (json!({"name": "\"Order\"", "schema": "app"}), "Order"),
        // Unquoted mixed case folds to lower case; when that finds nothing the exact spelling is tried.
        (json!({"name": "Order", "schema": "app"}), "Order"),
        (json!({"name": "APP.Customers"}), "customers"),
        (json!({"name": "customers", "schema": "app"}), "customers"),
    ] {
        let mut a = args.clone();
        a["action"] = json!("describe");
        let d = c.ok("pg_schema", a).await;
        assert_eq!(d["name"], want, "{args}");
        assert_eq!(d["schema"], "app", "{args}");
    }
    // The search_path (public) does not contain app: an unqualified name is not found there…
    let e = c
        .err(
            "pg_schema",
            json!({"action": "describe", "name": "customers"}),
            "invalid_input",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("search_path"),
        "{e}"
    );
    // …but a table in public is.
    app.exec("CREATE TABLE public.widgets (id int)").await;
    assert_eq!(describe(&c, "widgets").await["schema"], "public");
    // Names that are not names never reach SQL.
    for bad in ["x; DROP TABLE y", "app.\"Order", "a.b.c", "customers --"] {
        let e = c
            .err(
                "pg_schema",
                json!({"action": "describe", "name": bad}),
                "invalid_input",
            )
            .await;
        assert!(
            e["message"].as_str().unwrap().contains("invalid name"),
            "{bad}: {e}"
        );
    }
    c.err(
        "pg_schema",
        json!({"action": "describe", "name": "app.orders", "schema": "billing"}),
        "invalid_input",
    )
    .await;
    c.err("pg_schema", json!({"action": "describe"}), "invalid_input")
        .await;
    c.err(
        "pg_schema",
        json!({"action": "describe", "name": "app.nothing_here"}),
        "invalid_input",
    )
    .await;
    assert!(exists(&app, "app.customers").await);
    app.finish().await;
}

#[tokio::test]
async fn describe_shows_partitions_views_materialized_views_and_functions() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let ev = describe(&c, "app.events").await;
    assert_eq!(ev["kind"], "partitioned_table");
    assert_eq!(ev["partition_key"], "RANGE (happened_at)");
    assert_eq!(ev["primary_key"]["columns"], json!(["id", "happened_at"]));
    let parts = ev["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["name"], "events_2025");
    assert_eq!(
        parts[0]["bound"],
        "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"
    );
    assert_eq!(parts[1]["name"], "events_2026");
    assert_eq!(parts[1]["row_estimate"], 2);
    assert_eq!(ev["row_estimate"], 3);

    let p = describe(&c, "app.events_2026").await;
    assert_eq!(p["kind"], "table");
    assert_eq!(
        p["partition_of"],
        json!({"schema": "app", "name": "events", "bound": "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"})
    );

    let v = describe(&c, "app.open_orders").await;
    assert_eq!(v["kind"], "view");
    assert_eq!(v["comment"], "Orders not yet shipped");
    let def = v["view_definition"].as_str().unwrap();
    assert!(
        def.contains("JOIN app.customers c ON c.id = o.customer_id"),
        "{def}"
    );
    assert_eq!(v["columns"].as_array().unwrap().len(), 3);
    assert!(v.get("indexes").is_none() && v.get("size").is_none());

    let mv = describe(&c, "billing.revenue_by_region").await;
    assert_eq!(mv["kind"], "materialized_view");
    assert_eq!(mv["populated"], true);
    assert!(
        mv["view_definition"]
            .as_str()
            .unwrap()
            .contains("sum(i.total) AS revenue")
    );

    // No relation has this name, so the function is described.
    let f = describe(&c, "billing.order_total").await;
    assert_eq!(f["kind"], "function");
    assert_eq!(f["overloads"], 1);
    let fun = &f["functions"][0];
    assert_eq!(fun["signature"], "billing.order_total(integer)");
    assert_eq!(fun["result"], "numeric");
    assert_eq!(fun["volatility"], "stable");
    assert_eq!(fun["comment"], "Sum of invoices for one order");
    assert!(
        fun["definition"]
            .as_str()
            .unwrap()
            .starts_with("CREATE OR REPLACE FUNCTION billing.order_total(p_order integer)"),
        "{fun}"
    );
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// pg_schema create / alter / drop
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ddl_is_default_deny_and_runs_with_autocommit_or_dry_run() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let create = "CREATE TABLE app.tags (id int PRIMARY KEY, label text NOT NULL)";
    let e = c
        .err(
            "pg_schema",
            json!({"action": "create", "sql": create}),
            "policy_denied",
        )
        .await;
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("autocommit: true") && m.contains("session_id"),
        "{m}"
    );
    assert!(!exists(&app, "app.tags").await);

    let r = c
        .ok(
            "pg_schema",
            json!({"action": "create", "sql": create, "dry_run": true}),
        )
        .await;
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["committed"], false);
    assert_eq!(r["command"], "CREATE TABLE");
    assert!(!exists(&app, "app.tags").await, "a dry run changes nothing");

    let r = c
        .ok(
            "pg_schema",
            json!({"action": "create", "sql": create, "autocommit": true}),
        )
        .await;
    assert_eq!(r["ok"], true);
    assert_eq!(r["committed"], true);
    assert_eq!(r["command"], "CREATE TABLE");
    assert!(r["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(exists(&app, "app.tags").await);

    let r = c
        .ok("pg_schema", json!({"action": "alter", "sql": "ALTER TABLE app.tags ADD COLUMN color text", "autocommit": true}))
        .await;
    assert_eq!(r["command"], "ALTER TABLE");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'tags' AND column_name = 'color'").await,
        1
    );

    // The statement's kind must match the action, and other statements name their tool.
    let e = c
        .err("pg_schema", json!({"action": "create", "sql": "ALTER TABLE app.tags DROP COLUMN color", "autocommit": true}), "policy_denied")
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("pg_schema alter"),
        "{e}"
    );
    let e = c
        .err(
            "pg_schema",
            json!({"action": "create", "sql": "DELETE FROM app.customers", "autocommit": true}),
            "policy_denied",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("pg_query write"),
        "{e}"
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM app.customers").await,
        50
    );
    let e = c
        .err("pg_schema", json!({"action": "drop", "sql": "DROP TABLE app.tags; DROP TABLE app.customers", "autocommit": true}), "policy_denied")
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("one statement"),
        "{e}"
    );
    assert!(exists(&app, "app.tags").await && exists(&app, "app.customers").await);
    c.err(
        "pg_schema",
        json!({"action": "drop", "autocommit": true}),
        "invalid_input",
    )
    .await;

    // A failing DDL is a database error and leaves nothing behind.
    let e = c
        .err("pg_schema", json!({"action": "create", "sql": "CREATE TABLE app.tags (id int)", "autocommit": true}), "database_error")
        .await;
    assert_eq!(e["sqlstate"], "42P07");

    // CONCURRENTLY runs outside a transaction: autocommit only.
    let cic = "CREATE INDEX CONCURRENTLY tags_label_idx ON app.tags (label)";
    let e = c
        .err(
            "pg_schema",
            json!({"action": "create", "sql": cic, "dry_run": true}),
            "invalid_input",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("CONCURRENTLY"),
        "{e}"
    );
    let r = c
        .ok(
            "pg_schema",
            json!({"action": "create", "sql": cic, "autocommit": true}),
        )
        .await;
    assert_eq!(r["command"], "CREATE INDEX");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('app.tags_label_idx') AND indisvalid").await,
        1
    );

    // DROP TABLE is destructive: confirmed with the token first (tests/confirm.rs has more).
    let r = c
        .confirmed(
            "pg_schema",
            json!({"action": "drop", "sql": "DROP TABLE app.tags", "autocommit": true}),
        )
        .await;
    assert_eq!(r["command"], "DROP TABLE");
    assert!(!exists(&app, "app.tags").await);
    app.finish().await;
}

#[tokio::test]
async fn ddl_in_a_session_is_applied_at_commit_and_undone_by_rollback() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let id = c.begin().await;
    let r = c
        .ok("pg_schema", json!({"action": "create", "sql": "CREATE TABLE app.notes (body text)", "session_id": id}))
        .await;
    assert_eq!(r["session"]["id"], id.as_str());
    assert_eq!(r["command"], "CREATE TABLE");
    assert!(
        !exists(&app, "app.notes").await,
        "not visible outside before commit"
    );
    // Inside the session, describe sees the uncommitted table.
    let d = c
        .ok(
            "pg_schema",
            json!({"action": "describe", "name": "app.notes", "session_id": id}),
        )
        .await;
    assert_eq!(d["columns"][0]["name"], "body");
    assert_eq!(d["session"]["id"], id.as_str());
    // A dry run in the session is rolled back to its savepoint.
    c.ok(
        "pg_schema",
        json!({"action": "drop", "sql": "DROP TABLE app.notes", "session_id": id, "dry_run": true}),
    )
    .await;
    c.ok(
        "pg_schema",
        json!({"action": "describe", "name": "app.notes", "session_id": id}),
    )
    .await;
    let e = c
        .err("pg_schema", json!({"action": "create", "sql": "CREATE INDEX CONCURRENTLY i ON app.notes (body)", "session_id": id}), "invalid_input")
        .await;
    assert!(e["message"].as_str().unwrap().contains("CONCURRENTLY"));
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert!(exists(&app, "app.notes").await);

    let id = c.begin().await;
    c.confirmed(
        "pg_schema",
        json!({"action": "drop", "sql": "DROP TABLE app.notes", "session_id": id}),
    )
    .await;
    c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    assert!(exists(&app, "app.notes").await, "the drop was rolled back");
    app.finish().await;
}

#[tokio::test]
async fn ddl_calls_are_written_to_the_audit_log() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    c.ok(
        "pg_schema",
        json!({"action": "create", "sql": "CREATE TABLE app.audited (id int)", "autocommit": true}),
    )
    .await;
    c.ok(
        "pg_admin",
        json!({"action": "analyze", "table": "app.audited", "autocommit": true}),
    )
    .await;
    wait_until("audit rows for pg_schema and pg_admin", Duration::from_secs(10), async || {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT count(*) FROM coldquery.audit_log WHERE (tool, action) IN (('pg_schema', 'create'), ('pg_admin', 'analyze')) AND outcome = 'ok'",
        )
        .fetch_one(&app.db)
        .await
        .ok();
        n == Some(2)
    })
    .await;
    let stmt: String = sqlx::query_scalar(
        "SELECT statement FROM coldquery.audit_log WHERE tool = 'pg_schema' AND action = 'create'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stmt, "CREATE TABLE app.audited (id int)");
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// pg_admin maintenance
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn vacuum_analyze_and_reindex_work_on_a_mixed_case_table_with_autocommit() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let table = "app.\"Order\"";
    for action in ["vacuum", "analyze", "reindex"] {
        let e = c
            .err(
                "pg_admin",
                json!({"action": action, "table": table}),
                "policy_denied",
            )
            .await;
        assert!(
            e["message"].as_str().unwrap().contains("autocommit: true"),
            "{e}"
        );
    }
    app.exec("DELETE FROM app.\"Order\" WHERE id > 150").await;
    wait_for_stats(&app, "app.\"Order\"", 50).await;

    let r = c
        .ok(
            "pg_admin",
            json!({"action": "vacuum", "table": table, "verbose": true, "autocommit": true}),
        )
        .await;
    assert_eq!(r["statement"], "VACUUM (VERBOSE) \"app\".\"Order\"");
    assert_eq!(r["target"], "app.\"Order\"");
    assert_eq!(r["ok"], true);
    assert!(
        r["verbose_output"].as_str().unwrap().contains("INFO"),
        "{r}"
    );
    assert!(r["table_stats"]["last_vacuum"].is_string(), "{r}");
    assert_eq!(r["table_stats"]["vacuum_count"], 1);
    assert_eq!(r["table_stats"]["dead_tuples"], 0);

    let r = c
        .ok(
            "pg_admin",
            json!({"action": "vacuum", "table": table, "full": true, "autocommit": true}),
        )
        .await;
    assert_eq!(r["statement"], "VACUUM (FULL) \"app\".\"Order\"");

    let r = c
        .ok(
            "pg_admin",
            json!({"action": "analyze", "table": table, "autocommit": true}),
        )
        .await;
    assert_eq!(r["statement"], "ANALYZE \"app\".\"Order\"");
    assert!(r["table_stats"]["last_analyze"].is_string());
    assert_eq!(r["table_stats"]["live_tuples"], 150);

    let r = c
        .ok(
            "pg_admin",
            json!({"action": "reindex", "table": table, "autocommit": true}),
        )
        .await;
    assert_eq!(r["statement"], "REINDEX TABLE \"app\".\"Order\"");
    let r = c
        .ok(
            "pg_admin",
            json!({"action": "reindex", "table": table, "concurrently": true, "autocommit": true}),
        )
        .await;
    assert_eq!(
        r["statement"],
        "REINDEX TABLE CONCURRENTLY \"app\".\"Order\""
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM pg_index WHERE indrelid = 'app.\"Order\"'::regclass AND indisvalid").await,
        2
    );

    // The whole database.
    let r = c
        .ok("pg_admin", json!({"action": "vacuum", "autocommit": true}))
        .await;
    assert_eq!(r["target"], "database");
    assert_eq!(r["statement"], "VACUUM");
    let r = c
        .ok("pg_admin", json!({"action": "analyze", "autocommit": true}))
        .await;
    assert_eq!(r["statement"], "ANALYZE");
    let r = c
        .ok(
            "pg_admin",
            json!({"action": "reindex", "concurrently": true, "autocommit": true}),
        )
        .await;
    assert_eq!(
        r["statement"],
        format!("REINDEX DATABASE CONCURRENTLY \"{}\"", app.db_name)
    );

    // Identifiers are validated and resolved, never pasted.
    for action in ["vacuum", "analyze", "reindex", "stats"] {
        let e = c
            .err(
                "pg_admin",
                json!({"action": action, "table": "x; DROP TABLE y", "autocommit": true}),
                "invalid_input",
            )
            .await;
        assert!(
            e["message"].as_str().unwrap().contains("invalid table"),
            "{e}"
        );
        let e = c
            .err(
                "pg_admin",
                json!({"action": action, "table": "app.no_such_table", "autocommit": true}),
                "invalid_input",
            )
            .await;
        assert!(
            e["message"].as_str().unwrap().contains("no table named"),
            "{e}"
        );
    }
    let e = c
        .err(
            "pg_admin",
            json!({"action": "vacuum", "table": "app.open_orders", "autocommit": true}),
            "invalid_input",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("view"), "{e}");
    c.err(
        "pg_admin",
        json!({"action": "analyze", "full": true, "autocommit": true}),
        "invalid_input",
    )
    .await;
    c.err(
        "pg_admin",
        json!({"action": "vacuum", "concurrently": true, "autocommit": true}),
        "invalid_input",
    )
    .await;
    assert!(exists(&app, "app.customers").await);
    app.finish().await;
}

#[tokio::test]
async fn vacuum_refuses_a_session_and_analyze_runs_inside_one() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let id = c.begin().await;
    let e = c
        .err(
            "pg_admin",
            json!({"action": "vacuum", "table": "app.customers", "session_id": id}),
            "invalid_input",
        )
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cannot run inside a transaction"),
        "{e}"
    );
    for args in [
        json!({"action": "reindex", "session_id": id}),
        json!({"action": "reindex", "table": "app.customers", "concurrently": true, "session_id": id}),
    ] {
        c.err("pg_admin", args, "invalid_input").await;
    }
    // ANALYZE inside the session sees the session's own rows.
    c.ok("pg_query", json!({"action": "write", "sql": "INSERT INTO app.customers (email, name) SELECT 'x' || g, 'x' FROM generate_series(1, 25) g", "session_id": id}))
        .await;
    let r = c
        .ok(
            "pg_admin",
            json!({"action": "analyze", "table": "app.customers", "session_id": id}),
        )
        .await;
    assert_eq!(r["session"]["id"], id.as_str());
    assert_eq!(r["statement"], "ANALYZE \"app\".\"customers\"");
    let r = c
        .ok(
            "pg_admin",
            json!({"action": "reindex", "table": "app.customers", "session_id": id}),
        )
        .await;
    assert_eq!(r["statement"], "REINDEX TABLE \"app\".\"customers\"");
    // A failing maintenance call does not poison the session.
    c.err(
        "pg_admin",
        json!({"action": "analyze", "table": "app.nope", "session_id": id}),
        "invalid_input",
    )
    .await;
    let n = c
        .ok("pg_query", json!({"action": "read", "sql": "SELECT count(*) FROM app.customers", "session_id": id}))
        .await;
    assert_eq!(n["rows"], json!([[75]]));
    c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM app.customers").await,
        50
    );
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// pg_admin stats and settings
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn stats_after_analyze_show_live_tuples_and_index_usage() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Stateless).await;
    app.exec(
        "INSERT INTO app.customers (email, name) SELECT 'extra' || g, 'x' FROM generate_series(1, 10) g; \
         DELETE FROM app.customers WHERE email LIKE 'extra%'",
    )
    .await;
    wait_for_stats(&app, "app.customers", 10).await;
    c.ok(
        "pg_admin",
        json!({"action": "analyze", "table": "app.customers", "autocommit": true}),
    )
    .await;
    let s = c
        .ok(
            "pg_admin",
            json!({"action": "stats", "table": "app.customers"}),
        )
        .await;
    assert_eq!(s["table"], "app.customers");
    let st = &s["stats"];
    assert_eq!(st["live_tuples"], 50);
    assert!(st["last_analyze"].is_string(), "{st}");
    assert!(st["analyze_count"].as_i64().unwrap() >= 1);
    assert!(st["total_bytes"].as_i64().unwrap() > 0);
    let dead = st["dead_tuples"].as_i64().unwrap();
    let ratio = st["dead_ratio"].as_f64().unwrap();
    assert!(dead > 0, "{st}");
    assert!(
        (ratio - dead as f64 / (50 + dead) as f64).abs() < 0.001,
        "{st}"
    );
    let idx: Vec<&str> = s["index_usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        idx,
        vec![
            "customers_email_key",
            "customers_pkey",
            "customers_region_created_idx"
        ]
    );
    assert!(s["index_usage"][0]["size_bytes"].as_i64().unwrap() > 0);
    assert_eq!(s["index_usage"][1]["primary"], true);

    // A partitioned table's statistics are its partitions'.
    let p = c
        .ok(
            "pg_admin",
            json!({"action": "stats", "table": "app.events"}),
        )
        .await;
    let parts: Vec<&str> = p["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(parts, vec!["events_2025", "events_2026"]);

    let top = c
        .ok("pg_admin", json!({"action": "stats", "limit": 100}))
        .await;
    let tables = top["tables"].as_array().unwrap();
    assert!(
        tables
            .iter()
            .any(|t| t["schema"] == "app" && t["table"] == "customers" && t["live_tuples"] == 50)
    );
    assert!(tables.iter().all(|t| t["schema"] != "coldquery"));
    let activity: Vec<i64> = tables
        .iter()
        .map(|t| t["activity"].as_i64().unwrap())
        .collect();
    assert!(
        activity.windows(2).all(|w| w[0] >= w[1]),
        "ordered by activity: {activity:?}"
    );
    app.finish().await;
}

#[tokio::test]
async fn settings_show_list_and_set_in_a_session_with_the_guards_kept() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let s = c
        .ok(
            "pg_admin",
            json!({"action": "settings", "setting_name": "work_mem"}),
        )
        .await;
    assert_eq!(s["setting_name"], "work_mem");
    assert_eq!(s["unit"], "kB");
    assert_eq!(s["context"], "user");
    assert_eq!(s["settable_in_session"], true);
    assert!(s["description"].as_str().unwrap().len() > 10);
    assert!(s["source"].is_string());
    let e = c
        .err(
            "pg_admin",
            json!({"action": "settings", "setting_name": "no_such_setting"}),
            "invalid_input",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("unknown setting"));

    let l = c
        .ok(
            "pg_admin",
            json!({"action": "settings", "category": "memory"}),
        )
        .await;
    let items = l["items"].as_array().unwrap();
    assert!(items.len() > 3);
    assert!(items.iter().all(|i| {
        i["category"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("memory")
    }));
    assert!(find(&l["items"], &[("setting_name", "work_mem")]).is_some());
    let l = c
        .ok(
            "pg_admin",
            json!({"action": "settings", "pattern": "%timeout%", "limit": 3}),
        )
        .await;
    assert_eq!(l["count"], 3);
    assert_eq!(l["has_more"], true);
    assert!(
        l["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["setting_name"].as_str().unwrap().contains("timeout"))
    );
    let all = c.ok("pg_admin", json!({"action": "settings"})).await;
    assert_eq!(all["limit"], 200);
    assert!(all["total"].as_i64().unwrap() > 200);

    let set = |id: &str, name: &str, value: Value| json!({"action": "settings", "setting_name": name, "setting_value": value, "session_id": id});
    let e = c
        .err(
            "pg_admin",
            json!({"action": "settings", "setting_name": "work_mem", "setting_value": "64MB"}),
            "invalid_input",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("session_id"), "{e}");

    let id = c.begin().await;
    let r = c.ok("pg_admin", set(&id, "work_mem", json!("64MB"))).await;
    assert_eq!(r["value"], "64MB");
    assert_eq!(r["session"]["id"], id.as_str());
    let show = c
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SHOW work_mem", "session_id": id}),
        )
        .await;
    assert_eq!(show["rows"], json!([["64MB"]]));
    let inside = c
        .ok(
            "pg_admin",
            json!({"action": "settings", "setting_name": "work_mem", "session_id": id}),
        )
        .await;
    assert_eq!(inside["value"], "65536");
    // Not on the pooled connections.
    let outside = c
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SHOW work_mem"}),
        )
        .await;
    assert_ne!(outside["rows"], json!([["64MB"]]));

    assert_eq!(
        c.ok("pg_admin", set(&id, "statement_timeout", json!("5s")))
            .await["value"],
        "5s"
    );
    assert_eq!(
        c.ok("pg_admin", set(&id, "lock_timeout", json!(2000)))
            .await["value"],
        "2s"
    );
    assert_eq!(
        c.ok("pg_admin", set(&id, "enable_seqscan", json!(false)))
            .await["value"],
        "off"
    );

    for (name, value) in [
        ("statement_timeout", json!("1h")),
        ("statement_timeout", json!("0")),
        ("statement_timeout", json!(31000)),
        ("lock_timeout", json!("11s")),
        ("idle_in_transaction_session_timeout", json!("2h")),
        ("default_transaction_read_only", json!("off")),
        ("transaction_read_only", json!(false)),
        ("role", json!("postgres")),
        ("session_authorization", json!("postgres")),
        ("session_replication_role", json!("replica")),
        // Not on the allowlist (issue 9): security, logging, lexing, name resolution, custom.
        ("log_statement", json!("none")),
        ("row_security", json!("off")),
        ("allow_system_table_mods", json!("on")),
        ("zero_damaged_pages", json!("on")),
        ("search_path", json!("app, public")),
        ("standard_conforming_strings", json!("off")),
        ("app.tenant_id", json!("42")),
    ] {
        let e = c
            .err("pg_admin", set(&id, name, value.clone()), "policy_denied")
            .await;
        assert!(e["message"].as_str().unwrap().contains(name), "{name}: {e}");
    }
    let e = c
        .err(
            "pg_admin",
            set(&id, "shared_buffers", json!("1GB")),
            "invalid_input",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("restart"), "{e}");
    let e = c
        .err(
            "pg_admin",
            set(&id, "checkpoint_timeout", json!("10min")),
            "invalid_input",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("sighup"), "{e}");
    c.err(
        "pg_admin",
        set(&id, "statement_timeout", json!("soon")),
        "invalid_input",
    )
    .await;
    // A value PostgreSQL rejects is its error, and the session stays usable.
    let e = c
        .err(
            "pg_admin",
            set(&id, "work_mem", json!("lots")),
            "database_error",
        )
        .await;
    assert_eq!(e["sqlstate"], "22023");
    let show = c
        .ok("pg_query", json!({"action": "read", "sql": "SELECT current_setting('work_mem'), current_setting('statement_timeout')", "session_id": id}))
        .await;
    assert_eq!(show["rows"], json!([["64MB", "5s"]]));
    let r = c
        .ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(r["committed"], true);
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// pg_monitor
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn monitor_health_reports_version_uptime_size_connections_cache_and_longest_transaction() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let id = c.begin().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h = c.ok("pg_monitor", json!({"action": "health"})).await;
    assert!(h["status"] == "ok" || h["status"] == "warning", "{h}");
    assert!(h["version"].as_str().unwrap().starts_with("PostgreSQL "));
    assert!(h["server_version_num"].as_i64().unwrap() >= 140_000);
    assert!(h["uptime_s"].as_i64().unwrap() > 0);
    assert!(h["uptime"].is_string());
    assert_eq!(h["database"], app.db_name.as_str());
    assert!(h["database_size_bytes"].as_i64().unwrap() > 1_000_000);
    let used = h["connections"]["used"].as_i64().unwrap();
    let max = h["connections"]["max"].as_i64().unwrap();
    assert!(used >= 2 && used < max, "{h}");
    let ratio = h["cache_hit_ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "{h}");
    assert_eq!(h["replication"]["role"], "primary");
    // The open pg_tx session is at least this old; the monitor's own (fresh) transaction is
    // excluded, so the longest one cannot be younger.
    let longest = &h["longest_transaction"];
    assert!(longest["age_s"].as_f64().unwrap() >= 0.3, "{h}");
    assert!(
        longest["pid"].is_number() && longest["state"].is_string(),
        "{h}"
    );
    c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    app.finish().await;
}

#[tokio::test]
async fn monitor_activity_shows_running_queries_with_durations_and_excludes_itself() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Stateless).await;
    let marker = "x".repeat(1500);
    let db = app.db.clone();
    let sleeper = tokio::spawn(async move {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SELECT pg_sleep(3) /* activity-marker {marker} */"
        )))
        .execute(&db)
        .await
    });
    let mut seen = Value::Null;
    wait_until(
        "the sleeping query in activity",
        Duration::from_secs(5),
        async || {
            let a = c.ok("pg_monitor", json!({"action": "activity"})).await;
            if let Some(b) = a["backends"].as_array().unwrap().iter().find(|b| {
                b["query"]
                    .as_str()
                    .unwrap_or("")
                    .contains("activity-marker")
            }) {
                seen = b.clone();
                assert!(
                    a["backends"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|b| b["state"] != "idle"),
                    "idle backends are left out by default: {a}"
                );
                assert!(
                    a["backends"].as_array().unwrap().iter().all(|b| !b["query"]
                        .as_str()
                        .unwrap_or("")
                        .contains("pg_blocking_pids(a.pid)")),
                    "the monitor's own query is excluded"
                );
                true
            } else {
                false
            }
        },
    )
    .await;
    assert_eq!(seen["state"], "active");
    assert_eq!(seen["database"], app.db_name.as_str());
    assert_eq!(seen["wait_event"], "PgSleep");
    assert!(seen["query_s"].as_f64().unwrap() >= 0.0);
    assert!(seen["transaction_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(seen["query"].as_str().unwrap().chars().count(), 1000);
    assert_eq!(seen["query_truncated"], true);
    assert_eq!(seen["blocked_by"], json!([]));

    let all = c
        .ok(
            "pg_monitor",
            json!({"action": "activity", "include_idle": true}),
        )
        .await;
    assert_eq!(all["include_idle"], true);
    assert!(
        all["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["state"] == "idle")
    );
    let one = c
        .ok(
            "pg_monitor",
            json!({"action": "activity", "include_idle": true, "limit": 1}),
        )
        .await;
    assert_eq!(one["count"], 1);
    assert_eq!(one["has_more"], true);
    sleeper.await.unwrap().unwrap();
    app.finish().await;
}

#[tokio::test]
async fn monitor_connections_are_grouped_by_database_user_application_and_state() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let id = c.begin().await;
    let r = c.ok("pg_monitor", json!({"action": "connections"})).await;
    let group = find(
        &r["groups"],
        &[
            ("database", app.db_name.as_str()),
            ("application", "coldquery-session"),
            ("state", "idle in transaction"),
        ],
    )
    .unwrap_or_else(|| panic!("no group for the session: {r}"));
    assert_eq!(group["connections"], 1);
    assert!(group["user"].is_string());
    assert!(r["by_state"]["idle_in_transaction"].as_i64().unwrap() >= 1);
    let total = r["total"].as_i64().unwrap();
    let summed: i64 = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["connections"].as_i64().unwrap())
        .sum();
    assert_eq!(summed, total);
    assert!(r["max_connections"].as_i64().unwrap() > total);
    c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    app.finish().await;
}

#[tokio::test]
async fn monitor_locks_show_a_real_blocked_and_blocking_pair() {
    let app = app_with_fixture().await;
    let a = app.client(Era::Session).await;
    let b = app.client(Era::Session).await;
    let monitor = app.client(Era::Stateless).await;
    let none = monitor.ok("pg_monitor", json!({"action": "locks"})).await;
    assert_eq!(none["blocked_count"], 0);
    assert_eq!(none["pairs"], json!([]));

    let sa = a.begin().await;
    let sb = b.begin().await;
    a.ok("pg_query", json!({"action": "write", "sql": "UPDATE app.customers SET name = 'A' WHERE id = 1", "session_id": sa}))
        .await;
    // B's update of the same row waits for A.
    let sb2 = sb.clone();
    let waiting = tokio::spawn(async move {
        let r = b
            .call_raw("pg_query", json!({"action": "write", "sql": "UPDATE app.customers SET name = 'B' WHERE id = 1", "session_id": sb2}))
            .await;
        (b, r)
    });
    let mut pairs = Value::Null;
    wait_until("a blocked pair", Duration::from_secs(8), async || {
        let l = monitor.ok("pg_monitor", json!({"action": "locks"})).await;
        // pg_locks.waitstart can be null for a moment after the wait began.
        if l["blocked_count"] == 1 && l["pairs"][0]["wait_s"].is_number() {
            pairs = l;
            true
        } else {
            false
        }
    })
    .await;
    let pids: Vec<(i32, String)> = sqlx::query_as(
        "SELECT pid, query FROM pg_stat_activity WHERE application_name = 'coldquery-session' AND datname = current_database()",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let pid_of = |text: &str| {
        i64::from(
            pids.iter()
                .find(|(_, q)| q.contains(text))
                .unwrap_or_else(|| panic!("{text} in {pids:?}"))
                .0,
        )
    };
    let p = &pairs["pairs"][0];
    assert_eq!(p["blocked_pid"], pid_of("'B'"));
    assert_eq!(p["blocking_pid"], pid_of("'A'"));
    assert_ne!(p["blocked_pid"], p["blocking_pid"]);
    assert_eq!(
        p["blocked_query"],
        "UPDATE app.customers SET name = 'B' WHERE id = 1"
    );
    assert_eq!(
        p["blocking_query"],
        "UPDATE app.customers SET name = 'A' WHERE id = 1"
    );
    assert_eq!(p["blocking_state"], "idle in transaction");
    assert_eq!(p["lock_type"], "transactionid");
    assert_eq!(p["blocked_lock_mode"], "ShareLock");
    assert_eq!(p["blocking_lock_modes"], json!(["ExclusiveLock"]));
    assert!(p["wait_s"].as_f64().unwrap() >= 0.0, "{p}");
    assert!(
        p["blocking_transaction_s"].as_f64().unwrap() >= p["wait_s"].as_f64().unwrap(),
        "{p}"
    );
    assert_eq!(p["blocked_user"], p["blocking_user"]);
    assert!(
        pairs["hint"]
            .as_str()
            .unwrap()
            .contains("commit or roll back")
    );
    // activity agrees: B is blocked by A.
    let act = monitor
        .ok("pg_monitor", json!({"action": "activity"}))
        .await;
    let blocked = find(
        &act["backends"],
        &[("query", "UPDATE app.customers SET name = 'B' WHERE id = 1")],
    )
    .unwrap();
    assert_eq!(blocked["blocked_by"], json!([p["blocking_pid"]]));
    assert_eq!(blocked["wait_event_type"], "Lock");
    assert!(blocked["wait_s"].as_f64().unwrap() >= 0.0);

    // A rolls back; B's update goes through.
    a.ok("pg_tx", json!({"action": "rollback", "session_id": sa}))
        .await;
    let (b, r) = waiting.await.unwrap();
    assert_ne!(r.is_error, Some(true), "{r:?}");
    assert_eq!(r.structured_content.unwrap()["rows_affected"], 1);
    b.ok("pg_tx", json!({"action": "rollback", "session_id": sb}))
        .await;
    let after = monitor.ok("pg_monitor", json!({"action": "locks"})).await;
    assert_eq!(after["blocked_count"], 0);
    app.finish().await;
}

#[tokio::test]
async fn monitor_size_lists_the_largest_tables_with_their_parts() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    app.exec(
        "CREATE TABLE billing.ledger (id int PRIMARY KEY, doc text); \
         INSERT INTO billing.ledger SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 20000) g",
    )
    .await;
    let s = c.ok("pg_monitor", json!({"action": "size"})).await;
    assert_eq!(s["database"], app.db_name.as_str());
    let db_bytes = s["database_size_bytes"].as_i64().unwrap();
    assert!(s["database_size"].as_str().unwrap().ends_with("MB"));
    let tables = s["largest_tables"].as_array().unwrap();
    assert!(tables.len() <= 20 && tables.len() >= 8);
    let first = &tables[0];
    assert_eq!(
        (first["schema"].as_str(), first["name"].as_str()),
        (Some("billing"), Some("ledger"))
    );
    let total = first["total_bytes"].as_i64().unwrap();
    let parts = first["table_bytes"].as_i64().unwrap()
        + first["indexes_bytes"].as_i64().unwrap()
        + first["toast_bytes"].as_i64().unwrap();
    assert!(total >= parts && parts > 1_000_000, "{first}");
    assert!(total < db_bytes);
    assert_eq!(first["row_estimate"], Value::Null, "not analyzed yet");
    let sizes: Vec<i64> = tables
        .iter()
        .map(|t| t["total_bytes"].as_i64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert!(tables.iter().all(|t| t["schema"] != "pg_catalog"));
    let two = c
        .ok("pg_monitor", json!({"action": "size", "limit": 2}))
        .await;
    assert_eq!(two["largest_tables"].as_array().unwrap().len(), 2);
    app.finish().await;
}

#[tokio::test]
async fn slow_queries_say_clearly_that_pg_stat_statements_is_missing() {
    let app = app_with_fixture().await;
    let c = app.client(Era::Session).await;
    let e = c
        .err(
            "pg_monitor",
            json!({"action": "slow_queries"}),
            "unavailable",
        )
        .await;
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("CREATE EXTENSION pg_stat_statements"), "{m}");
    assert!(m.contains("shared_preload_libraries"), "{m}");
    c.err(
        "pg_monitor",
        json!({"action": "slow_queries", "order_by": "fastest"}),
        "invalid_input",
    )
    .await;
    // Installed but not preloaded: the library is missing, and that is said too.
    app.exec("CREATE EXTENSION pg_stat_statements").await;
    let e = c
        .err(
            "pg_monitor",
            json!({"action": "slow_queries", "order_by": "total_time"}),
            "unavailable",
        )
        .await;
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("not loaded") && m.contains("shared_preload_libraries"),
        "{m}"
    );
    app.finish().await;
}

#[tokio::test]
async fn bad_actions_and_arguments_of_the_new_tools_are_invalid_input() {
    let app = spawn_app().await;
    let c = app.client(Era::Session).await;
    for (tool, args) in [
        ("pg_schema", json!({"action": "lsit"})),
        ("pg_admin", json!({"action": "vacum"})),
        ("pg_monitor", json!({"action": "helth"})),
        (
            "pg_monitor",
            json!({"action": "health", "include_idle": true}),
        ),
        ("pg_monitor", json!({"action": "health", "verbose": true})),
        ("pg_admin", json!({"action": "stats", "tabel": "x"})),
        ("pg_schema", json!({"action": "list", "sql": "SELECT 1"})),
        ("pg_schema", json!({})),
    ] {
        c.err(tool, args, "invalid_input").await;
    }
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// Server info, resources and prompts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_server_offers_five_tools_resources_and_prompts() {
    let app = spawn_app().await;
    for era in ERAS {
        let c = app.client(era).await;
        let info = c.inner().peer_info().expect("server info");
        assert_eq!(info.server_info.as_ref().unwrap().name, "coldquery");
        assert_eq!(
            info.server_info.as_ref().unwrap().version,
            env!("CARGO_PKG_VERSION")
        );
        assert!(info.capabilities.tools.is_some());
        assert!(info.capabilities.resources.is_some());
        assert!(info.capabilities.prompts.is_some());
        let instructions = info.instructions.clone().unwrap();
        for tool in ["pg_query", "pg_schema", "pg_admin", "pg_tx", "pg_monitor"] {
            assert!(instructions.contains(tool), "{era:?}: {tool}");
        }
        let tools = c.inner().list_all_tools().await.unwrap();
        let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "pg_admin",
                "pg_monitor",
                "pg_query",
                "pg_read",
                "pg_schema",
                "pg_tx"
            ]
        );
        let monitor = tools.iter().find(|t| t.name == "pg_monitor").unwrap();
        assert_eq!(
            monitor.annotations.as_ref().unwrap().read_only_hint,
            Some(true)
        );
        for t in &tools {
            assert_eq!(t.input_schema["required"], json!(["action"]), "{}", t.name);
            assert!(t.output_schema.is_some());
        }
        c.close().await;
    }
    app.finish().await;
}

fn text_of(contents: &[ResourceContents]) -> (String, Value) {
    assert_eq!(contents.len(), 1);
    match &contents[0] {
        ResourceContents::TextResourceContents {
            mime_type,
            text,
            uri,
            ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            (
                uri.clone(),
                serde_json::from_str(text).expect("resource text is JSON"),
            )
        }
        other => panic!("expected text contents, got {other:?}"),
    }
}

#[tokio::test]
async fn resources_list_and_read_as_json_in_both_eras() {
    let app = app_with_fixture().await;
    for era in ERAS {
        let c = app.client(era).await;
        let peer = c.inner();
        let mut uris: Vec<String> = peer
            .list_all_resources()
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.mime_type.as_deref(), Some("application/json"));
                r.uri
            })
            .collect();
        uris.sort();
        assert_eq!(
            uris,
            vec![
                "postgres://monitor/activity",
                "postgres://monitor/health",
                "postgres://schema/tables"
            ]
        );
        let templates = peer.list_all_resource_templates().await.unwrap();
        assert_eq!(templates.len(), 1);
        assert_eq!(
            templates[0].uri_template,
            "postgres://schema/{schema}/{table}"
        );

        let read = |uri: &str| peer.read_resource(ReadResourceRequestParams::new(uri));
        let (uri, tables) = text_of(&read("postgres://schema/tables").await.unwrap().contents);
        assert_eq!(uri, "postgres://schema/tables");
        let customers = find(
            &tables["items"],
            &[("schema", "app"), ("name", "customers")],
        )
        .unwrap();
        assert_eq!(customers["row_estimate"], 50);

        let (_, order) = text_of(&read("postgres://schema/app/Order").await.unwrap().contents);
        assert_eq!(order["name"], "Order");
        assert_eq!(order["referenced_by"][0]["table"], "invoices");
        let (_, view) = text_of(
            &read("postgres://schema/app/open_orders")
                .await
                .unwrap()
                .contents,
        );
        assert_eq!(view["kind"], "view");

        let (_, health) = text_of(&read("postgres://monitor/health").await.unwrap().contents);
        assert_eq!(health["database"], app.db_name.as_str());
        let (_, activity) = text_of(&read("postgres://monitor/activity").await.unwrap().contents);
        assert!(activity["backends"].is_array());

        for missing in [
            "postgres://schema/app/nope",
            "postgres://schema/app/order",
            "postgres://schema/app/order_total",
            "postgres://nothing",
            "file:///etc/passwd",
        ] {
            match read(missing).await {
                Err(rmcp::ServiceError::McpError(e)) => {
                    // rmcp sends -32002 to 2025 clients and, as the 2026-07-28 revision
                    // specifies, invalid params (-32602) to 2026 clients.
                    let want = match era {
                        Era::Session => ErrorCode::RESOURCE_NOT_FOUND,
                        Era::Stateless => ErrorCode::INVALID_PARAMS,
                    };
                    assert_eq!(e.code, want, "{missing}: {e:?}");
                    assert!(e.message.contains("not found"), "{e:?}");
                }
                other => panic!("{missing}: expected resource not found, got {other:?}"),
            }
        }
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn prompts_list_and_render_plans_with_the_real_tool_arguments_in_both_eras() {
    let app = spawn_app().await;
    for era in ERAS {
        let c = app.client(era).await;
        let peer = c.inner();
        let prompts = peer.list_all_prompts().await.unwrap();
        let mut names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            vec!["analyze_query_performance", "debug_lock_contention"]
        );
        let aqp = prompts
            .iter()
            .find(|p| p.name == "analyze_query_performance")
            .unwrap();
        let arg = &aqp.arguments.as_ref().unwrap()[0];
        assert_eq!(arg.name, "sql");
        assert_eq!(arg.required, Some(true));

        let sql = "SELECT * FROM app.\"Order\" WHERE customer_id = 7";
        let mut args = serde_json::Map::new();
        args.insert("sql".into(), json!(sql));
        let r = peer
            .get_prompt(
                GetPromptRequestParams::new("analyze_query_performance").with_arguments(args),
            )
            .await
            .unwrap();
        let text = r.messages[0].content.as_text().unwrap().text.clone();
        assert!(text.contains(sql));
        assert!(
            text.contains(r#"pg_query {"action": "explain", "sql": "SELECT * FROM app.\"Order\" WHERE customer_id = 7", "analyze": true}"#),
            "{text}"
        );
        assert!(text.contains(r#"pg_schema {"action": "describe", "name": "schema.table"}"#));
        assert!(text.contains(r#"pg_admin {"action": "stats", "table": "schema.table"}"#));

        let r = peer
            .get_prompt(GetPromptRequestParams::new("debug_lock_contention"))
            .await
            .unwrap();
        let text = r.messages[0].content.as_text().unwrap().text.clone();
        assert!(text.contains(r#"pg_monitor {"action": "locks"}"#));
        assert!(text.contains(r#"pg_tx {"action": "list"}"#));

        // A missing required argument and an unknown prompt are protocol errors.
        for name in ["analyze_query_performance", "no_such_prompt"] {
            match peer.get_prompt(GetPromptRequestParams::new(name)).await {
                Err(rmcp::ServiceError::McpError(e)) => {
                    assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{name}: {e:?}")
                }
                other => panic!("{name}: expected invalid params, got {other:?}"),
            }
        }
        c.close().await;
    }
    app.finish().await;
}
