use crate::common::*;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// README's crosswalk (metric x tool) is the one the code computes with
/// (`analysis::crosswalk_markdown`, from each `Defs`' definitions);
/// `SERVEBENCH_WRITE_README=1 cargo test readme` rewrites it between `<!-- crosswalk -->` and
/// `<!-- /crosswalk -->`.
#[test]
fn readme_crosswalk_matches_the_definitions() {
    let mut readme = std::fs::read_to_string(README).unwrap();
    let open = "<!-- crosswalk -->\n";
    let start = readme.find(open).expect("README.md has no <!-- crosswalk --> marker") + open.len();
    let end = start + readme[start..].find("<!-- /crosswalk -->").expect("closing marker");
    let table = servebench::analysis::crosswalk_markdown();
    if std::env::var("SERVEBENCH_WRITE_README").is_ok() {
        readme.replace_range(start..end, &table);
        std::fs::write(README, readme).unwrap();
    } else {
        assert_eq!(
            &readme[start..end],
            table,
            "README's crosswalk is stale: run SERVEBENCH_WRITE_README=1 cargo test readme"
        );
    }
}

/// README documents every contract's columns exactly as the schema module defines them.
/// `SERVEBENCH_WRITE_README=1 cargo test readme` rewrites the tables between the
/// `<!-- schema:NAME -->` and `<!-- /schema -->` markers.
#[test]
fn readme_column_tables_match_the_schema() {
    let mut readme = std::fs::read_to_string(README).unwrap();
    let write = std::env::var("SERVEBENCH_WRITE_README").is_ok();
    for c in servebench::schema::all() {
        let open = format!("<!-- schema:{} -->\n", c.name);
        let close = "<!-- /schema -->";
        let start = readme
            .find(&open)
            .unwrap_or_else(|| panic!("README.md has no {open:?} marker"))
            + open.len();
        let end = start + readme[start..].find(close).expect("closing marker");
        let table = c.markdown();
        if write {
            readme.replace_range(start..end, &table);
        } else {
            assert_eq!(
                &readme[start..end],
                table,
                "README table for {} is stale: run SERVEBENCH_WRITE_README=1 cargo test readme",
                c.name
            );
        }
    }
    if write {
        std::fs::write(README, readme).unwrap();
    }
    let _ = tmp();
}
