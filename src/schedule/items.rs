//! Turning the items of a `for_each` phase into children: keys, sibling edges, and the checks
//! that make every key safe to use in a child's name and in the paths the engine builds from
//! it. This is the one place item ids are validated; everything downstream trusts them.

use std::collections::HashMap;

use serde_json::Value;

use super::ExpressionError;
use crate::model::{is_item_id, MAX_ITEM_ID_LEN};
use crate::record::event::Child;

/// How many characters of an offending id an error message shows.
const SHOWN_CHARS: usize = 40;

/// `s` for an error message: control characters and quotes escaped, at most
/// [`SHOWN_CHARS`] characters.
fn shown(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == SHOWN_CHARS {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

/// Why `key`, the id of item `index`, is refused, if it is.
fn check_key(index: usize, key: &str) -> Result<(), ExpressionError> {
    if is_item_id(key) {
        return Ok(());
    }
    let problem = if key.is_empty() {
        "an empty id".to_string()
    } else if key.len() > MAX_ITEM_ID_LEN {
        format!(
            "an id of {} bytes (`{}`), longer than {MAX_ITEM_ID_LEN}",
            key.len(),
            shown(key)
        )
    } else {
        format!("the id `{}`", shown(key))
    };
    Err(ExpressionError::BadItemId { index, problem })
}

/// Turn `for_each` items into children: keys from `id` (else the index), edges from
/// `depends_on`. Refuses invalid ids (see [`is_item_id`]), duplicate keys, unknown
/// dependencies and cycles. Linear in the number of items and edges.
pub(super) fn children(items: Vec<Value>) -> Result<Vec<Child>, ExpressionError> {
    let mut children = Vec::with_capacity(items.len());
    // Key → index of the item.
    let mut keys: HashMap<String, usize> = HashMap::with_capacity(items.len());
    // Plain strings name their children (`write[install]`) when every one of them can.
    let by_value = {
        let mut seen = std::collections::HashSet::new();
        items.iter().all(|item| match item {
            Value::String(s) => is_item_id(s) && seen.insert(s.as_str()),
            _ => true,
        })
    };
    for (index, item) in items.into_iter().enumerate() {
        let key = match (item.get("id"), &item) {
            (Some(Value::String(s)), _) => s.clone(),
            (Some(Value::Number(n)), _) => n.to_string(),
            (_, Value::String(s)) if by_value => s.clone(),
            _ => index.to_string(),
        };
        check_key(index, &key)?;
        if let Some(first) = keys.insert(key.clone(), index) {
            return Err(ExpressionError::DuplicateId { first, index, key });
        }
        let depends_on: Vec<String> = match item.get("depends_on") {
            Some(Value::Array(deps)) => deps
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| d.to_string())
                })
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        children.push(Child {
            key,
            item,
            depends_on,
            lane: None,
        });
    }
    // Kahn's algorithm over indices: every item must be reachable without a cycle.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); children.len()];
    let mut remaining: Vec<usize> = Vec::with_capacity(children.len());
    for (index, child) in children.iter().enumerate() {
        for dep in &child.depends_on {
            let Some(&d) = keys.get(dep) else {
                return Err(ExpressionError::UnknownDependency {
                    key: child.key.clone(),
                    dependency: shown(dep),
                });
            };
            dependents[d].push(index);
        }
        remaining.push(child.depends_on.len());
    }
    let mut ready: Vec<usize> = (0..children.len()).filter(|&i| remaining[i] == 0).collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for &d in &dependents[i] {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                ready.push(d);
            }
        }
    }
    if done < children.len() {
        return Err(ExpressionError::Cycle);
    }
    assign_lanes(&mut children);
    Ok(children)
}

/// The most `owned_files` globs of one item that lanes look at; a plan checked by `tasks`
/// never has more.
const MAX_OWNED: usize = 200;

