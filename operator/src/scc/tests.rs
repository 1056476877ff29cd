use serde_json::json;

use super::*;

#[test]
fn placeholder_parses() {
    let scc = Scc::parse(&json!({"metadata": {"name": "x"}})).expect("parse");
    assert_eq!(scc.volumes.as_deref().map(<[String]>::len), Some(29));
}
