//! The JSON rule (contract.md; spec "Use of JSON", requirement 3): no `null`, `""`, `[]`
//! or `{}` in what we send, except `{"cards": []}`. The response types ([`super::Card`])
//! keep it by construction; [`violations`] checks it (tests, and the pipeline's debug
//! assertion).

use serde_json::Value;

/// Remove empty values (recursively) from a response body, keeping a top-level `cards`
/// array even when empty. Returns the paths removed (paths only: never values).
fn prune_empty(body: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    if let Value::Object(map) = body {
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            let keep_empty = k == "cards";
            let v = map.get_mut(&k).expect("key just listed");
            prune(v, &k, &mut removed);
            if is_empty(v) && !(keep_empty && v.is_array()) {
                map.remove(&k);
                removed.push(k);
            }
        }
    }
    removed
}

fn prune(v: &mut Value, path: &str, removed: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let p = format!("{path}.{k}");
                let child = map.get_mut(&k).expect("key just listed");
                prune(child, &p, removed);
                if is_empty(child) {
                    map.remove(&k);
                    removed.push(p);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                prune(child, &format!("{path}[{i}]"), removed);
            }
            let before = items.len();
            items.retain(|c| !is_empty(c));
            if items.len() != before {
                removed.push(format!("{path}[]"));
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Paths breaking the JSON rule (for tests and self-checks).
pub fn violations(body: &Value) -> Vec<String> {
    let mut copy = body.clone();
    prune_empty(&mut copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_empty_cards_and_prunes_nested_empties() {
        let mut v = json!({"cards": [], "systemActions": []});
        assert_eq!(prune_empty(&mut v), ["systemActions"]);
        assert_eq!(v, json!({"cards": []}));

        let mut v = json!({"cards": [{"summary": "s", "detail": "", "links": [],
            "source": {"label": "x", "topic": {}}, "suggestions": [null]}]});
        let removed = prune_empty(&mut v);
        assert_eq!(
            v,
            json!({"cards": [{"summary": "s", "source": {"label": "x"}}]})
        );
        assert_eq!(removed.len(), 5, "{removed:?}");
    }

    #[test]
    fn clean_body_has_no_violations() {
        assert!(violations(&json!({"cards": [{"summary": "a", "n": 0, "b": false}]})).is_empty());
    }
}
