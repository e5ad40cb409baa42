//! Why a phase's `if:` or `for_each:` could not be decided: recorded as the message of the
//! phase's `phase.failed` (kind `expression`), so each says what and how to fix it.

use crate::model::MAX_ITEM_ID_LEN;

/// An `if:` or `for_each:` that could not be evaluated, or items that cannot become children.
#[derive(Debug, thiserror::Error)]
pub enum ExpressionError {
    /// A fact could not be handed to the script engine.
    #[error("the facts of `{expression}` cannot be read: {detail}")]
    Facts { expression: String, detail: String },
    #[error("`{expression}` failed: {source}")]
    Failed {
        expression: String,
        source: crate::expr::Error,
    },
    #[error("`{expression}` gives more than {limit} items")]
    TooManyItems { expression: String, limit: usize },
    #[error("`{expression}` gave a value that is not data: {detail}")]
    NotData { expression: String, detail: String },
    #[error("`if: {expression}` gave {value}, not true or false")]
    NotBool { expression: String, value: String },
    #[error("`for_each: {expression}` gave {value}, not a list")]
    NotList { expression: String, value: String },
    #[error(
        "item {index} has {problem}; item ids name children and their files, so they must be \
         1 to {MAX_ITEM_ID_LEN} ASCII letters, digits, `-`, `_` and `.`, starting with a letter, \
         a digit or `_`, without `..` and not ending with `.` or `.lock` (they name git \
         branches too): give the item an `id` like `task-{index}`"
    )]
    BadItemId { index: usize, problem: String },
    #[error("items {first} and {index} have the same id `{key}`; give each item its own `id`")]
    DuplicateId {
        first: usize,
        index: usize,
        key: String,
    },
    #[error("item `{key}` depends on `{dependency}`, which is not an item")]
    UnknownDependency { key: String, dependency: String },
    #[error("the items' `depends_on` form a cycle")]
    Cycle,
}