/// The globs an item owns (`owned_files`), at most [`MAX_OWNED`].
fn owned(item: &Value) -> Vec<&str> {
    match item.get("owned_files") {
        Some(Value::Array(globs)) => globs
            .iter()
            .filter_map(Value::as_str)
            .take(MAX_OWNED)
            .collect(),
        Some(Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    }
}

/// Lanes: children whose `owned_files` may overlap (directly or through others) share a lane,
/// numbered by their first member in item order; two children of one lane never run at the
/// same time. No lanes at all when no item owns a file.
fn assign_lanes(children: &mut [Child]) {
    let globs: Vec<Vec<&str>> = children.iter().map(|c| owned(&c.item)).collect();
    if globs.iter().all(Vec::is_empty) {
        return;
    }
    // Union-find over the items.
    let mut parent: Vec<usize> = (0..children.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for a in 0..children.len() {
        for b in a + 1..children.len() {
            if root(&mut parent, a) == root(&mut parent, b) {
                continue;
            }
            let overlap = globs[a].iter().any(|x| {
                globs[b]
                    .iter()
                    .any(|y| crate::tasks::globs::may_overlap(x, y))
            });
            if overlap {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut numbers: HashMap<usize, u32> = HashMap::new();
    for (i, child) in children.iter_mut().enumerate() {
        let r = root(&mut parent, i);
        let next = numbers.len() as u32;
        child.lane = Some(*numbers.entry(r).or_insert(next));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(items: Value) -> String {
        let Value::Array(items) = items else {
            panic!("not a list")
        };
        match children(items) {
            Ok(c) => panic!(
                "accepted: {:?}",
                c.iter().map(|c| c.key.clone()).collect::<Vec<_>>()
            ),
            Err(error) => error.to_string(),
        }
    }

    fn keys(items: Value) -> Vec<String> {
        let Value::Array(items) = items else {
            panic!("not a list")
        };
        children(items)
            .unwrap()
            .into_iter()
            .map(|c| c.key)
            .collect()
    }

    #[test]
    fn plain_strings_name_their_children_when_they_all_can() {
        assert_eq!(keys(json!(["install", "test"])), ["install", "test"]);
        assert_eq!(keys(json!([3, 5])), ["0", "1"]);
        // One that cannot be an id, or a repeat: every child by its index.
        assert_eq!(keys(json!(["install", "a b"])), ["0", "1"]);
        assert_eq!(keys(json!(["x", "x"])), ["0", "1"]);
    }

    fn lanes(items: Value) -> Vec<Option<u32>> {
        let Value::Array(items) = items else {
            panic!("not a list")
        };
        children(items).unwrap().iter().map(|c| c.lane).collect()
    }

    #[test]
    fn overlapping_owned_files_share_a_lane() {
        let got = lanes(json!([
            {"id": "a", "owned_files": ["src/auth/**"]},
            {"id": "b", "owned_files": ["docs/*.md"]},
            {"id": "c", "owned_files": ["src/auth/login.rs"]},
            {"id": "d", "owned_files": ["README.md", "docs/guide.md"]},
            {"id": "e", "owned_files": ["src/billing.rs"]},
            {"id": "f"},
        ]));
        assert_eq!(
            got,
            [Some(0), Some(1), Some(0), Some(1), Some(2), Some(3)],
            "a and c share src/auth, b and d share docs, e and f stand alone"
        );
        // Overlap is transitive: x–y and y–z put x and z in one lane.
        let got = lanes(json!([
            {"id": "x", "owned_files": ["a.rs"]},
            {"id": "z", "owned_files": ["b.rs"]},
            {"id": "y", "owned_files": ["a.rs", "b.rs"]},
        ]));
        assert_eq!(got, [Some(0), Some(0), Some(0)]);
        assert_eq!(lanes(json!([{"id": "p"}, {"id": "q"}])), [None, None]);
    }

    #[test]
    fn item_ids_are_plain_path_segments() {
        for good in ["a", "wp-1", "Task_2", "v1.2.3", "_x", "0", "a.locks"] {
            assert!(is_item_id(good), "{good}");
        }
        let long = "a".repeat(MAX_ITEM_ID_LEN + 1);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-rf",
            "a/b",
            "a\\b",
            "a b",
            "a\nb",
            "a\0b",
            "a[1]",
            "é",
            &long,
            "wp-greet.lock",
            "a..b",
            "a.",
            "x.LOCK",
        ] {
            assert!(!is_item_id(bad), "{bad:?}");
        }
        assert!(is_item_id(&long[1..]));
    }

    #[test]
    fn a_traversal_id_is_refused_naming_the_item() {
        let message = refused(json!([{"id": "ok"}, {"id": "t/../../../../../outside/x"}]));
        assert!(
            message.starts_with("item 1 has the id `t/../../../../../outside/x`"),
            "{message}"
        );
        assert!(message.contains("`task-1`"), "{message}");
    }

    #[test]
    fn a_newline_id_is_refused_and_shown_escaped() {
        let message = refused(json!([{"id": "a\nrm -rf /"}]));
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("`a\\nrm -rf /`"), "{message}");
    }

    #[test]
    fn an_over_long_id_is_refused_and_shown_truncated() {
        let long = "x".repeat(10_000);
        let message = refused(json!([{"id": long}]));
        assert!(
            message.starts_with("item 0 has an id of 10000 bytes"),
            "{message}"
        );
        assert!(message.len() < 400, "{message}");
    }

    #[test]
    fn duplicate_ids_are_refused_naming_both_items() {
        let message = refused(json!([{"id": "a"}, {"id": "b"}, {"id": "a"}]));
        assert!(
            message.starts_with("items 0 and 2 have the same id `a`"),
            "{message}"
        );
    }
}
